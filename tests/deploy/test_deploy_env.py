""".env handling: generated secrets, nothing secret committed, .env ignored by git."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

from deploy_paths import REPO

EXAMPLE = REPO / ".env.example"


def values(text: str) -> dict[str, str]:
    found = (re.match(r"^([A-Z0-9_]+)=(.*)$", line) for line in text.splitlines())
    return {m.group(1): m.group(2) for m in found if m}


def test_example_holds_placeholders_not_secrets(envgen: ModuleType) -> None:
    example = values(EXAMPLE.read_text())
    secret_keys = {k for k in example if re.search("PASSWORD|TOKEN|SECRET", k)}
    assert secret_keys >= {
        "IIOT_MQTT_PASSWORD",
        "IIOT_INFLUX_TOKEN",
        "INFLUXDB_ADMIN_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    }
    assert {k: example[k] for k in secret_keys} == dict.fromkeys(secret_keys, envgen.PLACEHOLDER)
    # Nothing else that looks like a key or token either.
    others = [v for v in example.values() if v != envgen.PLACEHOLDER]
    assert not [v for v in others if re.fullmatch(r"[A-Za-z0-9+/=_-]{20,}", v)]


def test_example_urls_agree_with_the_ports_and_user() -> None:
    example = values(EXAMPLE.read_text())
    mqtt = urlsplit(example["IIOT_MQTT_URL"])
    assert (mqtt.scheme, mqtt.username, mqtt.password) == ("mqtt", example["MQTT_USERNAME"], None)
    assert mqtt.port == int(example["MQTT_PORT"])
    assert urlsplit(example["IIOT_INFLUX_URL"]).port == int(example["INFLUXDB_PORT"])


def test_dotenv_is_ignored_and_not_tracked() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO)
    assert ignored.returncode == 0, ".env is not git-ignored"
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert not [f for f in tracked if Path(f).name == ".env"]


def test_new_env_gets_fresh_distinct_secrets(tmp_path: Path, envgen: ModuleType, capsys) -> None:
    env = tmp_path / ".env"
    assert envgen.main(["--env", str(env), "--example", str(EXAMPLE)]) == 0
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    made, example = values(env.read_text()), values(EXAMPLE.read_text())
    assert set(made) == set(example)
    secrets = {k: v for k, v in made.items() if example[k] == envgen.PLACEHOLDER}
    assert len(secrets) == 5  # [gateways] + REDIS_PASSWORD (the dedup profile)
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", v) for v in secrets.values())
    assert len(set(secrets.values())) == len(secrets)
    assert {k: v for k, v in made.items() if k not in secrets} == {
        k: v for k, v in example.items() if k not in secrets
    }
    # Shown once to the user.
    out = capsys.readouterr().out
    assert all(f"{k}={v}" in out for k, v in secrets.items())


def test_second_run_changes_nothing(tmp_path: Path, envgen: ModuleType, capsys) -> None:
    env = tmp_path / ".env"
    envgen.main(["--env", str(env), "--example", str(EXAMPLE)])
    before = env.read_text()
    capsys.readouterr()
    envgen.main(["--env", str(env), "--example", str(EXAMPLE)])
    assert env.read_text() == before
    assert capsys.readouterr().out == ""


def test_existing_env_is_completed_not_overwritten(tmp_path: Path, envgen: ModuleType) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# mine\nIIOT_MQTT_PASSWORD=kept-as-is\nGRAFANA_ADMIN_PASSWORD=generated-by-make-up\n"
    )
    envgen.main(["--env", str(env), "--example", str(EXAMPLE)])
    text = env.read_text()
    made = values(text)
    assert text.startswith("# mine\nIIOT_MQTT_PASSWORD=kept-as-is\n")
    assert made["IIOT_MQTT_PASSWORD"] == "kept-as-is"
    # A placeholder copied by hand is replaced; variables missing from .env are added.
    assert re.fullmatch(r"[A-Za-z0-9]{32}", made["GRAFANA_ADMIN_PASSWORD"])
    assert re.fullmatch(r"[A-Za-z0-9]{32}", made["IIOT_INFLUX_TOKEN"])
    assert set(made) == set(values(EXAMPLE.read_text()))
    assert envgen.PLACEHOLDER not in text
