"""compose.yaml validates with docker-compose, and its secrets come from .env only."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from deploy_paths import REPO

DOCKER_COMPOSE = "docker-compose"
# The names the bridge reads (agreed with the bridge's issue); `make bridge` needs all of them.
BRIDGE_VARIABLES = {
    "IIOT_SERIAL",
    "IIOT_MQTT_URL",
    "IIOT_MQTT_PASSWORD",
    "IIOT_INFLUX_URL",
    "IIOT_INFLUX_ORG",
    "IIOT_INFLUX_BUCKET",
    "IIOT_INFLUX_TOKEN",
    "IIOT_TOPIC_PREFIX",
}


def clean_env() -> dict[str, str]:
    """No IIOT_*/GRAFANA_* leaking in from a developer's shell: only the env file counts."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}


def compose_config(env_file: Path) -> subprocess.CompletedProcess:
    binary = shutil.which(DOCKER_COMPOSE)
    # Not skipped: CI installs Debian's docker-compose, and a missing one must show up red.
    assert binary, "docker-compose is not installed (Debian package docker-compose)"
    return subprocess.run(
        [binary, "--env-file", str(env_file), "-f", str(REPO / "compose.yaml"), "config"],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def generated_env(tmp_path_factory: pytest.TempPathFactory, envgen: ModuleType) -> Path:
    """A .env as `make up` makes it, from the committed .env.example."""
    path = tmp_path_factory.mktemp("env") / ".env"
    envgen.main(["--env", str(path), "--example", str(REPO / ".env.example")])
    return path


@pytest.fixture(scope="module")
def resolved(generated_env: Path) -> dict[str, Any]:
    result = compose_config(generated_env)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def env_values(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k: v for k, v in pairs if not k.startswith("#")}


def test_compose_config_validates(resolved: dict[str, Any]) -> None:
    services = {"mosquitto", "influxdb", "grafana", "bridge", "demo", "redis"}  # [gateways]
    assert set(resolved["services"]) == services


def test_compose_refuses_to_run_without_secrets(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("COMPOSE_PROJECT_NAME=iiot\n")
    result = compose_config(env)
    assert result.returncode != 0
    assert "run make up to create .env" in result.stderr


def test_secrets_reach_the_services_from_env(resolved, generated_env: Path) -> None:
    values = env_values(generated_env)
    services = resolved["services"]
    assert services["mosquitto"]["environment"]["MQTT_PASSWORD"] == values["IIOT_MQTT_PASSWORD"]
    influx = services["influxdb"]["environment"]
    assert influx["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"] == values["IIOT_INFLUX_TOKEN"]
    assert influx["DOCKER_INFLUXDB_INIT_PASSWORD"] == values["INFLUXDB_ADMIN_PASSWORD"]
    assert influx["DOCKER_INFLUXDB_INIT_BUCKET"] == "telemetry"
    assert influx["DOCKER_INFLUXDB_INIT_RETENTION"] == values["INFLUXDB_RETENTION"]
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == values["GRAFANA_ADMIN_PASSWORD"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert grafana["INFLUX_TOKEN"] == values["IIOT_INFLUX_TOKEN"]


def test_no_secret_is_written_into_compose_yaml(generated_env: Path) -> None:
    text = (REPO / "compose.yaml").read_text()
    for key, value in env_values(generated_env).items():
        if re.search("PASSWORD|TOKEN", key):
            assert value not in text, key


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    assert re.fullmatch(r"influxdb:2(\.\d+)*", services["influxdb"]["image"])
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", services["grafana"]["image"])


def test_core_services_have_healthchecks_and_volumes(compose: dict[str, Any]) -> None:
    for name in ("mosquitto", "influxdb", "grafana"):
        service = compose["services"][name]
        assert service["healthcheck"]["test"], name
        assert any(not v.startswith(".") for v in service["volumes"]), f"{name}: no volume"
    mounts = compose["services"]["mosquitto"]["volumes"]
    assert "mosquitto-data:/mosquitto/data" in mounts


def test_bridge_profiles(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    bridge, demo = services["bridge"], services["demo"]
    assert bridge["profiles"] == ["bridge"] and demo["profiles"] == ["demo"]
    assert bridge["devices"] == ["/dev/iiot-gateway:/dev/iiot-gateway"]
    for service in (bridge, demo):
        assert set(service["environment"]) >= BRIDGE_VARIABLES
        assert service["environment"]["IIOT_MQTT_URL"].endswith("@mosquitto:1883")
        assert service["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    # The demo's bridge reads the simulator's pty, in one command line.
    (command,) = demo["command"]
    assert "iiot-sim --pty-link /run/iiot/gateway" in command
    assert "iiot-bridge --serial /run/iiot/gateway" in command


def test_serial_device_follows_iiot_serial(tmp_path: Path, generated_env: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(generated_env.read_text() + "IIOT_SERIAL=/dev/ttyACM3\n")
    result = compose_config(env)
    assert result.returncode == 0, result.stderr
    bridge = yaml.safe_load(result.stdout)["services"]["bridge"]
    assert bridge["devices"] == ["/dev/ttyACM3:/dev/iiot-gateway"]


def test_grafana_mounts_match_provisioning(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    provider = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/iiot.yaml").read_text()
    )["providers"][0]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(provider["options"]["path"] + "/")
    assert (REPO / "deploy/grafana/dashboards" / Path(home).name).is_file()


def test_every_compose_variable_is_documented(schema: ModuleType) -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", (REPO / "compose.yaml").read_text()))
    documented = env_values(REPO / ".env.example")
    assert used - set(documented) == set()
    assert set(documented) >= BRIDGE_VARIABLES
    assert documented["IIOT_INFLUX_BUCKET"] == schema.BUCKET
