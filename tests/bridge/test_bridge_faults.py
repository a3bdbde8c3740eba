"""Faults: each ends with every reading exactly once in the database and the latest value
retained in MQTT, with the bridge still running (it never exits on its own)."""

from __future__ import annotations

import json
import random
import time
import urllib.request
from pathlib import Path

from bridge_kit import BridgeProcess, Gateway, Node1, retained, send_series, wait_for

from iiot_codec import encode_line, format_value
from iiot_sim.localservers import Mosquitto, VictoriaMetrics, free_port

METRICS = ("temperature", "humidity", "pressure", "gas_resistance", "voltage")
AIR = '{__name__=~"(temperature|humidity|pressure|gas_resistance|voltage)_value"}'


def assert_exactly_once(victoria: VictoriaMetrics, node: Node1, strict: bool = True) -> None:
    """Every reading node1 sent is in the database once, at its own timestamp.

    InfluxDB keeps one point per series and timestamp; VictoriaMetrics (run without
    deduplication here) keeps every write. ``strict`` also demands that no point was even
    written twice; after a SIGKILL a rewrite of a point is allowed (it is idempotent in
    InfluxDB), so there the distinct points are counted.
    """
    want = len(node.sent) * len(METRICS)
    samples = victoria.wait_samples(AIR, want, timeout=60)
    distinct = {(lbl["__name__"], ts, v) for lbl, ts, v in samples}
    assert len(distinct) == want, f"{len(distinct)} distinct points, want {want}"
    if strict:
        assert len(samples) == want, f"{len(samples)} samples for {want} readings"
    expected = {(f"{m}_value", s.readings[m]) for s in node.sent for m in METRICS}
    assert {(name, v) for name, _, v in distinct} == expected
    # One timestamp per frame, shared by its readings, 1 s apart (ages count down).
    stamps = sorted({ts for _, ts, _ in distinct})
    assert len(stamps) == len(node.sent)


def assert_latest_retained(broker: Mosquitto, node: Node1) -> None:
    last = node.sent[-1].readings

    def ok() -> bool:
        kept = retained(broker.port, "iiot/node1/#", settle=0.3)
        return all(
            kept.get(f"iiot/node1/{m}") == format_value(m, last[m]).encode() for m in METRICS
        )

    wait_for(ok, 30, "the latest values retained", interval=0.2)


def test_broker_killed_and_restarted_mid_stream(
    broker: Mosquitto, victoria: VictoriaMetrics, gateway: Gateway, start_bridge
) -> None:
    bridge = start_bridge()
    bridge.wait_log("open at")
    node = Node1()
    send_series(gateway, node, 40)
    gateway.wait_acked()
    broker.kill()
    send_series(gateway, node, 60, start=40)
    gateway.wait_acked()  # the outbox keeps accepting while the broker is away
    bridge.wait_log("MQTT connection lost")
    broker.start()
    assert_latest_retained(broker, node)
    assert_exactly_once(victoria, node)
    bridge.assert_running()


def test_database_down_for_30_seconds(
    broker: Mosquitto, victoria: VictoriaMetrics, gateway: Gateway, start_bridge
) -> None:
    bridge = start_bridge()
    bridge.wait_log("open at")
    node = Node1()
    send_series(gateway, node, 20)
    gateway.wait_acked()
    victoria.wait_samples(AIR, 100)
    victoria.stop()
    down_until = time.monotonic() + 30
    i = 20
    while time.monotonic() < down_until:
        send_series(gateway, node, 10, start=i)
        i += 10
        gateway.wait_acked()
        time.sleep(1)  # a reading every so often during the outage, as nodes report
    bridge.assert_running()
    assert "cannot reach" in bridge.log()
    victoria.start()
    assert_exactly_once(victoria, node)
    assert_latest_retained(broker, node)
    bridge.assert_running()


def test_bridge_sigkilled_and_restarted(
    broker: Mosquitto, victoria: VictoriaMetrics, gateway: Gateway, start_bridge
) -> None:
    node = Node1()
    start = 0
    for _round in range(3):
        bridge = start_bridge()
        bridge.wait_log("open at")
        gateway.resend_unacked()  # node2 resends what the last bridge did not acknowledge
        send_series(gateway, node, 60, start=start)
        start += 60
        # Kill it while lines are still arriving and being committed.
        target = start - 50
        wait_for(lambda: (gateway.pump(), gateway.acked)[1] > target, 20, "some acks")  # noqa: B023
        bridge.kill()
    bridge = start_bridge()
    bridge.wait_log("open at")
    gateway.wait_acked()
    assert_exactly_once(victoria, node, strict=False)
    assert_latest_retained(broker, node)
    bridge.assert_running()


