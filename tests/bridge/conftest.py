"""Fixtures of the bridge tests: real Mosquitto and VictoriaMetrics on free ports, a pty."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge_kit import BridgeProcess, Gateway, SmallDisk

from iiot_sim.localservers import Mosquitto, VictoriaMetrics


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mosquitto") as server:
        yield server


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    # No deduplication: a point written twice shows up twice, so tests can tell.
    with VictoriaMetrics(tmp_path / "vm", dedup_ms=0) as server:
        yield server


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(tmp_path / "gateway")
    yield gw
    gw.close()


@pytest.fixture
def bridge_args(
    tmp_path: Path, broker: Mosquitto, victoria: VictoriaMetrics, gateway: Gateway
) -> list[str]:
    """Flags for a bridge wired to this test's servers and pty (short retry ceiling)."""
    return [
        "--serial", str(gateway.path),
        "--mqtt-url", f"mqtt://127.0.0.1:{broker.port}",
        "--influx-url", victoria.url,
        "--influx-org", "iiot",
        "--influx-bucket", "telemetry",
        "--state-dir", str(tmp_path / "state"),
        "--bridge-id", "test",  # [gateways] status topic iiot/bridge/test/status
        "--retry-max", "2s",
        "--log-level", "debug",
    ]  # fmt: skip


@pytest.fixture
def start_bridge(tmp_path: Path, bridge_args: list[str]) -> Iterator:
    procs: list[BridgeProcess] = []

    def start(*extra: str, env: dict[str, str] | None = None) -> BridgeProcess:
        proc = BridgeProcess(
            [*bridge_args, *extra], tmp_path, {"IIOT_INFLUX_TOKEN": "t", **(env or {})}
        )
        procs.append(proc.start())
        return proc

    yield start
    for proc in procs:
        proc.kill()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    if os.geteuid() != 0:
        pytest.fail("the outbox fault tests mount a tmpfs: run them as root (CI does)")
    disk = SmallDisk(tmp_path / "disk", 4096)
    yield disk
    disk.close()
