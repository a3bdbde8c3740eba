"""Settings: precedence, secrets, and one clear line + exit 2 for each class of bad setting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from bridge_kit import BRIDGE_BIN

from iiot_bridge import config
from iiot_bridge.config import ConfigError, load
from iiot_bridge.outputs.influx import InfluxSettings
from iiot_bridge.outputs.mqtt_config import MqttSettings


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    cfg = tmp_path / "bridge.toml"
    cfg.write_text('topic_prefix = "from-file"\nbaud = 9600\nlog-format = "json"\n')
    env = {"IIOT_TOPIC_PREFIX": "from-env", "IIOT_BAUD": "57600"}
    s = load(["--config", str(cfg), "--baud", "19200", "--state-dir", str(tmp_path)], env)
    mqtt, influx = s.of(MqttSettings), s.of(InfluxSettings)
    assert s.baud == 19200  # flag over env and file
    assert mqtt.topic_prefix == "from-env"  # env over file
    assert s.log_format == "json"  # file over default
    assert influx.influx_bucket == "telemetry"  # the default


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
    mqtt, influx = s.of(MqttSettings), s.of(InfluxSettings)
    assert s.serial == ("/dev/iiot-gateway",)
    assert (mqtt.target.host, mqtt.target.port, mqtt.target.tls, mqtt.target.username) == (
        "localhost",
        1883,
        False,
        "iiot",
    )
    assert mqtt.mqtt_password == "Zq9-mqtt-secret" and influx.influx_token == "Zq9-influx-secret"
    assert influx.influx_url == "http://localhost:8086" and mqtt.topic_prefix == "site"
    assert mqtt.ha_discovery is True and influx.no_influx is False
    # Secrets stay out of repr (and so out of any log line that prints the settings).
    assert "Zq9" not in repr(s) + repr(mqtt) + repr(influx)
    s = load(["--influx-token-file", str(tmp_path / "token")], env)
    assert s.of(InfluxSettings).influx_token == "file-token"
    assert load(["--mqtt-url", "mqtts://broker"], env).of(MqttSettings).target.port == 8883


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
    names = {o.env for o in config.options()}
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


def test_docs_options_tables_are_the_generated_ones(repo_root: Path) -> None:
    doc = (repo_root / "docs" / "bridge.md").read_text(encoding="utf-8")
    assert config.with_options(doc) == doc, (
        "docs/bridge.md's options tables are stale: run "
        "`.venv/bin/python -m iiot_bridge.config --write docs/bridge.md`"
    )
    for opt in config.options():  # the generator's output really lists them
        assert f"`{opt.env}`" in doc, opt.env
        if opt.spec.flag:
            assert f"| `{opt.flag}` |" in doc, opt.key


def test_help_shows_every_flag_with_its_default(tmp_path: Path) -> None:
    result = run_cli(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    # argparse wraps lines; what follows the usage lines lists the options one by one
    text = " ".join(result.stdout.split()).split(" options: ", 1)[1]
    for opt in config.options():
        if not opt.spec.flag:
            continue
        assert f"{opt.flag} " in text, opt.flag
        entry = text.split(f"{opt.flag} ", 1)[1].split(" --")[0]
        assert f"(default: {opt.shown_default()})" in entry, (opt.flag, entry)
    assert "(default: 200)" in text.split("--influx-flush-ms MS", 1)[1].split(" --")[0]


def test_version_comes_from_the_package_metadata(tmp_path: Path) -> None:
    from importlib.metadata import version

    result = run_cli(["--version"], tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"iiot-bridge {version('iiot-lora-telemetry')}"


def test_each_setting_is_declared_once() -> None:
    keys = [opt.key for opt in config.options()]
    assert len(keys) == len(set(keys))
    flags = [opt.flag for opt in config.options()]
    assert len(flags) == len(set(flags))
