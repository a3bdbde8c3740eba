"""The one metric type that flows from the processors through the outbox to the outputs."""

from __future__ import annotations

from typing import NamedTuple

from iiot_codec.metrics import BY_NAME, UNIT

# Where a reading goes (bit set in Reading.route). Stored in the outbox, so never renumber.
TO_MQTT = 1
TO_INFLUX = 2
RETAIN = 4  # MQTT: publish retained (sensor values and counters; not rssi/snr)
ROUTE_READING = TO_MQTT | TO_INFLUX | RETAIN
ROUTE_LINK = TO_MQTT | TO_INFLUX
ROUTE_SELF = TO_INFLUX  # the bridge's own backlog measurement

BACKLOG = "bridge_backlog"
BRIDGE_NODE = "bridge"


class Reading(NamedTuple):
    """One value of one metric of one node at one instant (ns since the epoch).

    A NamedTuple rather than a frozen dataclass: seven are made per frame, and a tuple is
    built several times faster (the bridge's throughput is bound by one core's Python)."""

    node: str
    metric: str
    value: float
    ts_ns: int
    route: int = ROUTE_READING
    sink: str | None = None  # only for bridge_backlog: which sink's backlog


def unit_of(metric: str) -> str:
    """The `unit` tag of a metric (the codec's table; the bridge's backlog is a count)."""
    row = BY_NAME.get(metric)
    return row[UNIT] if row is not None else "count"


def node_name(src: int) -> str:
    """Contract: node names are ``node<N>`` from the frame's source id."""
    return f"node{src}"
