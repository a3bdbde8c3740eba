"""Settings sent down to the nodes (docs/protocol.md, section 3.6).

A request (``<prefix>/<node>/set/<setting>`` on MQTT, the value as a plain number; an empty
payload withdraws it) is checked against the boards' own table (``iiot_codec.settings``:
only the settings in DOWNLINK, whole numbers in the setting's range), kept in the outbox
until the node confirms it, and written to node2 as ``{"dl": node, "t": tag, "v": value}``
by the intake thread, the one that owns the serial port: at once, again every
``RESEND_S`` while it is pending (node2 keeps requests in RAM only) and whenever the port
was reopened. The node confirms by reporting the setting's metric with the requested
value (its STATS frames carry ``interval_s``); the bridge then forgets the request. The
confirmed value reaches MQTT and InfluxDB like any reading.

While a request waits for its confirmation, :class:`PendingTopics` (the MQTT sink's thread)
keeps it visible, retained, on ``<prefix>/<node>/set/<setting>/pending`` as
``{"value": 30, "since": "<when the bridge took it, UTC>"}``, and clears that topic (an empty
retained payload) once the node confirms or the request is withdrawn. A request the bridge
cannot keep is answered on ``.../error`` like an invalid one.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from iiot_codec import encode_downlink
from iiot_codec.settings import DOWNLINK, SETTINGS

from .model import Reading
from .outbox import Outbox, OutboxError

log = logging.getLogger("iiot_bridge.downlink")

RESEND_S = 60.0
TAGS: dict[str, int] = {name: tag for tag, name in DOWNLINK}
NAMES: dict[int, str] = {tag: name for tag, name in DOWNLINK}
_NODE = re.compile(r"^node(\d{1,3})$")
# Below a request's topic (<prefix>/<node>/set/<setting>): what the bridge says about it.
PENDING = "pending"
ERROR = "error"
FAILURES_KEPT = 100  # answers not yet published (the MQTT sink away) beyond this are dropped

# The MQTT sink's publish (topic, payload, retain).
Publish = Callable[[str, str, bool], None]


class DownlinkError(ValueError):
    """A request the node would refuse; the message says why."""


@dataclass(frozen=True)
class Request:
    node: int
    tag: int
    value: int | None  # None: withdraw

    @property
    def setting(self) -> str:
        return NAMES[self.tag]


@dataclass(frozen=True)
class Pending:
    """A request kept until the node confirms it."""

    value: int
    since_ns: int  # when the bridge took it (wall clock, ns); 0 when not known

    def payload(self) -> str:
        doc: dict[str, object] = {"value": self.value}
        if self.since_ns:
            when = datetime.fromtimestamp(self.since_ns / 1e9, UTC)
            doc["since"] = when.isoformat(timespec="seconds").replace("+00:00", "Z")
        return json.dumps(doc)


def parse_pending(payload: bytes) -> tuple[int, float | None] | None:
    """A ``.../pending`` payload as (value, since as a Unix time or None); None when empty
    (nothing pending). ValueError when it is not one the bridge writes."""
    if not payload.strip():
        return None
    try:
        doc = json.loads(payload)
        value = doc["value"]
        since = doc.get("since")
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(value)
        when = None if since is None else datetime.fromisoformat(since).timestamp()
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise ValueError(f"not a pending request: {payload[:40]!r}") from err
    return value, when


def set_topic(prefix: str, node: str, setting: str) -> str:
    """Where requests for a node's setting are taken (the Home Assistant command topic)."""
    return f"{prefix}/{node}/set/{setting}"


def limits(setting: str) -> tuple[int, int]:
    """The range the node applies, from the boards' settings table."""
    for name, _default, _kind, low, high in SETTINGS:
        if name == setting:
            return int(low), int(high)
    raise KeyError(setting)


def parse(node: str, setting: str, payload: bytes) -> Request:
    """A request from MQTT's topic parts and payload; DownlinkError when invalid."""
    match = _NODE.match(node)
    if match is None or not 0 < int(match.group(1)) <= 255:
        raise DownlinkError(f"{node!r} is not a node name (node1 .. node255)")
    if setting not in TAGS:
        raise DownlinkError(f"{setting!r} cannot be set over the air (only {', '.join(TAGS)})")
    text = payload.decode("utf-8", "replace").strip()
    if not text:
        return Request(int(match.group(1)), TAGS[setting], None)
    try:
        value = int(text, 10)
    except ValueError:
        raise DownlinkError(f"{setting} must be a whole number, got {text!r}") from None
    low, high = limits(setting)
    if not low <= value <= high:
        raise DownlinkError(f"{setting} must be {low}..{high}, got {value}")
    return Request(int(match.group(1)), TAGS[setting], value)


