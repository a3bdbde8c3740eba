"""Home Assistant discovery payloads against Home Assistant's own MQTT schema (ha_schema),
for every metric the bridge knows; and the checker itself refusing what HA refuses."""

from __future__ import annotations

import json

import pytest
from ha_schema import problems

from iiot_bridge import catalog
from iiot_bridge.outputs import ha


@pytest.mark.parametrize("metric", [m.name for m in catalog.METRICS])
def test_every_metric_has_a_valid_discovery_payload(metric: str) -> None:
    payload = json.loads(ha.config_payload("iiot", "node1", metric))
    assert problems("sensor", payload) == []
    assert payload["default_entity_id"] == f"sensor.iiot_node1_{metric}"
    assert payload["name"] == catalog.info(metric).display


def test_names_units_and_device_classes_read_as_a_person_expects() -> None:
    def payload(metric: str) -> dict[str, object]:
        return json.loads(ha.config_payload("site/a", "node2", metric))

    assert payload("rssi")["name"] == "RSSI" and payload("snr")["name"] == "SNR"
    assert payload("crc_errors")["name"] == "CRC errors"
    assert payload("gas_resistance")["name"] == "Gas resistance"
    assert payload("rssi")["device_class"] == "signal_strength"
    assert "device_class" not in payload("snr")  # a ratio: Home Assistant has no class for it
    assert payload("snr")["unit_of_measurement"] == "dB"
    assert payload("temperature")["unit_of_measurement"] == "°C"
    assert payload("pressure")["device_class"] == "atmospheric_pressure"
    assert payload("free_heap")["unit_of_measurement"] == "B"
    assert "entity_category" not in payload("temperature")
    assert payload("queue_depth")["entity_category"] == "diagnostic"
    # A "/" in the topic prefix cannot go into an id.
    assert payload("rssi")["unique_id"] == "site_a_node2_rssi"
    # A metric a newer node sends that this bridge's table does not know yet.
    assert problems("sensor", payload("future_metric")) == []


GOOD = json.loads(ha.config_payload("iiot", "node1", "temperature"))


@pytest.mark.parametrize(
    ("component", "change", "complaint"),
    [
        ("sensor", {"object_id": "node1_temperature"}, "object_id is deprecated"),
        ("sensor", {"unit_of_measurement": "C"}, "not allowed for device_class"),
        ("sensor", {"device_class": "snr"}, "not a sensor device class"),
        ("sensor", {"entity_category": "config"}, "not allowed for a sensor"),
        ("sensor", {"default_entity_id": "node1_temperature"}, "is not sensor.<lowercase_id>"),
        ("sensor", {"state_class": "total"}, "not allowed for 'temperature'"),
        ("sensor", {"colour": "red"}, "unknown key 'colour'"),
        ("sensor", {"device": {"name": "x"}}, "identifiers or connections"),
        ("sensor", {"availability": [{"payload_available": "on"}]}, "needs a topic"),
        ("sensor", {"suggested_display_precision": -1}, "non-negative"),
        ("number", {}, "missing required key 'command_topic'"),
        ("number", {"command_topic": "t", "mode": "dial"}, "mode 'dial'"),
    ],
)
def test_the_checker_refuses_what_home_assistant_refuses(
    component: str, change: dict[str, object], complaint: str
) -> None:
    payload = {**GOOD, **change}
    if component == "number":
        payload.pop("state_class", None)
    found = problems(component, payload)
    assert any(complaint in p for p in found), found


def test_a_setting_gets_a_valid_number_entity() -> None:
    number = json.loads(ha.number_payload("iiot", "node1", "interval_s"))
    assert problems("number", number) == []
    assert number["default_entity_id"] == "number.iiot_node1_interval_s_set"
    assert number["entity_category"] == "config" and number["unit_of_measurement"] == "s"
    assert ha.config_topics("homeassistant", "iiot", "node1", "interval_s") == [
        "homeassistant/sensor/iiot_node1_interval_s/config",
        "homeassistant/number/iiot_node1_interval_s_set/config",
    ]
