"""MQTT over TLS with a client certificate, against Mosquitto with a generated CA."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bridge_kit import BridgeProcess, Gateway

from iiot_sim.localservers import Mosquitto


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d: Path) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                "-out", f"{name}.crt", cwd=d)  # fmt: skip


def test_tls_with_client_certificate(tmp_path: Path, gateway: Gateway) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    make_pki(pki)
    tls = (
        f"cafile {pki / 'ca.crt'}\ncertfile {pki / 'server.crt'}\nkeyfile {pki / 'server.key'}\n"
        "require_certificate true\n"
    )
    with Mosquitto(tmp_path / "mq", extra_config=tls) as broker:
        bridge = BridgeProcess(
            [
                "--serial",
                str(gateway.path),
                "--mqtt-url",
                f"mqtts://127.0.0.1:{broker.port}",
                "--mqtt-ca-file",
                str(pki / "ca.crt"),
                "--mqtt-cert-file",
                str(pki / "client.crt"),
                "--mqtt-key-file",
                str(pki / "client.key"),
                "--no-influx",
                "--state-dir",
                str(tmp_path / "state"),
                "--bridge-id",
                "test",
            ],  # fmt: skip
            tmp_path,
        ).start()
        try:
            bridge.wait_log("MQTT connected")
            # The plain-TCP observer cannot read a TLS listener: check with mosquitto_sub.
            out = subprocess.run(
                ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "--cafile",
                 str(pki / "ca.crt"), "--cert", str(pki / "client.crt"), "--key",
                 str(pki / "client.key"), "-t", "iiot/bridge/test/status", "-C", "1", "-W", "10"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert out.stdout.strip() == "online", out.stderr
            bridge.assert_running()
        finally:
            bridge.kill()
