"""MQTT sink (paho-mqtt 2.x): one topic per metric, QoS 1, delivered on PUBACK.

Each connection is a fresh paho client, driven by this sink's own thread (paho's manual
loop: ``select`` on the broker socket and the wake pipe, then ``loop_read``/``loop_write``)
rather than paho's network thread: one thread and no lock ping-pong is five times faster.
The sink publishes rows after its cursor without waiting per message (up to ``WINDOW`` in
flight), and moves the cursor past a row only when it and every row before it were
acknowledged. When the connection drops, whatever was not
acknowledged is published again, in outbox order, on the next connection: nothing relies on
paho's in-memory queue, which dies with the process, and the retained topics end with the
newest value. MQTT delivery is therefore at-least-once: a subscriber may see a value twice
after a reconnect or a crash.

Availability: ``<prefix>/bridge/status`` online/offline (retained; "offline" is also the
last will) and ``<prefix>/<node>/status`` from :class:`Availability`. Optional
``<prefix>/<node>/state`` JSON and Home Assistant discovery.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from iiot_codec import CodecError, format_value

from ..model import RETAIN, TO_MQTT
from ..outbox import Outbox, Row
from ..stats import Stats
from . import ha
from .backoff import Backoff
from .wake import Wake

log = logging.getLogger("iiot_bridge.mqtt")

NAME = "mqtt"
WINDOW = 2000  # readings in flight (published, PUBACK pending) at most
FETCH = 500
CONNECT_TIMEOUT_S = 10.0
SHUTDOWN_FLUSH_S = 5.0
STATUS_CHECK_S = 1.0  # node status re-check when nothing wakes the sink
CURSOR_SAVE_S = 1.0  # how often the delivered cursor is written to the outbox
# The bridge's own counters, published under <prefix>/bridge/<name> for live views.
COUNTERS_INTERVAL_S = 5.0
PUBLISHED_COUNTERS = (
    "lines",
    "frames",
    "readings",
    "duplicates",
    "malformed",
    "bad_crc",
    "mic_failures",
    "drops",
)


@dataclass(frozen=True)
class MqttConfig:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str = ""
    keepalive: int = 30
    prefix: str = "iiot"
    state_topic: bool = False
    ha_discovery: bool = False
    ha_prefix: str = "homeassistant"
    retry_max_s: float = 60.0

    def __repr__(self) -> str:  # the password must never reach a log
        return f"MqttConfig({self.host}:{self.port} tls={self.tls} user={self.username})"


def new_client(cfg: MqttConfig, suffix: str = "") -> mqtt.Client:
    """A configured (not yet connected) paho client with the bridge's last will."""
    client_id = cfg.client_id or f"iiot-bridge-{socket.gethostname()}"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id + suffix,
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    if cfg.username:
        client.username_pw_set(cfg.username, cfg.password)
    if cfg.tls:
        client.tls_set(
            ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
            certfile=str(cfg.cert_file) if cfg.cert_file else None,
            keyfile=str(cfg.key_file) if cfg.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    client.will_set(f"{cfg.prefix}/bridge/status", "offline", qos=1, retain=True)
    # 0 = no paho limit: the sink bounds what is in flight itself (WINDOW); with a limit, paho
    # rescans every in-flight message on each PUBACK, quadratic in the window.
    client.max_inflight_messages_set(0)
    client.reconnect_delay_set(1, 2)
    return client


def _socket_write_wanted(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Nothing to do: ``_io`` asks ``want_write()`` on every round."""


class _Entry:
    """A row in publish order; ``done`` once its PUBACK came (at once for rows that are not
    for MQTT). ``reading`` tells whether it counts as a delivered reading."""

    __slots__ = ("id", "done", "reading")

    def __init__(self, row_id: int, done: bool) -> None:
        self.id = row_id
        self.done = done
        self.reading = not done


class NodeStatuses(Protocol):
    """Where the sink learns each node's status (online/offline) to publish."""

    def statuses(self) -> dict[str, str]: ...


class ConnectionLost(Exception):
    """The broker connection ended; the session is over."""


class MqttSink(threading.Thread):
    def __init__(
        self,
        cfg: MqttConfig,
        outbox: Outbox,
        stats: Stats,
        availability: NodeStatuses,
        wake: Wake,
        stop: threading.Event,
    ) -> None:
        super().__init__(name="mqtt-sink", daemon=True)
        self.cfg = cfg
        self.outbox = outbox
        self.stats = stats.sink(NAME)
        self._bridge_stats = stats
        self.availability = availability
        self.wake = wake
        self.stop = stop
        self.backoff = Backoff(1.0, cfg.retry_max_s)
        self._state = ""
        # Published rows in outbox order, PUBACK pending or not yet passed by the cursor.
        self._order: deque[_Entry] = deque()
        # Published rows by MQTT message id, until their PUBACK marks them done. Marking
        # from paho's on_publish is cheaper than asking every entry is_published().
        self._inflight: dict[int, _Entry] = {}
        self._connack_rc: Any = None
        self._lost = False
        self._ha_online = False
        self._newest_ts: dict[tuple[str, str], int] = {}
        self._topics: dict[tuple[str, str], str] = {}
        self._state_values: dict[str, dict[str, Any]] = {}

    # -- paho callbacks (called from _io, in this thread) -----------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self._connack_rc = rc

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self._lost = True

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any
    ) -> None:
        entry = self._inflight.pop(mid, None)  # None: a status or counter message
        if entry is not None:
            entry.done = True

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == f"{self.cfg.ha_prefix}/status" and msg.payload.strip() == b"online":
            self._ha_online = True

    # -- network I/O -----------------------------------------------------------------------

    def _io(self, client: mqtt.Client, timeout: float) -> bool:
        """One round of network work, waiting up to ``timeout`` s for the broker or a wake.
        Returns whether the wake pipe is readable (the intake committed something)."""
        sock = client.socket()
        if sock is None or self._lost:
            raise ConnectionLost
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():  # TLS: decrypted bytes already buffered
            timeout = 0.0
        wlist = [sock] if client.want_write() else []
        try:
            readable, writable, _ = select.select([sock, self.wake], wlist, [], timeout)
        except (OSError, ValueError) as err:  # the socket was closed under us
            raise ConnectionLost from err
        if sock in readable or (pending is not None and pending()):
            client.loop_read()
        if client.want_write():
            client.loop_write()
        client.loop_misc()
        if self._lost or client.socket() is None:
            raise ConnectionLost
        return self.wake in readable

    # -- connection loop ---------------------------------------------------------------------

    def _announce(self, state: str, level: int, msg: str, *args: object) -> None:
        if state != self._state:
            self._state = state
            log.log(level, msg, *args)

    def run(self) -> None:
        try:
            self.outbox.bookkeeping()
            while not self.stop.is_set():
                client = self._connect()
                if client is None:
                    self.stop.wait(self.backoff.next())
                    continue
                try:
                    self._session(client)
                except ConnectionLost:
                    pass
                finally:
                    self.stats.connected = False
                    with contextlib.suppress(Exception):  # already gone
                        client.disconnect()
                if not self.stop.is_set():
                    self._announce("lost", logging.WARNING, "MQTT connection lost; reconnecting")
                    self.stop.wait(self.backoff.next())
        except Exception:
            log.exception("MQTT sink stopped by an unexpected error")
            raise
        finally:
            self.outbox.close()

    def _connect(self) -> mqtt.Client | None:
        cfg = self.cfg
        client = new_client(cfg)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        # paho's hook for an external event loop: with it set, publish() only queues and this
        # sink's select/loop_write sends the queue, a frame's messages back to back, instead
        # of a send per publish. The broker then answers with PUBACKs that arrive together,
        # so one wake-up reads them all (less CPU per frame, see docs/performance.md).
        client.on_socket_register_write = _socket_write_wanted
        self._connack_rc = None
        self._lost = False
        try:
            client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive)
            deadline = time.monotonic() + CONNECT_TIMEOUT_S
            while self._connack_rc is None and time.monotonic() < deadline:
                if self.stop.is_set():
                    raise ConnectionLost
                self._io(client, 0.1)
        except (OSError, ssl.SSLError, ValueError) as err:
            self.stats.last_error = str(err)
            self._announce(
                "down",
                logging.WARNING,
                "MQTT broker %s:%d unreachable (%s); retrying",
                cfg.host,
                cfg.port,
                err,
            )
            return None
        except ConnectionLost:
            pass
        rc = self._connack_rc
        if rc is None or rc.is_failure:
            with contextlib.suppress(Exception):
                client.disconnect()
            why = f"refused: {rc}" if rc is not None else "no answer to CONNECT"
            if rc is not None and rc.value in (4, 5, 134, 135):
                why += " (check the user name in --mqtt-url and the MQTT password)"
            self.stats.last_error = why
            self._announce(
                f"refused{rc}", logging.ERROR, "MQTT broker %s:%d %s", cfg.host, cfg.port, why
            )
            return None
        return client

    def _pub(self, client: mqtt.Client, topic: str, payload: bytes | str, retain: bool) -> None:
        client.publish(topic, payload, qos=1, retain=retain)

    def _session(self, client: mqtt.Client) -> None:
        cfg = self.cfg
        self.backoff.reset()
        self.stats.connected = True
        self.stats.last_error = ""
        self._announce("up", logging.INFO, "MQTT connected to %s:%d", cfg.host, cfg.port)
        self._order.clear()
        self._inflight.clear()
        self._pub(client, f"{cfg.prefix}/bridge/status", "online", True)
        published: dict[str, str] = {}
        announced: set[tuple[str, str]] = set()
        if cfg.ha_discovery:
            client.subscribe(f"{cfg.ha_prefix}/status", qos=1)
            self._announce_all(client, announced)
        cursor = self.outbox.cursor(NAME)
        sent = cursor
        last_save = time.monotonic()
        next_status = 0.0
        next_counters = 0.0
        stop_at: float | None = None
        woken = True  # look for work at once
        maybe_more = True  # rows may be waiting that no wake announced (a full last fetch)
        while True:
            if self.stop.is_set() and stop_at is None:
                stop_at = time.monotonic() + SHUTDOWN_FLUSH_S
            if woken:
                # Clear first, then look for work: a commit after this point wakes the select.
                self.wake.clear()
            now = time.monotonic()
            # Node statuses change when something was committed (a node heard) or as time
            # passes (a node missing its intervals): check on a wake, else once a second.
            timer = now >= next_status
            if woken or timer:
                self._publish_statuses(client, published)
                next_status = now + STATUS_CHECK_S
            if now >= next_counters:
                self._publish_counters(client)
                next_counters = now + COUNTERS_INTERVAL_S
            if self._ha_online:
                self._ha_online = False
                announced.clear()
                self._announce_all(client, announced)
            rows: list[Row] = []
            # Most rounds are woken by PUBACKs alone: only a wake, a full last fetch or the
            # once-a-second timer can mean new rows, so only then is the outbox queried.
            if woken or maybe_more or timer:
                room = WINDOW - len(self._order)
                limit = min(room, FETCH)
                if limit > 0:
                    rows = self.outbox.fetch(sent, limit)
                maybe_more = limit <= 0 or len(rows) == limit
            if rows:
                sent = rows[-1].id
                self._publish_rows(client, rows, announced)
            woken = self._io(client, 0.0 if rows else STATUS_CHECK_S)
            cursor = self._advance(cursor)
            # A cursor saved late only means republishing after a crash (at-least-once), so
            # it is written at most once a second, not after every frame.
            if now - last_save > CURSOR_SAVE_S:
                self.outbox.set_cursor(NAME, cursor)
                last_save = now
            if stop_at is not None and ((not self._order and not rows) or now > stop_at):
                break
        self.outbox.set_cursor(NAME, cursor)
        self._goodbye(client)

    def _publish_counters(self, client: mqtt.Client) -> None:
        # For live views such as iiot-watch: QoS 0 and not retained, because a stale
        # counter is worse than none and these must not take room in the PUBACK window.
        stats = self._bridge_stats
        values = {name: getattr(stats, name) for name in PUBLISHED_COUNTERS}
        for sink_name, sink in list(stats.sinks.items()):
            values[f"backlog_{sink_name}"] = sink.queued
            values[f"delivered_{sink_name}"] = sink.delivered
        for name, value in values.items():
            client.publish(f"{self.cfg.prefix}/bridge/{name}", str(value), qos=0, retain=False)

    def _goodbye(self, client: mqtt.Client) -> None:
        # A clean stop: the broker does not send the will on a normal disconnect.
        info = client.publish(f"{self.cfg.prefix}/bridge/status", "offline", qos=1, retain=True)
        deadline = time.monotonic() + 2.0
        while not info.is_published() and time.monotonic() < deadline:
            self._io(client, 0.05)
        self._announce("stopped", logging.INFO, "MQTT: published bridge offline, disconnecting")

    def _advance(self, cursor: int) -> int:
        """The cursor past every row acknowledged without a gap before it."""
        order = self._order
        delivered = 0
        while order and order[0].done:
            entry = order.popleft()
            cursor = entry.id
            delivered += entry.reading
        self.stats.delivered += delivered
        return cursor

    def _publish_rows(
        self, client: mqtt.Client, rows: list[Row], announced: set[tuple[str, str]]
    ) -> None:
        prefix = self.cfg.prefix
        touched: set[str] = set()
        # Locals and the topic cache: this loop runs for every reading (the sink's hot path).
        append = self._order.append
        inflight = self._inflight
        publish = client.publish
        newest_ts = self._newest_ts
        topics = self._topics
        ha_discovery = self.cfg.ha_discovery
        state_topic = self.cfg.state_topic
        for row in rows:
            route = row.route
            if not route & TO_MQTT:
                append(_Entry(row.id, True))
                continue
            key = (row.node, row.metric)
            if ha_discovery and key not in announced:
                self._announce_entity(client, row.node, row.metric, announced)
            try:
                payload = format_value(row.metric, row.value)
            except CodecError:
                payload = repr(row.value)
            # Retained topics keep the newest reading: an older one (store-and-forward,
            # arriving late) is published but does not replace the retained value.
            retain = bool(route & RETAIN) and row.ts_ns >= newest_ts.get(key, 0)
            if retain:
                newest_ts[key] = row.ts_ns
            topic = topics.get(key)
            if topic is None:
                topic = topics[key] = f"{prefix}/{row.node}/{row.metric}"
            info = publish(topic, payload, qos=1, retain=retain)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise ConnectionLost  # the session ends; unacknowledged rows are resent
            entry = _Entry(row.id, False)
            append(entry)
            inflight[info.mid] = entry
            if state_topic:
                state = self._state_values.setdefault(row.node, {"values": {}, "ts": 0})
                state["values"][row.metric] = row.value
                state["ts"] = max(state["ts"], row.ts_ns)
                touched.add(row.node)
        for node in touched:
            state = self._state_values[node]
            doc = dict(state["values"])
            when = datetime.fromtimestamp(state["ts"] / 1e9, UTC)
            doc["time"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            self._pub(client, f"{prefix}/{node}/state", json.dumps(doc, sort_keys=True), True)

    def _publish_statuses(self, client: mqtt.Client, published: dict[str, str]) -> None:
        for node, status in self.availability.statuses().items():
            if published.get(node) != status:
                self._pub(client, f"{self.cfg.prefix}/{node}/status", status, True)
                if node in published:
                    log.info("%s is %s", node, status)
                published[node] = status

    def _announce_entity(
        self, client: mqtt.Client, node: str, metric: str, announced: set[tuple[str, str]]
    ) -> None:
        cfg = self.cfg
        self._pub(
            client,
            ha.config_topic(cfg.ha_prefix, cfg.prefix, node, metric),
            ha.config_payload(cfg.prefix, node, metric),
            True,
        )
        announced.add((node, metric))
        self.outbox.add_entities([(node, metric)])

    def _announce_all(self, client: mqtt.Client, announced: set[tuple[str, str]]) -> None:
        for node, metric in self.outbox.entities():
            self._announce_entity(client, node, metric, announced)
