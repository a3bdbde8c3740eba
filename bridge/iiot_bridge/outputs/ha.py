"""Home Assistant MQTT discovery: a device per node, a sensor per metric.

Config topics are ``<ha_prefix>/sensor/<prefix>_<node>_<metric>/config`` (retained). Each
sensor is available only while both the bridge and its node are online.
"""

from __future__ import annotations

import json
from typing import Any

from iiot_codec.metrics import BY_NAME, DECIMALS

# metric -> (device_class, Home Assistant unit, diagnostic?)
_HA: dict[str, tuple[str | None, str | None, bool]] = {
    "temperature": ("temperature", "°C", False),
    "humidity": ("humidity", "%", False),
    "pressure": ("atmospheric_pressure", "hPa", False),
    "gas_resistance": (None, "Ω", False),
    "voltage": ("voltage", "V", True),
    "packets_received": (None, None, True),
    "crc_errors": (None, None, True),
    "duplicates": (None, None, True),
    "auth_failures": (None, None, True),
    "queue_drops": (None, None, True),
    "uptime": ("duration", "s", True),
    "rssi": ("signal_strength", "dBm", True),
    "snr": (None, "dB", True),
}


def unique_id(prefix: str, node: str, metric: str) -> str:
    return f"{prefix.replace('/', '_')}_{node}_{metric}"


def config_topic(ha_prefix: str, prefix: str, node: str, metric: str) -> str:
    return f"{ha_prefix}/sensor/{unique_id(prefix, node, metric)}/config"


def config_payload(prefix: str, node: str, metric: str) -> bytes:
    """The retained discovery config of one sensor, as JSON bytes."""
    device_class, unit, diagnostic = _HA.get(metric, (None, None, False))
    payload: dict[str, Any] = {
        "name": metric.replace("_", " ").capitalize(),
        "unique_id": unique_id(prefix, node, metric),
        "object_id": f"{node}_{metric}",
        "state_topic": f"{prefix}/{node}/{metric}",
        "state_class": "measurement",
        "availability": [
            {"topic": f"{prefix}/bridge/status"},
            {"topic": f"{prefix}/{node}/status"},
        ],
        "availability_mode": "all",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [f"{prefix.replace('/', '_')}_{node}"],
            "name": f"LoRa {node}",
            "model": "NUCLEO-F446RE LoRa telemetry node",
            "manufacturer": "iiot-lora-telemetry",
        },
        "origin": {"name": "iiot-bridge"},
    }
    if device_class:
        payload["device_class"] = device_class
    if unit:
        payload["unit_of_measurement"] = unit
    if diagnostic:
        payload["entity_category"] = "diagnostic"
    row = BY_NAME.get(metric)
    if row is not None:
        payload["suggested_display_precision"] = row[DECIMALS]
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
