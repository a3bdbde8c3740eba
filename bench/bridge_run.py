"""Run a bridge (iiot-bridge or the naive one) against a pty and local servers, and wait for
its readings to be confirmed by both servers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import REPO, procstat
from .load import READINGS_PER_FRAME
from .servers import DbTap, MqttTap, Servers
from .spec import Unavailable
from .tools import venv_tool

ORG, BUCKET, TOKEN = "bench", "bench", "bench-token"
POLL_S = 0.1


def iiot_bridge_binary() -> str:
    """The iiot-bridge console script, if it exists and answers --help."""
    binary = venv_tool("iiot-bridge")
    if binary is None:
        raise Unavailable("iiot-bridge is not installed (console script missing)")
    try:
        proc = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"iiot-bridge --help failed: {exc}") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Unavailable(f"iiot-bridge does not run yet ({tail[0][:160]})")
    return binary


def bridge_argv(kind: str, port: str, srv: Servers, state_dir: Path) -> list[str]:
    common = [
        "--serial", port,
        "--mqtt-url", srv.mqtt_url,
        "--influx-url", srv.influx_url,
        "--influx-org", ORG,
        "--influx-bucket", BUCKET,
        "--influx-token", TOKEN,
    ]  # fmt: skip
    if kind == "naive":
        return [sys.executable, "-m", "bench.naive_bridge", *common]
    return [iiot_bridge_binary(), *common, "--state-dir", str(state_dir), "--log-level", "warning"]


class BridgeProcess:
    """A bridge child process with its log in ``workdir``."""

    def __init__(self, kind: str, port: str, srv: Servers, workdir: Path) -> None:
        self.kind = kind
        workdir.mkdir(parents=True, exist_ok=True)
        state = workdir / "state"
        state.mkdir(exist_ok=True)
        self.argv = bridge_argv(kind, port, srv, state)
        self.log_path = workdir / f"{kind}-bridge.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_")}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise Unavailable(
                f"{self.kind} bridge exited with code {self.proc.returncode}: {self.log_tail()}"
            )

    def wait_port_open(self, port: str, timeout_s: float = 60.0) -> None:
        """Poll /proc until the bridge holds ``port`` open.

        pyserial flushes the input buffer when it opens a port, so a line written before
        that moment would be lost: nothing is written until the bridge is listening.
        """
        target = os.path.realpath(port)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            for pid in procstat.tree(self.pid):
                if target in procstat.open_files(pid):
                    return
            time.sleep(0.05)
        raise Unavailable(f"{self.kind} bridge did not open {port} within {timeout_s:.0f} s")

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1][:200] if lines else "no output"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Confirmed:
    """When the tap and the database first held the expected number of readings."""

    mqtt_ns: int
    db_ns: int

    @property
    def both_ns(self) -> int:
        return max(self.mqtt_ns, self.db_ns)


@dataclass(frozen=True)
class Counts:
    """Readings the MQTT tap and the database held at some moment."""

    mqtt: int
    db: int


def counts(tap: MqttTap, db: DbTap) -> Counts:
    return Counts(tap.poll(), db.count())


def wait_confirmed(
    tap: MqttTap,
    db: DbTap,
    expected: int,
    timeout_s: float,
    bridge: BridgeProcess | None = None,
    base: Counts = Counts(0, 0),
    db_every_s: float = 0.2,
) -> Confirmed:
    """Poll both servers until each holds ``expected`` readings more than ``base``.

    Counted, not assumed: the MQTT tap's messages and the database's stored samples.
    """
    deadline = time.monotonic() + timeout_s
    mqtt_ns = db_ns = 0
    have_db = 0
    next_db = 0.0
    while True:
        now = time.monotonic()
        if not mqtt_ns and tap.poll() - base.mqtt >= expected:
            mqtt_ns = time.time_ns()
        if not db_ns and now >= next_db:
            have_db = db.count() - base.db
            next_db = now + db_every_s
            if have_db >= expected:
                db_ns = time.time_ns()
        if mqtt_ns and db_ns:
            return Confirmed(mqtt_ns, db_ns)
        if bridge is not None:
            bridge.check_alive()
        if now > deadline:
            said = f"; bridge log: {bridge.log_tail()}" if bridge is not None else ""
            raise Unavailable(
                f"after {timeout_s:.0f} s only {tap.total - base.mqtt} of {expected} readings "
                f"reached MQTT and {have_db} the database{said}"
            )
        time.sleep(POLL_S)


def readings(frames: int) -> int:
    return frames * READINGS_PER_FRAME