def test_pty_closed_and_reopened(
    broker: Mosquitto, victoria: VictoriaMetrics, gateway: Gateway, start_bridge
) -> None:
    bridge = start_bridge()
    bridge.wait_log("open at")
    node = Node1()
    send_series(gateway, node, 30)
    gateway.unplug()
    bridge.wait_log("lost")
    time.sleep(0.5)  # unplugged for a while (nothing to poll: the port is gone)
    bridge.assert_running()
    gateway.plug()
    wait_for(lambda: bridge.log().count("open at") >= 2, 20, "the bridge reopening the port")
    send_series(gateway, node, 30, start=30)
    gateway.wait_acked()  # resends whatever was lost with the old pty
    assert_exactly_once(victoria, node)
    assert_latest_retained(broker, node)
    bridge.assert_running()


def garbage(rng: random.Random, good_lines: list[str]) -> str:
    kind = rng.randrange(6)
    if kind == 0:  # random printable noise
        return "".join(chr(rng.randrange(32, 127)) for _ in range(rng.randrange(1, 120)))
    if kind == 1:  # a frame line with one hex digit changed: the CRC catches it
        line = json.loads(rng.choice(good_lines))
        hexf = line["f"]
        pos = rng.randrange(len(hexf))
        digit = rng.choice([d for d in "0123456789abcdef" if d != hexf[pos]])
        return encode_line(bytes.fromhex(hexf[:pos] + digit + hexf[pos + 1 :]))
    if kind == 2:  # truncated frame
        line = json.loads(rng.choice(good_lines))
        return '{{"f":"{}"}}'.format(line["f"][: rng.randrange(0, len(line["f"]) - 2) & ~1])
    if kind == 3:  # broken JSON
        return rng.choice(good_lines)[: rng.randrange(1, 30)]
    if kind == 4:  # JSON of the wrong shape
        return json.dumps({"f": rng.randrange(1000), "rssi": "loud"})
    return "Traceback (most recent call last):"  # console output


def test_ten_thousand_garbage_and_corrupt_lines(
    broker: Mosquitto, victoria: VictoriaMetrics, gateway: Gateway, start_bridge
) -> None:
    http_port = free_port()
    bridge = start_bridge("--http-port", str(http_port))
    bridge.wait_log("open at")
    gateway.wait_session()  # lines written before it would be stale, not garbage
    rng = random.Random(4)
    node = Node1()
    good: list[str] = []
    for i in range(200):
        frame, sent = node.frame(i, age_s=100000 - i)
        node.sent.append(sent)
        gateway.send_frame(frame)
        good.append(gateway.unacked[gateway.n])
        for _ in range(50):
            gateway.send_line(garbage(rng, good))
    gateway.write_raw(bytes(rng.randrange(256) for _ in range(6000)) + b"\n")  # binary junk
    gateway.wait_acked()
    assert_exactly_once(victoria, node)
    assert_latest_retained(broker, node)
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5) as resp:
        metrics = resp.read().decode()
    counts = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("iiot_bridge_") and not line.startswith("#")
    }
    rejected = sum(
        counts[f"iiot_bridge_{k}_total"] for k in ("malformed", "bad_crc", "console_lines")
    )
    assert rejected >= 10_000
    assert counts["iiot_bridge_readings_total"] >= 200 * 5
    bridge.assert_running()


def test_bridge_starts_with_every_server_down(tmp_path, gateway: Gateway) -> None:
    """A server that is down at start is not an error: buffer, retry, deliver later."""
    mqtt_port, vm_port = free_port(), free_port()
    bridge = BridgeProcess(
        [
            "--serial",
            str(gateway.path),
            "--mqtt-url",
            f"mqtt://127.0.0.1:{mqtt_port}",
            "--influx-url",
            f"http://127.0.0.1:{vm_port}",
            "--state-dir",
            str(tmp_path / "state"),
            "--retry-max",
            "1s",
        ],  # fmt: skip
        tmp_path,
        {"IIOT_INFLUX_TOKEN": "t"},
    ).start()
    try:
        bridge.wait_log("open at")
        node = Node1()
        send_series(gateway, node, 10)
        gateway.wait_acked()
        bridge.assert_running()
        with (
            Mosquitto(tmp_path / "mq", port=mqtt_port) as broker,
            VictoriaMetrics(tmp_path / "vm", port=vm_port, dedup_ms=0) as victoria,
        ):
            assert_exactly_once(victoria, node)
            assert_latest_retained(broker, node)
        bridge.assert_running()
    finally:
        bridge.kill()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_memory_stays_flat_during_an_outage(
    broker: Mosquitto, victoria: VictoriaMetrics, gateway: Gateway, start_bridge
) -> None:
    """Both servers down: readings pile up on disk, not in the bridge's memory."""
    broker.kill()
    victoria.kill()
    bridge = start_bridge()
    bridge.wait_log("open at")
    node = Node1()
    send_series(gateway, node, 3000)
    gateway.wait_acked()
    assert bridge.proc is not None
    before = rss_kb(bridge.proc.pid)
    for start in range(3000, 15000, 3000):
        send_series(gateway, node, 3000, start=start)
        gateway.wait_acked()
    after = rss_kb(bridge.proc.pid)
    # 12,000 more frames (84,000 readings) are on disk; memory may wobble, not grow with them.
    assert after - before < 8 * 1024, f"RSS grew from {before} kB to {after} kB"
    bridge.assert_running()
