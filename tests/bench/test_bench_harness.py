"""The new harness pieces of issue 17 that need no server: the load generator's two line
formats and its link pacing, the Node-RED peer's committed flow and per-run user directory,
side-by-side figures, the ALOHA reference and the capacity levels."""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import capacity_bench, nodered, peer_specs, report
from bench.figures import Target
from bench.load import (
    BITS_PER_BYTE,
    GAS_BASE,
    LEGACY_READINGS_PER_FRAME,
    LINK_BAUD,
    LegacyLoad,
    Load,
    Pty,
    link_rate,
    paced_link,
)
from bench.node2_writer import Node2Writer
from bench.spec import Collector, Spec
from iiot_bridge.processors.lines import LegacyLine, parse_line

REPO = Path(__file__).resolve().parents[2]


def test_legacy_lines_are_the_earlier_format_and_the_bridge_reads_all_nine_readings() -> None:
    load = LegacyLoad(5, start=40)
    obj = json.loads(load.lines[0])
    assert set(obj) == {"ts", "id", "n1", "n2", "sig", "sts"}
    assert set(obj["n1"]) == {"t", "h", "g"} and obj["n1"]["g"] == GAS_BASE + 40
    parsed = parse_line(load.lines[0].rstrip(b"\n"))
    assert isinstance(parsed, LegacyLine)
    assert len(parsed.values) == LEGACY_READINGS_PER_FRAME == LegacyLoad.readings_per_frame
    gas = [v for node, metric, v, _ in parsed.values if metric == "gas_resistance"]
    assert gas == [GAS_BASE + 40]


def test_link_rate_is_bytes_per_second_at_115200_8n1() -> None:
    lines = [b"x" * 79 + b"\n"] * 10  # 80 bytes: 800 bits on the wire
    assert link_rate(lines) == pytest.approx(LINK_BAUD / (BITS_PER_BYTE * 80))
    assert 140 < link_rate(Load(50).lines) < 160  # contract lines, about 76 bytes
    assert 75 < link_rate(LegacyLoad(50).lines) < 90  # the earlier, longer lines


def test_paced_link_writes_at_the_link_byte_rate() -> None:
    lines = [b"y" * 143 + b"\n"] * 12  # 144 bytes = 12.5 ms each at 115200 8N1
    got = bytearray()
    with Pty() as pty:
        import os

        slave = os.open(pty.port, os.O_RDONLY | os.O_NONBLOCK)
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                try:
                    got.extend(os.read(slave, 65536))
                except BlockingIOError:
                    time.sleep(0.001)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        written = paced_link(pty, lines)
        time.sleep(0.05)
        stop.set()
        reader.join(2)
        os.close(slave)
    assert bytes(got) == b"".join(lines)
    span_s = (written[-1] - written[0]) / 1e9
    # 11 intervals of 12.5 ms; a schedule, so never early (a busy machine may make it late).
    assert span_s >= 11 * 144 * BITS_PER_BYTE / LINK_BAUD * 0.99


def test_flow_is_what_a_maker_wires_and_holds_no_secret() -> None:
    flow = json.loads(nodered.FLOW.read_text(encoding="utf-8"))
    by_type = {n["type"]: n for n in flow}
    for needed in ("serial in", "json", "function", "mqtt out", "influxdb batch"):
        assert needed in by_type, needed
    assert by_type["mqtt out"]["qos"] == "1" and by_type["mqtt out"]["retain"] == "true"
    assert by_type["influxdb"]["influxdbVersion"] == "2.0"
    assert by_type["serial-port"]["serialbaud"] == "115200"
    assert sum(1 for n in flow if n["type"] == "function") == 1
    text = nodered.FLOW.read_text(encoding="utf-8")
    assert "password" not in text and "token" not in text.lower().replace("tokens", "")
    assert "credentials" not in text


