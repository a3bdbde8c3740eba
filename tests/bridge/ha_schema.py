"""Home Assistant's rules for an MQTT discovery payload of a sensor or a number, written
from its documentation (the MQTT integration's "MQTT Sensor" and "MQTT Number" pages and
the sensor/number device-class tables of the developer docs), to check what the bridge
publishes against Home Assistant's schema rather than against our own expectations.

``problems(component, payload)`` lists every rule the payload breaks (empty: accepted).
"""

from __future__ import annotations

import re
from typing import Any

# Keys the MQTT sensor platform documents (single-component discovery, full names).
SENSOR_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "default_entity_id", "device", "device_class", "enabled_by_default", "encoding",
    "entity_category", "entity_picture", "expire_after", "force_update", "icon",
    "json_attributes_template", "json_attributes_topic", "last_reset_value_template", "name",
    "object_id", "options", "origin", "payload_available", "payload_not_available",
    "platform", "qos", "state_class", "state_topic", "suggested_display_precision",
    "unique_id", "unit_of_measurement", "value_template",
}  # fmt: skip
NUMBER_KEYS = {
    "availability", "availability_mode", "availability_template", "availability_topic",
    "command_template", "command_topic", "default_entity_id", "device", "device_class",
    "enabled_by_default", "encoding", "entity_category", "entity_picture", "icon",
    "json_attributes_template", "json_attributes_topic", "max", "min", "mode", "name",
    "object_id", "optimistic", "origin", "payload_available", "payload_not_available",
    "payload_reset", "platform", "qos", "retain", "state_class", "state_topic", "step",
    "unique_id", "unit_of_measurement", "value_template",
}  # fmt: skip
REQUIRED = {"sensor": {"state_topic"}, "number": {"command_topic"}}
DEVICE_KEYS = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
    "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
AVAILABILITY_KEYS = {"topic", "payload_available", "payload_not_available", "value_template"}
AVAILABILITY_MODES = {"all", "any", "latest"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
# A sensor may be "diagnostic" only; "config" is for entities that change the device.
ENTITY_CATEGORIES = {"sensor": {"diagnostic"}, "number": {"config", "diagnostic"}}

PRESSURE = {"Pa", "hPa", "kPa", "bar", "cbar", "mbar", "mmHg", "inHg", "inH₂O", "psi"}
INFORMATION = {
    "bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB",
    "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB",
}  # fmt: skip
# Numeric sensor device classes with the units Home Assistant allows for each (None: no
# unit) and the state classes it allows. Only classes with a fixed unit set are listed with
# one; a class missing here is unknown to Home Assistant.
DEVICE_CLASSES: dict[str, tuple[set[str | None] | None, set[str]]] = {
    "apparent_power": ({"mVA", "VA", "kVA"}, {"measurement"}),
    "aqi": ({None}, {"measurement"}),
    "atmospheric_pressure": (PRESSURE, {"measurement"}),
    "battery": ({"%"}, {"measurement"}),
    "carbon_dioxide": ({"ppm"}, {"measurement"}),
    "carbon_monoxide": ({"ppm"}, {"measurement"}),
    "current": ({"A", "mA"}, {"measurement"}),
    "data_rate": (None, {"measurement"}),
    "data_size": (INFORMATION, STATE_CLASSES - {"measurement_angle"}),
    "distance": (None, STATE_CLASSES - {"measurement_angle"}),
    "duration": ({"d", "h", "min", "s", "ms"}, STATE_CLASSES - {"measurement_angle"}),
    "energy": (None, {"total", "total_increasing"}),
    "frequency": ({"Hz", "kHz", "MHz", "GHz"}, {"measurement"}),
    "humidity": ({"%"}, {"measurement"}),
    "illuminance": ({"lx"}, {"measurement"}),
    "moisture": ({"%"}, {"measurement"}),
    "power": ({"mW", "W", "kW", "MW", "GW", "TW"}, {"measurement"}),
    "power_factor": ({"%", None}, {"measurement"}),
    "pressure": (PRESSURE, {"measurement"}),
    "signal_strength": ({"dB", "dBm"}, {"measurement"}),
    "sound_pressure": ({"dB", "dBA"}, {"measurement"}),
    "temperature": ({"°C", "°F", "K"}, {"measurement"}),
    "voltage": ({"µV", "mV", "V", "kV", "MV"}, {"measurement"}),
    "weight": (None, STATE_CLASSES - {"measurement_angle"}),
}
# A number has the sensor's numeric device classes (the documentation lists them for both).
NUMBER_DEVICE_CLASSES = set(DEVICE_CLASSES)
SLUG = re.compile(r"^[a-z0-9_]+$")  # an entity id's object part


def _availability(payload: dict[str, Any]) -> list[str]:
    found = []
    entries = payload.get("availability", [])
    if not isinstance(entries, list) or not entries:
        found.append("availability must be a non-empty list")
        return found
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("topic"), str):
            found.append(f"availability entry {entry!r} needs a topic")
        elif set(entry) - AVAILABILITY_KEYS:
            found.append(f"availability entry has unknown keys {set(entry) - AVAILABILITY_KEYS}")
    mode = payload.get("availability_mode", "latest")
    if mode not in AVAILABILITY_MODES:
        found.append(f"availability_mode {mode!r} is not one of {sorted(AVAILABILITY_MODES)}")
    return found


