"""The InfluxDB data the bridge writes: the one contract dashboards and alert rules may query.

Derived from the bridge's host-side metric table (iiot_bridge.catalog, itself derived from
the codec's), so a metric added to the codec is a measurement here without an edit.
"""

from __future__ import annotations

from typing import TypedDict

from iiot_bridge import catalog
from iiot_bridge.model import BRIDGE_NODE as BRIDGE_NODE
from iiot_bridge.outputs import SINK_MODULES

BUCKET = "telemetry"
# Every point carries exactly one field.
FIELD = "value"
# Columns Flux adds to every table; queries may name them without the bridge writing them.
FLUX_COLUMNS = frozenset({"_time", "_value", "_field", "_measurement", "_start", "_stop"})


class Measurement(TypedDict):
    tags: frozenset[str]
    unit: str


_READING_TAGS = frozenset({"node", "unit"})

# measurement name -> the tag keys its points carry and the value of its `unit` tag:
# every metric of a node (readings, counters, link quality, tagged with the node), then the
# bridge's own measurements (node=bridge).
MEASUREMENTS: dict[str, Measurement] = {
    m.name: {"tags": _READING_TAGS, "unit": m.unit} for m in catalog.METRICS
} | {
    name: {"tags": _READING_TAGS | extra, "unit": unit}
    for name, (unit, extra) in catalog.SELF_METRICS.items()
}

# Tags whose values are a closed set (`node` is open: node1, node2, ..., bridge).
TAG_VALUES: dict[str, frozenset[str]] = {
    "sink": frozenset(SINK_MODULES),
    "unit": frozenset(m["unit"] for m in MEASUREMENTS.values()),
}

ALL_TAGS: frozenset[str] = frozenset().union(*(m["tags"] for m in MEASUREMENTS.values()))
