"""What the MQTT sink does besides publishing rows: node statuses, the bridge's counters,
the optional per-node state JSON, and taking setting requests for the nodes. Each is an
:class:`Extra`; Home Assistant discovery is one too (``ha.Discovery``). The sink calls them
from its own thread."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from ..downlink import Downlink, DownlinkError, PendingTopics, parse
from ..logs import RateLimited
from ..outbox import Row
from ..stats import Stats
from .base import NodeStatuses

log = logging.getLogger("iiot_bridge.mqtt")

STATUS_CHECK_S = 1.0  # node statuses are checked on new rows, or once a second
COUNTERS_INTERVAL_S = 5.0
# The bridge's own counters, published under <prefix>/bridge/<bridge id>/<name> for live
# views, and per gateway under .../gateway/<gateway>/<name> (issue 15).
PUBLISHED_COUNTERS = (
    "lines",
    "frames",
    "readings",
    "duplicates",
    "cross_duplicates",
    "malformed",
    "bad_crc",
    "mic_failures",
    "drops",
)


class Publish(Protocol):
    """The sink's publish: QoS 1 unless told otherwise."""

    def __call__(self, topic: str, payload: str | bytes, retain: bool, qos: int = 1) -> None: ...


class Extra:
    """Hooks with nothing to do by default."""

    subscriptions: tuple[str, ...] = ()

    def on_connect(self, publish: Publish) -> None:
        """A new session (after every reconnect)."""

    def on_rows(self, publish: Publish, rows: Sequence[Row]) -> None:
        """Rows the sink has just published."""

    def on_tick(self, publish: Publish, now: float, fresh: bool) -> None:
        """Called on every round of the sink; ``fresh`` when rows came in this round."""

    def on_message(self, publish: Publish, topic: str, payload: bytes) -> None:
        """A message on one of ``subscriptions``."""


class Statuses(Extra):
    """``<prefix>/<node>/status`` online/offline (retained), whenever it changes."""

    def __init__(self, prefix: str, availability: NodeStatuses) -> None:
        self.prefix = prefix
        self.availability = availability
        self.published: dict[str, str] = {}
        self.next_check = 0.0

    def on_connect(self, publish: Publish) -> None:
        self.published.clear()  # a new session says everything again
        self.next_check = 0.0

    def on_tick(self, publish: Publish, now: float, fresh: bool) -> None:
        # Statuses change when a node was heard (rows came) or as time passes (a node
        # missing its intervals): check on new rows, else once a second.
        if not fresh and now < self.next_check:
            return
        self.next_check = now + STATUS_CHECK_S
        for node, status in self.availability.statuses().items():
            if self.published.get(node) != status:
                publish(f"{self.prefix}/{node}/status", status, True)
                if node in self.published:
                    log.info("%s is %s", node, status)
                self.published[node] = status


class BridgeCounters(Extra):
    """``<prefix>/bridge/<bridge id>/<counter>`` every few seconds, for live views such as
    iiot-watch: QoS 0 and not retained, because a stale counter is worse than none and these
    must not take room in the sink's window. Per gateway (several ports, or shared claims):
    ``.../gateway/<gateway>/frames`` and ``.../duplicates``."""

    def __init__(self, prefix: str, stats: Stats, bridge_id: str = "bridge") -> None:
        self.prefix = prefix
        self.base = f"{prefix}/bridge/{bridge_id}"
        self.stats = stats
        self.next_at = 0.0

    def on_tick(self, publish: Publish, now: float, fresh: bool) -> None:
        if now < self.next_at:
            return
        self.next_at = now + COUNTERS_INTERVAL_S
        stats = self.stats
        values = {name: getattr(stats, name) for name in PUBLISHED_COUNTERS}
        for sink_name, sink in list(stats.sinks.items()):
            values[f"backlog_{sink_name}"] = sink.queued
            values[f"delivered_{sink_name}"] = sink.delivered
        for label, gw in list(stats.gateways.items()):
            values[f"gateway/{label}/frames"] = gw.frames
            values[f"gateway/{label}/duplicates"] = gw.duplicates
        if stats.gateways:
            values["pending_frames"] = stats.pending_frames
        for name, value in values.items():
            publish(f"{self.base}/{name}", str(value), False, 0)


class NodeState(Extra):
    """``<prefix>/<node>/state``: every metric's latest value and the time, one JSON."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.values: dict[str, dict[str, Any]] = {}

    def on_rows(self, publish: Publish, rows: Sequence[Row]) -> None:
        touched: set[str] = set()
        for row in rows:
            state = self.values.setdefault(row.node, {"values": {}, "ts": 0})
            state["values"][row.metric] = row.value
            state["ts"] = max(state["ts"], row.ts_ns)
            touched.add(row.node)
        for node in touched:
            state = self.values[node]
            doc = dict(state["values"])
            when = datetime.fromtimestamp(state["ts"] / 1e9, UTC)
            doc["time"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            publish(f"{self.prefix}/{node}/state", json.dumps(doc, sort_keys=True), True)


class SettingRequests(Extra):
    """``<prefix>/<node>/set/<setting>``: a setting for a node (downlink.py); the payload is
    the value, an empty one withdraws the request. An invalid request is logged, answered
    on ``<prefix>/<node>/set/<setting>/error`` (not retained) and otherwise ignored. Pending
    requests are published retained on ``<prefix>/<node>/set/<setting>/pending``
    (``downlink.PendingTopics``: it cannot be an Extra itself, that import would be circular)."""

    def __init__(self, prefix: str, downlink: Downlink) -> None:
        self.prefix = prefix
        self.downlink = downlink
        self.pending = PendingTopics(prefix, downlink)
        self.subscriptions = (f"{prefix}/+/set/+", self.pending.subscription)
        self.noisy = RateLimited(log, 10.0)

    def on_connect(self, publish: Publish) -> None:
        self.pending.on_connect(publish)

    def on_tick(self, publish: Publish, now: float, fresh: bool) -> None:
        self.pending.on_tick(publish)

    def on_message(self, publish: Publish, topic: str, payload: bytes) -> None:
        if self.pending.owns(topic):
            self.pending.on_message(publish, topic, payload)
            return
        node, _, setting = topic[len(self.prefix) + 1 :].split("/")[:3]
        try:
            request = parse(node, setting, payload)
        except DownlinkError as err:
            self.noisy.warning("setting", "ignoring the request on %s: %s", topic, err)
            publish(f"{topic}/error", str(err), False)
            return
        self.downlink.request(request)
