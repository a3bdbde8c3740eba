"""The one metric type that flows from the processors through the outbox to the outputs."""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

BACKLOG = "bridge_backlog"
GATEWAY_FRAMES = "bridge_gateway_frames"  # [gateways] frames heard per gateway (a counter)
GATEWAY_DUPLICATES = "bridge_gateway_duplicates"  # its copies another gateway stored
BRIDGE_NODE = "bridge"


class Kind(IntEnum):
    """What a row is. Stored in the outbox (never renumber); each sink declares the kinds it
    accepts, so a sink added later still sees every row already waiting in the outbox."""

    READING = 0  # a node's measurement or counter: the newest is kept (MQTT: retained)
    LINK = 1  # link quality of one reception (rssi, snr): a stream, not a state
    SELF = 2  # the bridge's own measurements (its backlog per sink)


ALL_KINDS = frozenset(Kind)
# The same as plain ints, for rows made per reading: sqlite3 binds an exact int at once but
# takes a slow adapter lookup (an exception raised and cleared) for an int subclass.
READING, LINK, SELF = (int(k) for k in Kind)


class Reading(NamedTuple):
    """One value of one metric of one node at one instant (ns since the epoch).

    A NamedTuple rather than a frozen dataclass: seven are made per frame, and a tuple is
    built several times faster (the bridge's throughput is bound by one core's Python)."""

    node: str
    metric: str
    value: float
    ts_ns: int
    kind: int = READING
    # Kind SELF only: the value of the metric's extra tag (catalog.SELF_METRICS): which
    # sink's backlog, which gateway's frames.
    sink: str | None = None


def node_name(src: int) -> str:
    """Contract: node names are ``node<N>`` from the frame's source id."""
    return f"node{src}"
