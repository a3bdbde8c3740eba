"""Fixtures of the live-view tests: a real broker with a user, a tmux server, replayed traffic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from watch_kit import USER, Replayer, Tmux, load_capture

from iiot_sim.localservers import Mosquitto, new_password


@pytest.fixture(scope="module")
def capture() -> list[dict[str, Any]]:
    return load_capture()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mosquitto", users={USER: new_password()}) as server:
        yield server


@pytest.fixture
def replay(broker: Mosquitto, capture: list[dict[str, Any]]) -> Iterator[Replayer]:
    replayer = Replayer(broker.port, capture, broker.users[USER])
    yield replayer
    replayer.stop()


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    server = Tmux(tmp_path)
    yield server
    server.close()
