"""Settings: precedence, secrets, and one clear line + exit 2 for each class of bad setting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from bridge_kit import BRIDGE_BIN

from iiot_bridge import config
from iiot_bridge.config import ConfigError, load


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    cfg = tmp_path / "bridge.toml"
    cfg.write_text('topic_prefix = "from-file"\nbaud = 9600\nlog-format = "json"\n')
    env = {"IIOT_TOPIC_PREFIX": "from-env", "IIOT_BAUD": "57600"}
    s = load(["--config", str(cfg), "--baud", "19200", "--state-dir", str(tmp_path)], env)
    assert s.baud == 19200 and s.sources["baud"] == "flag"
    assert s.topic_prefix == "from-env" and s.sources["topic_prefix"] == "env"
    assert s.log_format == "json" and s.sources["log_format"] == "file"
    assert s.influx_bucket == "telemetry" and s.sources["influx_bucket"] == "default"


def test_environment_of_make_up_is_understood(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("file-token\n")
    env = {
        "IIOT_SERIAL": "/dev/iiot-gateway",
        "IIOT_MQTT_URL": "mqtt://iiot@localhost:1883",
        "IIOT_MQTT_PASSWORD": "Zq9-mqtt-secret",
        "IIOT_INFLUX_URL": "http://localhost:8086/",
        "IIOT_INFLUX_ORG": "org",
        "IIOT_INFLUX_BUCKET": "b",
        "IIOT_INFLUX_TOKEN": "Zq9-influx-secret",
        "IIOT_TOPIC_PREFIX": "site",
        "IIOT_STATE_DIR": str(tmp_path / "state"),
        "IIOT_NO_INFLUX": "false",
        "IIOT_HA_DISCOVERY": "yes",
    }
    s = load([], env)
    assert s.serial == "/dev/iiot-gateway"
    assert (s.mqtt.host, s.mqtt.port, s.mqtt.tls, s.mqtt.username) == (
        "localhost",
        1883,
        False,
        "iiot",
    )
    assert s.mqtt_password == "Zq9-mqtt-secret" and s.influx_token == "Zq9-influx-secret"
    assert s.influx_url == "http://localhost:8086" and s.topic_prefix == "site"
    assert s.ha_discovery is True and s.no_influx is False
    # Secrets stay out of repr (and so out of any log line that prints the settings).
    assert "Zq9" not in repr(s)
    s = load(["--influx-token-file", str(tmp_path / "token")], env)
    assert s.influx_token == "file-token"
    assert load(["--mqtt-url", "mqtts://broker"], env).mqtt.port == 8883


def run_cli(
    args: list[str], tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_")}
    base["IIOT_STATE_DIR"] = str(tmp_path / "state")
    return subprocess.run(
        [BRIDGE_BIN, *args], env={**base, **(env or {})}, capture_output=True, text=True, timeout=30
    )


def _bad_toml(tmp: Path) -> list[str]:
    (tmp / "bad.toml").write_text("serial = [unclosed\n")
    return ["--config", str(tmp / "bad.toml")]


def _unknown_key(tmp: Path) -> list[str]:
    (tmp / "u.toml").write_text('seriall = "/dev/x"\n')
    return ["--config", str(tmp / "u.toml")]


def _secret_in_file(tmp: Path) -> list[str]:
    (tmp / "s.toml").write_text('influx_token = "abc"\n')
    return ["--config", str(tmp / "s.toml")]


def _bad_keys(tmp: Path) -> list[str]:
    (tmp / "keys.toml").write_text('node1 = "0011"\n')
    return ["--keys", str(tmp / "keys.toml")]


def _state_dir_is_file(tmp: Path) -> list[str]:
    (tmp / "afile").write_text("x")
    return ["--state-dir", str(tmp / "afile" / "sub")]


CASES = {
    "unknown flag": (lambda t: ["--colour", "blue"], "unrecognized arguments"),
    "not an integer": (lambda t: ["--baud", "fast"], "--baud"),
    "out of range": (lambda t: ["--http-port", "70000"], "--http-port"),
    "bad duration": (lambda t: ["--outbox-max-age", "forever"], "--outbox-max-age"),
    "bad choice": (lambda t: ["--log-format", "xml"], "--log-format"),
    "bad mqtt url": (lambda t: ["--mqtt-url", "tcp://broker"], "--mqtt-url"),
    "password in url": (lambda t: ["--mqtt-url", "mqtt://u:secret@broker"], "password"),
    "bad influx url": (lambda t: ["--influx-url", "localhost:8086"], "--influx-url"),
    "missing file": (lambda t: ["--mqtt-password-file", str(t / "nope")], "MQTT password"),
    "tls file without mqtts": (lambda t: ["--mqtt-ca-file", __file__], "mqtts"),
    "no sink": (lambda t: ["--no-mqtt", "--no-influx"], "nothing to do"),
    "bad toml": (_bad_toml, "not valid TOML"),
    "unknown toml key": (_unknown_key, "unknown setting"),
    "secret in toml": (_secret_in_file, "secret"),
    "bad keys file": (_bad_keys, "--keys"),
    "state dir unusable": (_state_dir_is_file, "--state-dir"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_setting_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    make_args, needle = CASES[case]
    result = run_cli(make_args(tmp_path), tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("iiot-bridge: error: ") and needle in lines[0]
    assert result.stdout == ""
    assert "secret" not in lines[0] or case == "secret in toml"


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    result = run_cli([], tmp_path, {"IIOT_NODE_TIMEOUT_INTERVALS": "three"})
    assert result.returncode == 2
    assert "IIOT_NODE_TIMEOUT_INTERVALS" in result.stderr


def test_every_flag_has_an_environment_variable() -> None:
    names = {o.env for o in config.OPTIONS}
    for needed in (
        "IIOT_SERIAL",
        "IIOT_MQTT_URL",
        "IIOT_MQTT_PASSWORD",
        "IIOT_INFLUX_URL",
        "IIOT_INFLUX_ORG",
        "IIOT_INFLUX_BUCKET",
        "IIOT_INFLUX_TOKEN",
        "IIOT_TOPIC_PREFIX",
        "IIOT_STATE_DIR",
    ):
        assert needed in names
    with pytest.raises(ConfigError):
        load(["--mqtt-url", "mqtt://host:notaport"], {})


def test_docs_list_every_setting(repo_root: Path) -> None:
    doc = (repo_root / "docs" / "bridge.md").read_text(encoding="utf-8")
    for opt in config.OPTIONS:
        assert f"`{opt.env}`" in doc, opt.env
        if opt.flag:
            assert f"`--{opt.name}`" in doc, opt.name