def test_user_dir_gets_the_runs_credentials_outside_the_flow(tmp_path: Path) -> None:
    creds = nodered.Credentials("bench", "pw-123", "tok-456")
    nodered.prepare_user_dir(tmp_path, 18801, creds)
    cred = json.loads((tmp_path / "flows_cred.json").read_text(encoding="utf-8"))
    assert {"user": "bench", "password": "pw-123"} in cred.values()
    assert {"token": "tok-456"} in cred.values()
    assert (tmp_path / "flows_cred.json").stat().st_mode & 0o077 == 0
    settings = (tmp_path / "settings.js").read_text(encoding="utf-8")
    assert '"credentialSecret": false' in settings and "18801" in settings
    assert "pw-123" not in settings
    assert (tmp_path / "flows.json").read_bytes() == nodered.FLOW.read_bytes()


def test_lock_file_pins_node_red_5_and_names_no_registry_host() -> None:
    lock = json.loads((nodered.PEER_DIR / "package-lock.json").read_text(encoding="utf-8"))
    packages = lock["packages"]
    assert packages["node_modules/node-red"]["version"].startswith("5.")
    assert "node_modules/node-red-contrib-influxdb" in packages
    assert "node_modules/node-red-node-serialport" in packages
    manifest = json.loads((nodered.PEER_DIR / "package.json").read_text(encoding="utf-8"))
    assert all(v[0].isdigit() for v in manifest["dependencies"].values())  # exact pins
    text = (nodered.PEER_DIR / "package-lock.json").read_text(encoding="utf-8")
    assert '"resolved"' not in text  # no download addresses: npm ci asks the client's registry


def test_side_by_side_figures_ratio_goal_and_tables(tmp_path: Path) -> None:
    specs = (
        Spec("p.cpu", "CPU per frame", "µs", Target("<=", 0.1, on="ratio"), compared=True),
        Spec("p.lost", "readings lost", "readings", peer_specs.NOTHING_LOST, compared=True),
        Spec("p.gone", "something", "ms", compared=True),
    )
    col = Collector("Peer", specs)
    col.put("p.cpu", 100.0)
    col.put_peer("p.cpu", 2000.0)
    col.put("p.lost", 0)
    col.put_peer("p.lost", 45)
    col.missing("p.gone", "no bridge")
    col.put_peer("p.gone", None, "no node")
    figs = col.figures("unused")
    cpu, lost, gone = figs
    assert cpu.ratio == pytest.approx(0.05) and cpu.meets_target is True
    assert lost.meets_target is True and lost.ratio == 0
    assert gone.meets_target is None and gone.to_json()["peer"] == "not available: no node"
    info = {
        "command": "make bench",
        "finished": "now",
        "duration_s": 1.0,
        "machine": dict.fromkeys(
            ("cpu_model", "cores", "python", "micropython", "mosquitto", "victoria_metrics"), "x"
        ),
    }
    block = report.markdown_tables(figs, info)
    assert "| figure | iiot-bridge | Node-RED | ours / Node-RED | unit | goal | met |" in block
    assert "| CPU per frame | 100 | 2,000 | 0.05 | µs | ratio ≤ 0.1 | yes |" in block
    assert "Node-RED 2,000, ratio 0.05" in report.console_table(figs)
    with pytest.raises(KeyError):
        Collector("x", (Spec("plain", "p", "ms"),)).put_peer("plain", 1.0)


def test_aloha_reference_and_capacity_levels() -> None:
    assert capacity_bench.aloha(0.5) == pytest.approx(math.exp(-1))
    assert capacity_bench.aloha(0.0) == 1.0
    air = capacity_bench.frame_airtime_ms()
    assert 30 < air < 120  # one node1 frame at SF7/BW125
    # The load grows with the node count at a fixed interval: 3 s and 50 % -> about 25 nodes.
    nodes = capacity_bench.nodes_for(0.5, 3000)
    assert nodes == round(0.5 * 3000 / air)
    assert capacity_bench.offered(nodes, 3000) == pytest.approx(0.5, rel=0.05)
    assert capacity_bench.nodes_for(0.001, 3000) == 1  # at least one node


