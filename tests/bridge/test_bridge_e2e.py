"""The bridge end to end: pty -> iiot-bridge -> real Mosquitto and VictoriaMetrics."""

from __future__ import annotations

import time

from bridge_kit import Gateway, Node1, Observer, retained, send_series, wait_for

from iiot_codec import encode_stats, format_value
from iiot_sim.localservers import Mosquitto, VictoriaMetrics

STATUS = "iiot/bridge/test/status"  # [gateways] the bridge id is "test" (conftest)
METRICS = ("temperature", "humidity", "pressure", "gas_resistance", "voltage")
UNITS = {
    "temperature": "celsius",
    "humidity": "percent",
    "pressure": "hPa",
    "gas_resistance": "ohms",
    "voltage": "volt",
}


def test_topics_points_and_availability(
    broker: Mosquitto, victoria: VictoriaMetrics, gateway: Gateway, start_bridge
) -> None:
    obs = Observer(broker.port)
    bridge = start_bridge()
    node1 = Node1()
    t0 = time.time()
    sent = send_series(gateway, node1, 20, rssi=True)
    gateway.send_frame(
        encode_stats(2, 1, {"packets_received": 20, "crc_errors": 1}, full_counter=True)
    )
    gateway.wait_acked()
    t1 = time.time()

    # InfluxDB: measurement = metric, tags node + unit, field value, the reading's own time.
    samples = victoria.wait_samples(
        '{__name__=~"(temperature|humidity|pressure|gas_resistance|voltage)_value"}', 100
    )
    assert len(samples) == 100  # exactly once each
    by_metric: dict[str, dict[int, float]] = {}
    for labels, ts_ms, value in samples:
        metric = labels["__name__"].removesuffix("_value")
        assert labels == {"__name__": f"{metric}_value", "node": "node1", "unit": UNITS[metric]}
        by_metric.setdefault(metric, {})[ts_ms] = value
    for metric in METRICS:
        stamps = sorted(by_metric[metric])
        assert len(stamps) == 20
        for s, ts_ms in zip(sent, stamps, strict=True):
            # taken = received - age: between send and ack, minus the age.
            assert (t0 - s.age_s) * 1000 - 5 <= ts_ms <= (t1 - s.age_s) * 1000 + 5
            assert by_metric[metric][ts_ms] == s.readings[metric]
    rssi = victoria.wait_samples("rssi_value", 20)
    assert {lbl["unit"] for lbl, _, _ in rssi} == {"dBm"} and len(rssi) == 20
    snr = victoria.wait_samples('snr_value{node="node1",unit="dB"}', 20)
    assert {v for _, _, v in snr} == {7.5}
    counters = victoria.wait_samples('{node="node2"}', 2)
    assert {lbl["__name__"]: v for lbl, _, v in counters} == {
        "packets_received_value": 20.0,
        "crc_errors_value": 1.0,
    }
    assert {lbl["unit"] for lbl, _, _ in counters} == {"count"}
    # The bridge's own backlog per sink, every few seconds.
    backlog = victoria.wait_samples("bridge_backlog_value", 2)
    assert {(lbl["node"], lbl["unit"], lbl["sink"]) for lbl, _, _ in backlog} == {
        ("bridge", "count", "mqtt"),
        ("bridge", "count", "influx"),
    }

    # MQTT: every reading published, QoS 1; sensor values retained, rssi/snr not.
    wait_for(lambda: len(obs.payloads("iiot/node1/temperature")) >= 20, 10, "temperatures")
    assert obs.payloads("iiot/node1/temperature") == [
        format_value("temperature", s.readings["temperature"]).encode() for s in sent
    ]
    last = sent[-1].readings
    kept = wait_for(
        lambda: (r := retained(broker.port, "iiot/#")) and "iiot/node2/crc_errors" in r and r,
        10,
        "retained topics",
    )
    for metric in METRICS:
        assert kept[f"iiot/node1/{metric}"] == format_value(metric, last[metric]).encode()
    assert kept["iiot/node2/packets_received"] == b"20"
    assert "iiot/node1/rssi" not in kept and "iiot/node1/snr" not in kept
    assert obs.payloads("iiot/node1/rssi")[-1] == str(-40 - 19).encode()
    assert kept["iiot/bridge/test/status"] == b"online"
    assert kept["iiot/node1/status"] == b"online"

    # The bridge's own counters, for live views: published every few seconds, not retained.
    wait_for(
        lambda: int((obs.payloads("iiot/bridge/test/readings") or [b"0"])[-1]) >= 100,
        15,
        "the bridge's reading counter",
    )
    assert obs.payloads("iiot/bridge/test/backlog_mqtt")
    assert obs.payloads("iiot/bridge/test/backlog_influx")
    assert "iiot/bridge/test/readings" not in kept

    # Clean stop: offline published, exit code 0.
    assert bridge.terminate() == 0
    assert retained(broker.port, "iiot/bridge/test/status")["iiot/bridge/test/status"] == b"offline"
    obs.close()


def test_last_will_when_the_bridge_dies(broker: Mosquitto, gateway: Gateway, start_bridge) -> None:
    bridge = start_bridge()
    wait_for(
        lambda: retained(broker.port, STATUS, settle=0.2).get(STATUS) == b"online",
        20,
        "bridge online",
    )
    bridge.kill()
    wait_for(
        lambda: retained(broker.port, STATUS, settle=0.2).get(STATUS) == b"offline",
        20,
        "the last will",
    )
