"""Root pytest configuration: paths every test area shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from iiot_sim.paths import micropython_binary

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def micropython_bin() -> str:
    """The MicroPython unix port the simulator uses (the virtualenv's, else one on PATH)."""
    return micropython_binary()


os.environ.setdefault("PYTHONHASHSEED", "0")
