"""Provisioning files parse; the systemd unit, udev rule and Dockerfile say what they must."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_paths import DEPLOY, GRAFANA, PROVISIONING, REPO

PROVISIONING_FILES = sorted(PROVISIONING.rglob("*.yaml"))
JSON_FILES = sorted(GRAFANA.rglob("*.json"))


def test_provisioning_files_exist() -> None:
    names = {p.relative_to(PROVISIONING).as_posix() for p in PROVISIONING_FILES}
    assert names == {
        "alerting/iiot-rules.yaml",
        "dashboards/iiot.yaml",
        "datasources/influxdb.yaml",
    }
    assert len(JSON_FILES) == 2


@pytest.mark.parametrize("path", PROVISIONING_FILES, ids=lambda p: p.name)
def test_provisioning_yaml_parses(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert doc["apiVersion"] == 1
    assert {"datasources", "providers", "groups"} & set(doc)


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: p.name)
def test_dashboard_json_parses(path: Path) -> None:
    board = json.loads(path.read_text(encoding="utf-8"))
    assert board["uid"] and board["title"] and board["panels"]


def test_datasource_is_flux_and_holds_no_secret() -> None:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "influxdb.yaml").read_text())
    (source,) = doc["datasources"]
    assert source["type"] == "influxdb"
    assert source["uid"] == "iiot-influxdb"
    assert source["url"] == "http://influxdb:8086"
    assert source["jsonData"]["version"] == "Flux"
    # Filled by Grafana from the container's environment (compose passes .env's token).
    assert source["secureJsonData"] == {"token": "$INFLUX_TOKEN"}


def test_dashboard_provider_refuses_ui_edits() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "iiot.yaml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if match:
            settings.setdefault(match.group(1), []).append(match.group(2))
    return settings


# [gateways] issue 15: one template, one instance per gateway (instance = its USB serial).
SERVICE = DEPLOY / "systemd" / "iiot-bridge@.service"
INSTANCE = "0671FF485550755187121046"


def test_systemd_unit_settings() -> None:
    assert sorted(p.name for p in (DEPLOY / "systemd").iterdir()) == [SERVICE.name]
    settings = unit_settings(SERVICE.read_text())
    assert settings["Restart"] == ["on-failure"]
    assert settings["User"] == ["iiot-bridge"]
    # Per instance: its own state directory (the bridge locks it) and settings file.
    assert settings["StateDirectory"] == ["iiot-bridge/%i"]
    assert "-/etc/iiot-bridge/%i.env" in settings["EnvironmentFile"]
    assert settings["SupplementaryGroups"] == ["dialout"]
    (command,) = settings["ExecStart"]
    assert command.split()[0].endswith("/bin/iiot-bridge")
    # The udev rule's per-serial name of the gateway this instance serves.
    assert command.split()[1:] == ["--serial", "/dev/iiot-gateway-%i"]
    assert settings["WantedBy"] == ["multi-user.target"]


@pytest.mark.parametrize("name", [SERVICE.name, SERVICE.name.replace("@", f"@{INSTANCE}")])
def test_systemd_unit_verifies(tmp_path: Path, name: str) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian package systemd) is missing"
    unit = tmp_path / name  # the template, and an instance of it
    # verify also checks that the program exists; the bridge's venv is not installed here.
    text = SERVICE.read_text()
    text = re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", text, flags=re.M)
    unit.write_text(text)
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    # It reports bad settings on stderr but still exits 0: read what it said about our file.
    complaints = [line for line in result.stderr.splitlines() if name in line]
    assert result.returncode == 0 and complaints == [], result.stderr


def udev_rules() -> list[dict[str, str]]:
    rules = []
    for line in (DEPLOY / "udev" / "99-iiot-gateway.rules").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs = re.findall(
            r'\s*([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|:=|=)\s*"([^"]*)"\s*(?:,|$)', line
        )
        # Every comma-separated item parsed: no stray syntax udev would reject.
        assert len(pairs) == line.count(",") + 1, line
        rules.append({f"{key}{op}": value for key, op, value in pairs})
    return rules


def test_udev_rule_names_the_gateway() -> None:
    # [gateways] issue 15: every gateway by its USB serial, plus the one-gateway alias.
    rules = udev_rules()
    for rule in rules:
        assert rule["SUBSYSTEM=="] == "tty"
        assert rule["ATTRS{idVendor}=="] == "0483"
        assert "374b" in rule["ATTRS{idProduct}=="].split("|")
    first, by_serial, alias = rules
    assert first["IMPORT{builtin}="] == "usb_id"  # sets ID_SERIAL_SHORT for the next rules
    assert first["GROUP="] == "dialout"
    assert first["ENV{ID_MM_DEVICE_IGNORE}="] == "1"
    assert by_serial["ENV{ID_SERIAL_SHORT}=="] == "?*"
    # The name the bridge reads a gateway's label from (iiot_bridge.identity.UDEV_PREFIX).
    from iiot_bridge.identity import UDEV_PREFIX

    assert by_serial["SYMLINK+="] == UDEV_PREFIX + "$env{ID_SERIAL_SHORT}"
    assert alias["SYMLINK+="] == "iiot-gateway"


DOCKERFILE = REPO / "Dockerfile"


def test_dockerfile_installs_the_package_without_secrets() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r'^ENTRYPOINT \["iiot-bridge"\]$', text, re.M)
    assert re.search(r"^RUN pip install \"\.", text, re.M)
    assert re.search(r"^USER iiot$", text, re.M)
    copies = re.findall(r"^COPY (.+) \S+$", text, re.M)
    sources = [src for line in copies for src in line.split()]
    # Named paths only: a `COPY . .` would put .env and .venv into the image.
    assert "." not in sources and not any(s.startswith(".env") for s in sources)
    for source in sources:
        assert (REPO / source).exists(), f"Dockerfile copies {source}, which is missing"


def test_make_files_and_scripts_hold_no_machine_paths() -> None:
    files = [REPO / "compose.yaml", REPO / ".env.example", REPO / "mk" / "deploy.mk"]
    files += [p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix != ".pyc"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "/work/" not in text and "/home/" not in text, path
