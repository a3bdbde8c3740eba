"""mk/deploy.mk: compose fallback, `make up` creating .env, `make bridge` loading it.

Docker is replaced by small scripts on PATH that record their arguments, so the tests show
which command make runs without a Docker engine.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_paths import REPO

MAKE = shutil.which("make")
RECORDER = """#!/bin/sh
if [ "$1 $2" = "compose version" ]; then exit {plugin_exit}; fi
echo "${{0##*/}} $*" >> "{log}"
"""


def script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def run_make(*args: str, path: str) -> subprocess.CompletedProcess:
    assert MAKE, "make is not installed"
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(REPO), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    # python3 for envgen.py, found on PATH as on a user's machine.
    (path / "python3").symlink_to(sys.executable)
    return path


def fake_docker(bin_dir: Path, log: Path, plugin: bool, legacy: bool) -> None:
    script(bin_dir / "docker", RECORDER.format(plugin_exit=0 if plugin else 1, log=log))
    if legacy:
        script(bin_dir / "docker-compose", RECORDER.format(plugin_exit=1, log=log))


def test_down_prefers_the_compose_plugin(tmp_path: Path, bin_dir: Path) -> None:
    log = tmp_path / "calls"
    fake_docker(bin_dir, log, plugin=True, legacy=True)
    result = run_make("down", path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    assert log.read_text() == "docker compose --profile bridge --profile demo down\n"


def test_down_falls_back_to_docker_compose(tmp_path: Path, bin_dir: Path) -> None:
    log = tmp_path / "calls"
    fake_docker(bin_dir, log, plugin=False, legacy=True)
    result = run_make("down", path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    assert log.read_text() == "docker-compose --profile bridge --profile demo down\n"


def test_clear_error_without_any_compose(bin_dir: Path) -> None:
    result = run_make("logs", path=str(bin_dir))
    assert result.returncode != 0
    assert "neither 'docker compose' nor 'docker-compose' is installed" in result.stderr


def test_up_creates_env_then_starts_the_stack(tmp_path: Path, bin_dir: Path) -> None:
    log = tmp_path / "calls"
    fake_docker(bin_dir, log, plugin=True, legacy=False)
    env = tmp_path / "dot.env"
    result = run_make("up", f"ENV_FILE={env}", path=str(bin_dir))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert "GRAFANA_ADMIN_PASSWORD=" in result.stdout
    assert log.read_text() == "docker compose up -d\n"
    # The second `make up` keeps the secrets and prints none.
    before = env.read_text()
    again = run_make("up", f"ENV_FILE={env}", path=str(bin_dir))
    assert again.returncode == 0 and env.read_text() == before
    assert "GRAFANA_ADMIN_PASSWORD=" not in again.stdout


@pytest.fixture
def fake_venv(tmp_path: Path) -> Path:
    """A stand-in virtualenv whose iiot-bridge prints its arguments and two settings."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    script(
        venv / "bin" / "iiot-bridge",
        '#!/bin/sh\necho "args: $*"\necho "password: $IIOT_MQTT_PASSWORD"\n'
        'echo "url: $IIOT_MQTT_URL"\n',
    )
    # Newer than pyproject.toml, so make does not try to build the venv.
    (venv / ".installed").touch()
    return venv


def test_bridge_needs_no_flags_after_up(tmp_path: Path, fake_venv: Path) -> None:
    env = tmp_path / "dot.env"
    env.write_text(
        "IIOT_MQTT_PASSWORD=abc123\nIIOT_MQTT_URL=mqtt://iiot@localhost:1883\n"
        "IIOT_SERIAL=/dev/iiot-gateway\n"
    )
    result = run_make("bridge", f"VENV={fake_venv}", f"ENV_FILE={env}", path="/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "args: --serial auto",
        "password: abc123",
        "url: mqtt://iiot@localhost:1883",
    ]


def test_bridge_port_and_missing_env(tmp_path: Path, fake_venv: Path) -> None:
    result = run_make(
        "bridge",
        f"VENV={fake_venv}",
        f"ENV_FILE={tmp_path / 'absent.env'}",
        "PORT=/dev/ttyACM1",
        path="/usr/bin:/bin",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["args: --serial /dev/ttyACM1", "password: "]


def test_targets_are_documented_in_help() -> None:
    result = run_make("help", path="/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    # help colours the names; drop the escape codes before comparing.
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    names = {line.split()[0] for line in plain.splitlines() if line.strip()}
    assert {"up", "down", "logs", "dashboards", "bridge", "demo-docker"} <= names
