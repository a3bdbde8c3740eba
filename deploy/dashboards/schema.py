"""The InfluxDB data the bridge writes: the one contract dashboards and alert rules may query.

Kept as plain data (no imports from the bridge) so the dashboard tests and, later, the bridge's
own tests can both check themselves against the same table.
"""

from __future__ import annotations

from typing import TypedDict

BUCKET = "telemetry"
# Every point carries exactly one field.
FIELD = "value"
# Columns Flux adds to every table; queries may name them without the bridge writing them.
FLUX_COLUMNS = frozenset({"_time", "_value", "_field", "_measurement", "_start", "_stop"})


class Measurement(TypedDict):
    tags: frozenset[str]
    unit: str


_READING_TAGS = frozenset({"node", "unit"})


def _reading(unit: str) -> Measurement:
    return {"tags": _READING_TAGS, "unit": unit}


# measurement name -> the tag keys its points carry and the value of its `unit` tag.
MEASUREMENTS: dict[str, Measurement] = {
    # Sensor readings, tagged with the node that took them.
    "temperature": _reading("celsius"),
    "humidity": _reading("percent"),
    "pressure": _reading("hPa"),
    "gas_resistance": _reading("ohms"),
    "voltage": _reading("volt"),
    # Gateway counters, reported by node2 as cumulative counts since its boot.
    "packets_received": _reading("count"),
    "crc_errors": _reading("count"),
    "duplicates": _reading("count"),
    "auth_failures": _reading("count"),
    "queue_drops": _reading("count"),
    "uptime": _reading("seconds"),
    # Link quality of each frame heard over the air, tagged with the source node.
    "rssi": _reading("dBm"),
    "snr": _reading("dB"),
    # The bridge's own outbox depth per sink (node=bridge).
    "bridge_backlog": {"tags": frozenset({"node", "unit", "sink"}), "unit": "count"},
}

# Tags whose values are a closed set (`node` is open: node1, node2, ..., bridge).
TAG_VALUES: dict[str, frozenset[str]] = {
    "sink": frozenset({"mqtt", "influx"}),
    "unit": frozenset(m["unit"] for m in MEASUREMENTS.values()),
}

# The node tag of the bridge's self-metrics: not a sensor node, so dashboards leave it out.
BRIDGE_NODE = "bridge"

ALL_TAGS: frozenset[str] = frozenset().union(*(m["tags"] for m in MEASUREMENTS.values()))
