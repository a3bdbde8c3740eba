"""The shipped Mosquitto config, run by the real broker: anonymous clients are refused.

The test runs deploy/mosquitto/entrypoint.sh as compose does (it builds the password file from
the environment), then starts /usr/sbin/mosquitto with deploy/mosquitto/mosquitto.conf. Only
the container paths and the port are rewritten; the auth settings are used as shipped.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from deploy_paths import MOSQUITTO_DIR
from paho.mqtt.reasoncodes import ReasonCode

MOSQUITTO = "/usr/sbin/mosquitto"
ENTRYPOINT = MOSQUITTO_DIR / "entrypoint.sh"
USER = "iiot"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_entrypoint(run_dir: Path, password: str, **extra: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ["PATH"],
        "MQTT_USERNAME": USER,
        "MQTT_PASSWORD": password,
        "MOSQUITTO_CONFIG_DIR": str(MOSQUITTO_DIR),
        "MOSQUITTO_RUN_DIR": str(run_dir),
        **extra,
    }
    # `true` stands in for the image's entrypoint that would start the broker.
    return subprocess.run(
        ["sh", str(ENTRYPOINT), "true"], env=env, capture_output=True, text=True, timeout=30
    )


def local_config(tmp: Path, port: int) -> Path:
    """The shipped config with container paths and the port moved into `tmp`."""
    raw = (MOSQUITTO_DIR / "mosquitto.conf").read_text(encoding="utf-8")
    # Comments dropped: they mention container paths that are not settings.
    shipped = "\n".join(ln for ln in raw.splitlines() if not ln.lstrip().startswith("#")) + "\n"
    assert len(re.findall(r"^listener 1883$", shipped, re.M)) == 1
    text = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", shipped, flags=re.M)
    text = text.replace("/mosquitto/run", str(tmp / "run"))
    text = text.replace("/mosquitto/data/", f"{tmp / 'data'}/")
    assert "/mosquitto/" not in text
    # The auth settings survive the rewrite untouched.
    for line in ("per_listener_settings false", "allow_anonymous false"):
        assert re.search(rf"^{line}$", text, re.M), line
    assert re.search(rf"^password_file {tmp / 'run' / 'passwd'}$", text, re.M)
    # As root the broker would switch to user "mosquitto", which cannot enter pytest's tmp.
    text += f"\nuser {pwd.getpwuid(os.getuid()).pw_name}\n"
    (tmp / "data").mkdir(exist_ok=True)
    path = tmp / "mosquitto.conf"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Broker:
    port: int
    password: str
    tmp: Path


def wait_listening(port: int, proc: subprocess.Popen, deadline_s: float = 15) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"mosquitto exited with {proc.returncode}: {out}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"mosquitto did not listen on {port} within {deadline_s} s")


def start_broker(tmp: Path, password: str, ports: list[int]) -> subprocess.Popen:
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(tmp / "mosquitto.conf")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for port in ports:
            wait_listening(port, proc)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    password = secrets.token_hex(16)
    result = run_entrypoint(tmp_path / "run", password)
    assert result.returncode == 0, result.stderr
    port = free_port()
    local_config(tmp_path, port)
    proc = start_broker(tmp_path, password, [port])
    yield Broker(port, password, tmp_path)
    stop(proc)


def connack(
    port: int,
    username: str | None = None,
    password: str | None = None,
    ca: Path | None = None,
) -> ReasonCode:
    """The broker's answer to one CONNECT (MQTT 3.1.1, as the bridge uses)."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"deploy-test-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv311,
    )
    if username is not None:
        client.username_pw_set(username, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
    answered = threading.Event()
    answer: list[ReasonCode] = []

    def on_connect(_c, _u, _flags, reason_code: ReasonCode, _props) -> None:
        answer.append(reason_code)
        answered.set()

    client.on_connect = on_connect
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK within 10 s"
    finally:
        client.disconnect()
        client.loop_stop()
    return answer[0]


def test_anonymous_client_is_refused(broker: Broker) -> None:
    reason = connack(broker.port)
    assert reason.is_failure
    assert reason == "Not authorized"


def test_wrong_password_is_refused(broker: Broker) -> None:
    assert connack(broker.port, USER, broker.password + "x").is_failure
    assert connack(broker.port, "someone-else", broker.password).is_failure


def test_generated_credentials_are_accepted(broker: Broker) -> None:
    reason = connack(broker.port, USER, broker.password)
    assert not reason.is_failure, str(reason)


def test_password_file_is_private_and_hashed(broker: Broker) -> None:
    passwd = broker.tmp / "run" / "passwd"
    assert passwd.stat().st_mode & 0o077 == 0
    assert broker.password not in passwd.read_text()


def compose_healthcheck(compose: dict) -> str:
    test = compose["services"]["mosquitto"]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    # compose turns $$ into $ before the container's shell sees the command.
    return test[1].replace("$$", "$")


def test_compose_healthcheck_passes_only_with_the_right_password(
    broker: Broker, compose: dict
) -> None:
    # mosquitto_sub comes with Debian's mosquitto-clients, as in the eclipse-mosquitto image.
    command = compose_healthcheck(compose)
    assert "-p 1883" in command
    command = command.replace("-p 1883", f"-p {broker.port}")

    def check(password: str) -> int:
        env = {"PATH": os.environ["PATH"], "MQTT_USERNAME": USER, "MQTT_PASSWORD": password}
        return subprocess.run(["sh", "-c", command], env=env, timeout=30).returncode

    assert check(broker.password) == 0
    assert check("wrong") != 0


def make_certs(certs: Path) -> None:
    """A private CA and a server certificate for 127.0.0.1, as docs/operations.md shows."""
    certs.mkdir()

    def openssl(command: str) -> None:
        subprocess.run(["openssl", *command.split()], cwd=certs, check=True, capture_output=True)

    openssl("req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=ca -keyout ca.key -out ca.crt")
    openssl("req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr")
    (certs / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2"
        " -extfile san.ext -out server.crt"
    )


def test_tls_listener_needs_its_certificates(tmp_path: Path) -> None:
    result = run_entrypoint(
        tmp_path / "run", "pw", MQTT_TLS="on", MOSQUITTO_CERTS_DIR=str(tmp_path / "none")
    )
    assert result.returncode != 0
    assert "ca.crt is missing" in result.stderr


def test_tls_listener_when_switched_on(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    make_certs(certs)
    password = secrets.token_hex(16)
    result = run_entrypoint(
        tmp_path / "run", password, MQTT_TLS="on", MOSQUITTO_CERTS_DIR=str(certs)
    )
    assert result.returncode == 0, result.stderr
    tls_conf = tmp_path / "run" / "conf.d" / "tls.conf"
    assert tls_conf.read_text() == (MOSQUITTO_DIR / "tls.conf").read_text()

    plain, tls = free_port(), free_port()
    text = tls_conf.read_text()
    assert len(re.findall(r"^listener 8883$", text, re.M)) == 1
    text = re.sub(r"^listener 8883$", f"listener {tls} 127.0.0.1", text, flags=re.M)
    tls_conf.write_text(text.replace("/mosquitto/certs", str(certs)))
    local_config(tmp_path, plain)

    proc = start_broker(tmp_path, password, [plain, tls])
    try:
        ca = certs / "ca.crt"
        assert connack(tls, ca=ca) == "Not authorized"
        assert not connack(tls, USER, password, ca=ca).is_failure
    finally:
        stop(proc)

    # Switched off again, the entrypoint removes the listener.
    assert run_entrypoint(tmp_path / "run", password).returncode == 0
    assert not tls_conf.exists()