def test_capacity_analysis_counts_delivery_retries_and_first_attempts() -> None:
    reading = {"t": 1.0, "tx": [], "acked": []}
    rep = {
        "nodes": {
            "2": {"forwarded": [{"src": 1, "fcnt": 1}, {"src": 1, "fcnt": 2}]},
            "1": {
                "readings": [
                    {**reading, "tx": [1], "acked": [1]},  # first attempt
                    {**reading, "tx": [2, 2, 2], "acked": [2]},  # two retransmissions
                    {**reading, "tx": [3, 3, 3, 3], "acked": []},  # lost
                    {**reading, "t": 100.0, "tx": [], "acked": []},  # too recent: left out
                ]
            },
        }
    }
    a = capacity_bench.analyse(rep, interval_ms=1000)
    assert (a["taken"], a["delivered"], a["retx"], a["first_ok"]) == (3, 2, 5, 1)
    assert (a["readings_all"], a["delivered_all"]) == (4, 2)
    assert a["rx_ms"] is None and a["spi"] is None
    rep["nodes"]["1"]["radio"] = {"spi_transactions": 900, "rx_window_ms": 120.0}
    a = capacity_bench.analyse(rep, interval_ms=1000)
    assert a["spi"] == 900 and a["rx_ms"] == 120.0


def test_capacity_counts_retransmissions_from_what_went_over_the_air() -> None:
    def tx(src: int, payload: bytes, start: float, outcome: str | None) -> dict[str, object]:
        return {"src": src, "payload": payload, "start": start, "air_s": 0.06, "gateway": outcome}

    def frame(src: int, counter: int, body: bytes) -> bytes:  # header: docs/protocol.md 1
        return bytes([0x40, src, 2, counter >> 8, counter & 0xFF]) + body

    air = [
        tx(1, frame(1, 7, b"r"), 0.0, "collision"),  # frame 7: lost once, then through
        tx(3, frame(3, 7, b"x"), 0.01, "collision"),  # another node's frame 7: lost once
        tx(2, b"ack", 0.2, None),  # node2's ACK: carried load only
        tx(1, frame(1, 7, b"r, older"), 0.5, "delivered"),  # same counter, other bytes
        tx(1, frame(1, 8, b"s"), 1.0, "delivered"),  # frame 8: first attempt
        tx(3, frame(3, 7, b"x"), 1.8, "delivered"),
    ]
    readings = [{"t": 0.0, "tx": []}, {"t": 9.0, "tx": []}]  # the second: too recent
    rep = {"nodes": {"2": {"forwarded": []}, "1": {"readings": readings}}}
    a = capacity_bench.analyse(rep, interval_ms=10, air=air)
    assert (a["frames"], a["transmissions"], a["retx"]) == (3, 5, 2)
    assert (a["first_ok"], a["first_attempt_of"]) == (1, 3)
    assert a["gateway_transmissions"] == 1
    assert a["carried_load"] == pytest.approx(6 * 0.06 / 1.86, abs=0.001)


class _FakePty:
    """What the writer uses of a pty: ``write`` and the bytes the host wrote back."""

    boot = 7

    def __init__(self) -> None:
        self.acks = bytearray()
        self.lines: list[bytes] = []
        self.hellos = 0

    def write(self, data: bytes) -> None:
        self.lines += [line + b"\n" for line in data.split(b"\n") if line]


class _FakePhase:
    kind = "iiot"

    def __init__(self) -> None:
        self.pty = _FakePty()


def _writer(lines: int, ring_bytes: int, resend_ms: int) -> tuple[Node2Writer, _FakePhase]:
    ph = _FakePhase()
    stop, halt = threading.Event(), threading.Event()
    writer = Node2Writer(ph, Load(lines, first_n=1), True, stop, halt)  # type: ignore[arg-type]
    writer.ring_bytes, writer.resend_ms = ring_bytes, resend_ms
    writer._wait_ms = resend_ms
    return writer, ph


def _numbers(ph: _FakePhase) -> list[int]:
    return [json.loads(line)["n"] for line in list(ph.pty.lines)]


def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:
        time.sleep(0.005)


