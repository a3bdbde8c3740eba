"""The whole chain for the custody tests: the real firmware in the simulator, the real
bridge as a process on node2's pty, a real Mosquitto and VictoriaMetrics.

The host "goes away" the way a PC does: the bridge is stopped (SIGTERM) and started again
later on the same state directory, so nobody reads node2's serial port in between.
Readings are matched to what the database stored by their time of measurement: the
simulator knows when each reading was taken (its console event), the database stores the
time the bridge computed from the frame (receive time - node2's hold - the reading's age).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iiot_sim.localservers import Mosquitto, VictoriaMetrics, wait_until
from iiot_sim.runner import Simulation

BRIDGE_BIN = str(Path(sys.executable).parent / "iiot-bridge")


class Bridge:
    """``iiot-bridge`` on the simulator's pty; stop() and start() again keep its state."""

    def __init__(self, pty: Path, broker: Mosquitto, db: VictoriaMetrics, state: Path) -> None:
        self.argv = [
            BRIDGE_BIN,
            "--serial", str(pty),
            "--mqtt-url", broker.url,
            "--influx-url", db.url,
            "--influx-org", "test",
            "--influx-bucket", "telemetry",
            "--influx-token", "test-token",
            "--state-dir", str(state),
        ]  # fmt: skip
        self.log_path = state.parent / "bridge.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_")}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass(order=True)
class Point:
    ts_ms: int
    value: float


class Chain:
    """Simulation + bridge + servers, all owned and closed together."""

    def __init__(self, sim: Simulation, workdir: Path) -> None:
        self.sim = sim
        self.broker = Mosquitto(workdir / "mosquitto")
        self.db = VictoriaMetrics(workdir / "victoria-metrics")
        self.workdir = workdir
        self.bridge: Bridge | None = None
        self.wall0 = 0.0  # wall-clock time of the simulation's time 0

    def __enter__(self) -> Chain:
        self.broker.start()
        self.db.start()
        self.sim.start()
        self.wall0 = time.time() - self.sim.elapsed()
        link = self.workdir / "gateway"
        link.unlink(missing_ok=True)
        link.symlink_to(self.sim.serial_path)
        self.bridge = Bridge(link, self.broker, self.db, self.workdir / "bridge")
        self.bridge.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bridge is not None:
            self.bridge.stop()
        self.sim.stop()
        self.db.close()
        self.broker.close()

    def points(self, metric: str, node: str) -> list[Point]:
        self.db.flush()
        rows = self.db.samples(f'{{__name__="{metric}_value",node="{node}"}}')
        return sorted(Point(ts, value) for _labels, ts, value in rows)

    def wait_stored(self, node: str, count: int, timeout: float) -> float:
        """Seconds until the database holds ``count`` readings of ``node`` (its
        temperatures: every reading has one)."""
        t0 = time.monotonic()
        wait_until(
            lambda: len(self.points("temperature", node)) >= count, timeout, "stored readings"
        )
        return time.monotonic() - t0

    def wait_stats(self, metric: str, node: str, check: Callable[[Point], bool]) -> float:
        """Seconds until a stored point of ``metric`` (a STATS counter) passes ``check``:
        one STATS interval first, then polled every second, for up to 30 s. It then gives up
        quietly: STATS are fire and forget, and the test that needs the point says what is
        missing."""
        t0 = time.monotonic()
        time.sleep(self.sim.config.stats_interval_s)
        while time.monotonic() - t0 < 30 and not any(map(check, self.points(metric, node))):
            time.sleep(1)
        return time.monotonic() - t0


def readings(report: dict[str, Any], node: int) -> list[dict[str, Any]]:
    return list(report["nodes"][str(node)]["readings"])


SENSOR_METRICS = ("temperature", "humidity", "pressure", "gas_resistance", "voltage")


@dataclass
class Record:
    """What the database holds for one reading: its values, under one timestamp."""

    ts_ms: int
    values: dict[str, float]


def records(chain: Chain, node: str) -> list[Record]:
    by_ts: dict[int, dict[str, float]] = {}
    for metric in SENSOR_METRICS:
        for p in chain.points(metric, node):
            by_ts.setdefault(p.ts_ms, {})[metric] = p.value
    return [Record(ts, values) for ts, values in sorted(by_ts.items())]


def match_readings(
    taken: list[dict[str, Any]], stored: list[Record], wall0: float
) -> tuple[list[float], list[dict[str, Any]], list[Record]]:
    """Pair each reading (the simulator's record: its time and values) with the stored
    record of the same values, the nearest in time. Readings are told apart by their
    values, not by time: half a second apart, a time alone would be ambiguous. Returns
    (stored - taken time of each pair, in s; the readings not stored; the records no
    reading explains)."""
    free: dict[tuple[tuple[str, float], ...], list[Record]] = {}
    for rec in stored:
        free.setdefault(tuple(sorted(rec.values.items())), []).append(rec)
    errors: list[float] = []
    missing: list[dict[str, Any]] = []
    for r in sorted(taken, key=lambda r: float(r["t"])):
        t = wall0 + r["t"]
        key = tuple(sorted((m, float(v)) for m, v in r["r"].items() if m in SENSOR_METRICS))
        candidates = free.get(key, [])
        if not candidates:
            missing.append(r)
            continue
        best = min(candidates, key=lambda rec: abs(rec.ts_ms / 1000 - t))
        candidates.remove(best)
        errors.append(best.ts_ms / 1000 - t)
    return errors, missing, [rec for recs in free.values() for rec in recs]
