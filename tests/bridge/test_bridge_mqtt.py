"""MQTT specifics against the real broker: node availability, state JSON, authentication,
earlier-firmware lines, Home Assistant discovery, /metrics and /healthz."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.publish as publish
from bridge_kit import BridgeProcess, Gateway, Node1, Observer, retained, wait_for
from ha_schema import problems

from iiot_sim.localservers import Mosquitto, VictoriaMetrics, free_port


def test_node_goes_offline_after_missing_three_intervals_and_comes_back(
    broker: Mosquitto, gateway: Gateway, start_bridge
) -> None:
    obs = Observer(broker.port, "iiot/node1/#")
    bridge = start_bridge("--state-topic", "--no-influx")
    bridge.wait_log("open at")
    node = Node1()
    for i in range(4):  # a node reporting every 0.3 s
        frame, _ = node.frame(i)
        gateway.send_frame(frame)
        gateway.wait_acked()
        time.sleep(0.3)  # the report interval being simulated, not a wait for the bridge
    wait_for(lambda: b"offline" in obs.payloads("iiot/node1/status"), 10, "node1 offline")
    assert obs.payloads("iiot/node1/status") == [b"online", b"offline"]
    frame, _ = node.frame(99)
    gateway.send_frame(frame)
    wait_for(lambda: obs.payloads("iiot/node1/status")[-1:] == [b"online"], 10, "node1 back")
    state = json.loads(wait_for(lambda: obs.payloads("iiot/node1/state"), 5, "state")[-1])
    assert state["temperature"] == 20.99 and state["humidity"] == 40.99
    assert state["time"].endswith("Z") and "T" in state["time"]
    assert retained(broker.port, "iiot/node1/status")["iiot/node1/status"] == b"online"
    obs.close()


def test_password_authentication_and_a_wrong_password(tmp_path: Path, gateway: Gateway) -> None:
    with Mosquitto(tmp_path / "mq", users={"iiot": "right-pass"}) as broker:
        common = [
            "--serial", str(gateway.path),
            "--mqtt-url", f"mqtt://iiot@127.0.0.1:{broker.port}",
            "--no-influx", "--retry-max", "1s",
        ]  # fmt: skip
        wrong = BridgeProcess(
            [*common, "--state-dir", str(tmp_path / "s1")], tmp_path, {"IIOT_MQTT_PASSWORD": "nope"}
        ).start()
        try:
            wrong.wait_log("refused")
            assert "check the user name" in wrong.log() and "nope" not in wrong.log()
            wrong.assert_running()
        finally:
            wrong.kill()
        (tmp_path / "pw").write_text("right-pass\n")
        right = BridgeProcess(
            [
                *common,
                "--state-dir",
                str(tmp_path / "s2"),
                "--mqtt-password-file",
                str(tmp_path / "pw"),
            ],
            tmp_path,
        ).start()
        try:
            right.wait_log("MQTT connected")
            assert "right-pass" not in right.log()
        finally:
            right.kill()


def test_earlier_firmware_lines(
    broker: Mosquitto, victoria: VictoriaMetrics, gateway: Gateway, start_bridge
) -> None:
    bridge = start_bridge()
    bridge.wait_log("open at")
    line = (
        '{"ts":194500,"id":"N2","n1":{"t":28.3,"h":52.6,"g":461235},"n2":{"t":27.8,"h":48.8},'
        '"sig":{"rssi":-32,"snr":12},"sts":{"rx":1,"err":0}}\\n'
    )
    for _ in range(3):  # unnumbered and never acknowledged: send until stored
        gateway.send_line(line)
        time.sleep(0.2)  # lines flushed on open are not resent by the old firmware
    samples = victoria.wait_samples('{__name__=~"temperature_value|crc_errors_value"}', 3)
    got = {(lbl["__name__"], lbl["node"], lbl["unit"], v) for lbl, _, v in samples}
    assert got >= {
        ("temperature_value", "node1", "celsius", 28.3),
        ("temperature_value", "node2", "celsius", 27.8),
        ("crc_errors_value", "node2", "count", 0.0),
    }
    kept = wait_for(
        lambda: (
            (r := retained(broker.port, "iiot/#", settle=0.3)) and "iiot/node2/humidity" in r and r
        ),
        10,
        "retained",
    )
    assert kept["iiot/node1/temperature"] == b"28.30"
    assert kept["iiot/node1/gas_resistance"] == b"461235"
    assert kept["iiot/node2/humidity"] == b"48.80"
    assert kept["iiot/node2/packets_received"] == b"1"
    assert "iiot/node1/rssi" not in kept


def test_home_assistant_discovery(
    broker: Mosquitto, gateway: Gateway, start_bridge, bridge_args
) -> None:
    bridge = start_bridge("--ha-discovery", "--no-influx")
    bridge.wait_log("open at")
    frame, _ = Node1().frame(1)
    gateway.send_frame(frame, rssi=-50, snr=5)
    gateway.wait_acked()
    topic = "homeassistant/sensor/iiot_node1_temperature/config"
    configs = wait_for(
        lambda: (r := retained(broker.port, "homeassistant/#", settle=0.3)) and len(r) >= 7 and r,
        10,
        "discovery configs",
    )
    assert set(configs) == {
        f"homeassistant/sensor/iiot_node1_{m}/config"
        for m in ("temperature", "humidity", "pressure", "gas_resistance", "voltage", "rssi", "snr")
    }
    # Every config as Home Assistant's MQTT sensor schema sees it.
    for config_topic, raw in configs.items():
        assert problems("sensor", json.loads(raw)) == [], config_topic
    cfg = json.loads(configs[topic])
    assert cfg["unique_id"] == "iiot_node1_temperature"
    assert cfg["default_entity_id"] == "sensor.iiot_node1_temperature" and "object_id" not in cfg
    names = {json.loads(raw)["name"] for raw in configs.values()}
    assert {"Temperature", "Gas resistance", "RSSI", "SNR"} <= names
    assert cfg["device_class"] == "temperature" and cfg["state_class"] == "measurement"
    assert cfg["unit_of_measurement"] == "°C" and cfg["state_topic"] == "iiot/node1/temperature"
    availability = [a["topic"] for a in cfg["availability"]]
    assert availability == ["iiot/bridge/test/status", "iiot/node1/status"]
    assert cfg["device"]["identifiers"] == ["iiot_node1"]
    assert json.loads(configs["homeassistant/sensor/iiot_node1_rssi/config"])["device_class"] == (
        "signal_strength"
    )
    # Home Assistant restarted: it says "online" and gets every config again.
    obs = Observer(broker.port, topic)
    wait_for(lambda: obs.payloads(topic), 5, "the retained config")
    publish.single("homeassistant/status", "online", hostname="127.0.0.1", port=broker.port)
    wait_for(lambda: len(obs.payloads(topic)) >= 2, 10, "discovery published again")
    obs.close()
    bridge.terminate()
    # --ha-discovery-remove clears them (one-shot, exit 0).
    remover = BridgeProcess([*bridge_args, "--ha-discovery-remove"], Path(bridge.workdir)).start()
    assert remover.proc is not None and remover.proc.wait(30) == 0, remover.log()
    assert retained(broker.port, "homeassistant/#", settle=0.3) == {}


def test_metrics_and_healthz(broker: Mosquitto, gateway: Gateway, start_bridge) -> None:
    port = free_port()
    bridge = start_bridge("--http-port", str(port), "--no-influx")
    base = f"http://127.0.0.1:{port}"

    def health() -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())
        except OSError:
            return 0, {}

    wait_for(lambda: health()[0] == 200, 20, "healthy")
    frame, _ = Node1().frame(1)
    gateway.send_frame(frame)
    gateway.wait_acked()
    gateway.send_line("Traceback (most recent call last):")

    def scrape() -> dict[str, float]:
        with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        return {
            ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1])
            for ln in text.splitlines()
            if ln.startswith("iiot_bridge_")
        }

    m = wait_for(
        lambda: (s := scrape()) and s.get("iiot_bridge_console_lines_total") and s, 10, "metrics"
    )
    assert m["iiot_bridge_frames_total"] == 1 and m["iiot_bridge_readings_total"] == 5
    wait_for(lambda: scrape().get('iiot_bridge_delivered_total{sink="mqtt"}') == 5, 10, "delivered")
    assert 'iiot_bridge_queued{sink="mqtt"}' in m and "iiot_bridge_drops_total" in m
    broker.kill()
    status, body = wait_for(lambda: (h := health())[0] == 503 and h, 20, "unhealthy without a sink")
    assert body["status"] == "failing" and "no sink is connected" in body["reasons"][0]
    broker.start()
    wait_for(lambda: health()[0] == 200, 20, "healthy again")
    gateway.unplug()
    status, body = wait_for(lambda: (h := health())[0] == 503 and h, 20, "unhealthy without serial")
    assert body["reasons"] == ["serial port not open"]
    bridge.assert_running()
