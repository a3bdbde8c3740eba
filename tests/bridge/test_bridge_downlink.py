"""Settings sent down (docs/protocol.md 3.6): a request on MQTT reaches node2 as a host
line, is kept until the node confirms it (across a bridge restart), can be withdrawn, and
invalid requests are refused; Home Assistant gets a number entity for it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.publish as publish
import pytest
from bridge_kit import Gateway, Observer, retained, wait_for
from ha_schema import problems

from iiot_bridge.downlink import DownlinkError, Request, limits, parse
from iiot_codec import encode_stats
from iiot_codec.settings import DOWNLINK
from iiot_sim.localservers import Mosquitto

TOPIC = "iiot/node1/set/interval_s"


def test_requests_are_checked_against_the_boards_table() -> None:
    (tag, name), *_ = DOWNLINK
    low, high = limits(name)
    assert parse("node1", name, str(high).encode()) == Request(1, tag, high)
    assert parse("node7", name, b"") == Request(7, tag, None)  # withdraw
    for node, setting, payload, why in (
        ("node1", name, str(high + 1).encode(), f"{low}..{high}"),
        ("node1", name, str(low - 1).encode(), f"{low}..{high}"),
        ("node1", name, b"ten", "whole number"),
        ("node1", name, b"2.5", "whole number"),
        ("node1", "sf", b"9", "cannot be set over the air"),
        ("gateway", name, b"30", "not a node name"),
        ("node256", name, b"30", "not a node name"),
    ):
        with pytest.raises(DownlinkError, match=why):
            parse(node, setting, payload)


def test_a_setting_reaches_node2_until_the_node_confirms_it(
    broker: Mosquitto, gateway: Gateway, start_bridge, tmp_path: Path
) -> None:
    bridge = start_bridge("--no-influx", "--ha-discovery")
    bridge.wait_log("open at")
    bridge.wait_log("MQTT connected")

    def sent() -> list[tuple[int, int, int | None]]:
        gateway.pump()
        return list(gateway.downlinks)

    def until(payload: str, check: Callable[[], bool], what: str) -> None:
        for _ in range(5):  # again if unseen: the bridge may not have subscribed yet
            publish.single(TOPIC, payload, hostname="127.0.0.1", port=broker.port)
            try:
                wait_for(check, 2, what)
                return
            except AssertionError:
                continue
        raise AssertionError(f"never saw {what}")

    errors = Observer(broker.port, TOPIC + "/error")
    until("abc", lambda: errors.payloads(TOPIC + "/error"), "a refusal")
    assert b"whole number" in errors.payloads(TOPIC + "/error")[0]
    errors.close()
    until("45", lambda: (1, 1, 45) in sent(), "the setting on the serial line")
    assert set(sent()) == {(1, 1, 45)}  # the invalid one was not sent
    before = sent().count((1, 1, 45))

    # Kept across a restart (node2 holds requests in RAM only): sent again on start.
    assert bridge.terminate() == 0
    bridge = start_bridge("--no-influx", "--ha-discovery")
    wait_for(lambda: sent().count((1, 1, 45)) == before + 1, 20, "the pending setting again")

    # node1 applies it and reports it in a STATS frame: confirmed, published, forgotten.
    gateway.send_frame(encode_stats(1, 1, {"interval_s": 45}, full_counter=True))
    gateway.wait_acked()
    bridge.wait_log("node1 confirmed interval_s = 45")
    kept = wait_for(
        lambda: (r := retained(broker.port, "#", settle=0.3)).get("iiot/node1/interval_s") and r,
        10,
        "the confirmed value, retained",
    )
    assert kept["iiot/node1/interval_s"] == b"45"
    number = json.loads(kept["homeassistant/number/iiot_node1_interval_s_set/config"])
    assert problems("number", number) == []
    assert number["command_topic"] == TOPIC and number["state_topic"] == "iiot/node1/interval_s"
    assert (number["min"], number["max"]) == limits("interval_s")
    sensor = json.loads(kept["homeassistant/sensor/iiot_node1_interval_s/config"])
    assert problems("sensor", sensor) == []

    # A confirmed setting is not sent again after a restart; a withdrawal is a host line.
    assert bridge.terminate() == 0
    bridge = start_bridge("--no-influx")
    bridge.wait_log("open at")

    until("", lambda: (1, 1, None) in sent(), "the withdrawal")
    assert sent().count((1, 1, 45)) == before + 1
