"""Run a system under test (iiot-bridge, or the Node-RED peer) against a pty and local
servers, and wait for its readings to be confirmed by both servers."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import REPO
from .child import ChildProcess
from .load import READINGS_PER_FRAME
from .nodered import Credentials, NodeRedProcess
from .servers import DbTap, MqttTap, Servers, free_port
from .spec import Unavailable
from .tools import venv_tool

ORG, BUCKET = "bench", "bench"
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


def bridge_argv(port: str, srv: Servers, workdir: Path) -> list[str]:
    """iiot-bridge's command line; the run's secrets go into files in ``workdir``."""
    password_file = workdir / "mqtt-password"
    token_file = workdir / "influx-token"
    for path, secret in ((password_file, srv.mqtt_password), (token_file, srv.influx_token)):
        path.write_text(secret + "\n", encoding="utf-8")
        path.chmod(0o600)
    return [
        iiot_bridge_binary(),
        "--serial", port,
        "--mqtt-url", srv.mqtt_url,
        "--mqtt-password-file", str(password_file),
        "--influx-url", srv.influx_url,
        "--influx-org", ORG,
        "--influx-bucket", BUCKET,
        "--influx-token-file", str(token_file),
        "--state-dir", str(workdir / "state"),
        "--log-level", "warning",
    ]  # fmt: skip


class SystemProcess(Protocol):
    """What the phases need of a system under test."""

    kind: str

    @property
    def pid(self) -> int: ...

    def check_alive(self) -> None: ...

    def wait_port_open(self, port: str, timeout_s: float = 60.0) -> None: ...

    def log_tail(self) -> str: ...

    def kill(self) -> None: ...

    def stop(self) -> None: ...


class BridgeProcess(ChildProcess):
    """An iiot-bridge child process with its log and state directory in ``workdir``.

    Started again on the same ``workdir`` (after :meth:`kill`), it finds its outbox.
    """

    kind = "iiot"
    name = "iiot-bridge"

    def __init__(self, port: str, srv: Servers, workdir: Path, wrapper: Sequence[str] = ()) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "state").mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_")}
        argv = [*wrapper, *bridge_argv(port, srv, workdir)]
        super().__init__(argv, workdir / "iiot-bridge.log", env, REPO)
        self.start()


def start_system(
    kind: str, port: str, srv: Servers, workdir: Path, wrapper: Sequence[str] = ()
) -> SystemProcess:
    """iiot-bridge (``"iiot"``) or the Node-RED peer (``"node-red"``) on ``port``;
    ``wrapper`` is a command the system runs under (valgrind)."""
    if kind == "node-red":
        creds = Credentials(srv.mqtt_user, srv.mqtt_password, srv.influx_token)
        workdir.mkdir(parents=True, exist_ok=True)
        return NodeRedProcess(
            port, srv.broker.port, srv.influx_url, creds, workdir, free_port(), wrapper
        )
    return BridgeProcess(port, srv, workdir, wrapper)


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
    bridge: SystemProcess | None = None,
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


def readings(frames: int, per_frame: int = READINGS_PER_FRAME) -> int:
    return frames * per_frame