def _device(payload: dict[str, Any]) -> list[str]:
    device = payload.get("device")
    if device is None:
        return []
    found = []
    if not isinstance(device, dict):
        return ["device must be a mapping"]
    if set(device) - DEVICE_KEYS:
        found.append(f"device has unknown keys {sorted(set(device) - DEVICE_KEYS)}")
    if not device.get("identifiers") and not device.get("connections"):
        found.append("device needs identifiers or connections")
    if "unique_id" not in payload:
        found.append("a device needs the entity's unique_id")
    return found


def problems(component: str, payload: dict[str, Any]) -> list[str]:
    """Every rule of Home Assistant's MQTT ``component`` schema that ``payload`` breaks."""
    if component not in REQUIRED:
        return [f"{component!r} is not a platform this checker knows"]
    allowed = SENSOR_KEYS if component == "sensor" else NUMBER_KEYS
    found = [f"unknown key {k!r}" for k in sorted(set(payload) - allowed)]
    found += [f"missing required key {k!r}" for k in sorted(REQUIRED[component] - set(payload))]
    if "object_id" in payload:
        found.append("object_id is deprecated since 2025.10: use default_entity_id")
    entity_id = payload.get("default_entity_id")
    if entity_id is not None:
        domain, _, slug = str(entity_id).partition(".")
        if domain != component or not SLUG.match(slug):
            found.append(f"default_entity_id {entity_id!r} is not {component}.<lowercase_id>")
    for key in ("name", "state_topic", "command_topic", "unique_id", "unit_of_measurement"):
        if key in payload and not isinstance(payload[key], str):
            found.append(f"{key} must be a string")
    found += _availability(payload) if "availability" in payload else []
    found += _device(payload)
    origin = payload.get("origin")
    if origin is not None and (not isinstance(origin, dict) or "name" not in origin):
        found.append("origin needs a name")
    elif origin is not None and set(origin) - ORIGIN_KEYS:
        found.append(f"origin has unknown keys {sorted(set(origin) - ORIGIN_KEYS)}")
    category = payload.get("entity_category")
    if category is not None and category not in ENTITY_CATEGORIES[component]:
        found.append(f"entity_category {category!r} is not allowed for a {component}")
    precision = payload.get("suggested_display_precision")
    if precision is not None and (not isinstance(precision, int) or precision < 0):
        found.append("suggested_display_precision must be a non-negative integer")
    unit = payload.get("unit_of_measurement")
    state_class = payload.get("state_class")
    if state_class is not None and state_class not in STATE_CLASSES:
        found.append(f"state_class {state_class!r} is not one of {sorted(STATE_CLASSES)}")
    device_class = payload.get("device_class")
    if device_class is not None:
        known = DEVICE_CLASSES if component == "sensor" else NUMBER_DEVICE_CLASSES
        if device_class not in known:
            found.append(f"device_class {device_class!r} is not a {component} device class")
        else:
            units, classes = DEVICE_CLASSES[device_class]
            if units is not None and unit not in units:
                found.append(
                    f"unit {unit!r} is not allowed for device_class {device_class!r} "
                    f"(allowed: {sorted(u or '(none)' for u in units)})"
                )
            if component == "sensor" and state_class is not None and state_class not in classes:
                found.append(f"state_class {state_class!r} not allowed for {device_class!r}")
    if component == "number":
        for key in ("min", "max", "step"):
            if key in payload and not isinstance(payload[key], (int, float)):
                found.append(f"{key} must be a number")
        if payload.get("mode", "auto") not in ("auto", "box", "slider"):
            found.append(f"mode {payload['mode']!r} is not auto, box or slider")
    return found