def test_node2_writer_streams_again_what_the_host_did_not_acknowledge() -> None:
    writer, ph = _writer(lines=10, ring_bytes=8192, resend_ms=300)
    writer.start()
    _until(lambda: 4 in _numbers(ph))
    ph.pty.acks += b'{"ack":4}\n'  # the host stored lines 1..4, then went away
    _until(lambda: _numbers(ph).count(10) >= 2)  # silence: the stream starts again
    ph.pty.acks += b'{"ack":10}\n'
    writer.join(10)
    assert not writer.is_alive() and writer.error is None
    numbers = _numbers(ph)
    assert list(dict.fromkeys(numbers)) == list(range(1, 11))  # each line first in order
    assert all(numbers.count(n) == 1 for n in range(1, 5))  # acknowledged: never again
    assert writer.resent >= 6 and writer.writes == len(numbers)
    assert writer.held == 0


def test_node2_writer_holds_lines_while_the_ring_is_full_and_drops_none() -> None:
    size = 14 + len(json.loads(Load(1).lines[0])["f"]) // 2  # one ring entry
    writer, ph = _writer(lines=10, ring_bytes=2 * size, resend_ms=60_000)
    writer.start()
    _until(lambda: len(writer.written) == 10)
    assert sorted(set(_numbers(ph))) == [1, 2]  # only what the ring holds is sent
    assert writer.held == 8
    for n in range(2, 11, 2):  # the host acknowledges, room frees, held lines go in
        ph.pty.acks += b'{"ack":%d}\n' % n
        _until(lambda n=n: min(n + 2, 10) in _numbers(ph))
    writer.join(10)
    assert not writer.is_alive() and writer.error is None
    assert list(dict.fromkeys(_numbers(ph))) == list(range(1, 11))


def test_results_name_no_path_of_this_machine() -> None:
    import tempfile

    col = Collector("S", (Spec("k", "label", "ms", compared=True),))
    col.missing("k", f"import failed ({REPO}/sim/iiot_sim/__init__.py)")
    col.put_peer("k", None, f"log in {tempfile.gettempdir()}/iiot-bench-x/node-red.log")
    (out,) = col.figures("unused")
    out.detail = {"folder": str(REPO / "build" / "firmware"), "n": [f"{REPO}/a"]}
    report.scrub([out])
    text = json.dumps(out.to_json())
    assert str(REPO) not in text and tempfile.gettempdir() + "/" not in text
    assert "sim/iiot_sim/__init__.py" in out.reason and "<tmp>" in out.peer_reason
    assert out.detail == {"folder": "build/firmware", "n": ["a"]}


def test_node2_writer_sends_everything_again_when_a_host_says_hello() -> None:
    writer, ph = _writer(lines=6, ring_bytes=8192, resend_ms=60_000)
    writer.start()
    _until(lambda: 6 in _numbers(ph))
    ph.pty.acks += b'{"ack":2,"boot":7}\n{"ack":5,"boot":3}\n'  # the second: another boot
    time.sleep(0.1)
    ph.pty.hellos += 1  # a bridge opened the port (the pty answers the hello)
    _until(lambda: _numbers(ph).count(6) >= 2)
    ph.pty.acks += b'{"ack":6,"boot":7}\n'
    writer.join(10)
    assert not writer.is_alive() and writer.error is None
    numbers = _numbers(ph)
    assert numbers[:6] == [1, 2, 3, 4, 5, 6] and numbers[6:] == [3, 4, 5, 6]


def test_pty_speaks_node2s_session_protocol() -> None:
    import os

    with Pty(boot=9) as pty:
        slave = os.open(pty.port, os.O_RDWR | os.O_NONBLOCK)
        try:
            pty.announce()
            os.write(slave, b'{"hello":4242}\n')
            got = b""
            deadline = time.monotonic() + 5
            while got.count(b"\n") < 2 and time.monotonic() < deadline:
                try:
                    got += os.read(slave, 4096)
                except BlockingIOError:
                    time.sleep(0.01)
        finally:
            os.close(slave)
    first, second = (json.loads(line) for line in got.splitlines()[:2])
    assert first == {"boot": 9} and second == {"hello": 4242, "boot": 9}
    assert pty.hellos == 1