class Downlink:
    """The pending requests. The intake thread stores, sends and confirms them; other
    threads hand requests in (:meth:`request`) and read what is pending (:meth:`changes`)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.pending: dict[tuple[int, int], Pending] = {
            key: Pending(value, since_ns) for key, (value, since_ns) in outbox.downlinks().items()
        }
        self.requests: list[Request] = []  # taken, not yet stored and sent
        self._lock = threading.Lock()
        self._next_resend = 0.0
        self._opens = -1
        self._version = 0  # grows with every change of ``pending`` or ``_failures``
        self._failures: deque[tuple[Request, str]] = deque(maxlen=FAILURES_KEPT)

    def request(self, req: Request) -> None:
        """Take a request (any thread); the intake thread stores and sends it."""
        with self._lock:
            self.requests.append(req)

    def changes(
        self, seen: int
    ) -> tuple[int, dict[tuple[int, int], Pending], list[tuple[Request, str]]] | None:
        """What is pending now and the requests that failed since, unless nothing changed
        since version ``seen`` (any thread)."""
        with self._lock:
            if seen == self._version:
                return None
            failures = list(self._failures)
            self._failures.clear()
            return self._version, dict(self.pending), failures

    def _set(self, key: tuple[int, int], pending: Pending | None) -> None:
        with self._lock:
            if pending is None:
                self.pending.pop(key, None)
            else:
                self.pending[key] = pending
            self._version += 1

    def due(self, now: float, opens: int) -> list[str]:
        """Host lines to write now (intake thread); ``opens`` counts the port's openings."""
        with self._lock:
            queue, self.requests = self.requests, []
        lines = []
        if self.pending and (now >= self._next_resend or opens != self._opens):
            self._next_resend = now + RESEND_S
            pending = sorted(self.pending.items())
            lines += [encode_downlink(n, t, p.value) for (n, t), p in pending]
        self._opens = opens
        for req in queue:
            key = (req.node, req.tag)
            kept = self.pending.get(key)
            since_ns = time.time_ns() if kept is None or kept.value != req.value else kept.since_ns
            try:
                self.outbox.set_downlink(req.node, req.tag, req.value, since_ns)
            except OutboxError as err:  # not kept: tell, and do not send what is not stored
                log.warning("cannot keep the request node%d %s: %s", req.node, req.setting, err)
                with self._lock:
                    self._failures.append((req, f"not kept, try again: {err}"))
                    self._version += 1
                continue
            if req.value is None:
                self._set(key, None)
                log.info("node%d: %s request withdrawn", req.node, req.setting)
            else:
                self._set(key, Pending(req.value, since_ns))
                log.info("node%d: sending %s = %d", req.node, req.setting, req.value)
            lines.append(encode_downlink(req.node, req.tag, req.value))
        return lines

    def confirm(self, readings: Sequence[Reading]) -> None:
        """Forget the requests the nodes' reports confirm (intake thread, after a commit)."""
        if not self.pending:
            return
        for r in readings:
            tag = TAGS.get(r.metric)
            if tag is None:
                continue
            match = _NODE.match(r.node)
            key = (int(match.group(1)), tag) if match else None
            pending = None if key is None else self.pending.get(key)
            if key is None or pending is None or pending.value != r.value:
                continue
            try:
                self.outbox.set_downlink(key[0], tag, None)
            except OutboxError as err:
                log.warning("cannot clear the confirmed %s of %s: %s", r.metric, r.node, err)
                continue
            self._set(key, None)
            log.info("%s confirmed %s = %d", r.node, r.metric, int(r.value))


class PendingTopics:
    """The pending requests, retained on ``<prefix>/<node>/set/<setting>/pending`` (the MQTT
    sink's thread, through its setting-requests hook).

    Every change is published on the sink's next round; a new session publishes them all.
    The sink also subscribes to these topics: a retained one the bridge no longer has
    pending (confirmed or withdrawn while it was not connected, or left by an earlier run)
    is cleared when the broker hands it over.
    """

    def __init__(self, prefix: str, downlink: Downlink) -> None:
        self.prefix = prefix
        self.downlink = downlink
        self.subscription = f"{prefix}/+/set/+/{PENDING}"
        self.published: dict[tuple[int, int], Pending] = {}
        self._seen = -1
        self._levels = prefix.count("/") + 5  # <prefix>/<node>/set/<setting>/pending

    def topic(self, key: tuple[int, int], what: str = PENDING) -> str:
        return f"{set_topic(self.prefix, f'node{key[0]}', NAMES[key[1]])}/{what}"

    def owns(self, topic: str) -> bool:
        parts = topic.split("/")
        return len(parts) == self._levels and parts[-1] == PENDING and parts[-3] == "set"

    def on_connect(self, publish: Publish) -> None:
        self.published = {}  # a new session: say everything again
        self._seen = -1
        self.on_tick(publish)

    def on_tick(self, publish: Publish) -> None:
        changed = self.downlink.changes(self._seen)
        if changed is None:
            return
        self._seen, pending, failures = changed
        for req, why in failures:
            publish(self.topic((req.node, req.tag), ERROR), why, False)
        for key in self.published.keys() - pending.keys():
            publish(self.topic(key), "", True)
        for key, now in pending.items():
            if self.published.get(key) != now:
                publish(self.topic(key), now.payload(), True)
        self.published = pending

    def on_message(self, publish: Publish, topic: str, payload: bytes) -> None:
        """A retained pending topic from the broker: cleared unless it is pending here."""
        parts = topic.split("/")
        match = _NODE.match(parts[-4])
        tag = TAGS.get(parts[-2])
        if payload and (
            match is None or tag is None or (int(match.group(1)), tag) not in self.published
        ):
            publish(topic, "", True)
