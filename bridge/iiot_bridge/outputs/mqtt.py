"""MQTT sink (paho-mqtt 2.x): one topic per metric, QoS 1, done on PUBACK.

Each connection is a fresh paho client, driven by the sink's runner thread (paho's manual
loop: ``select`` on the broker socket and the wake pipe, then ``loop_read``/``loop_write``)
rather than paho's network thread: one thread and no lock ping-pong is five times faster.
Rows are published without waiting per message (up to ``WINDOW`` in flight); a row is
done when its PUBACK came and every row before it is done. When the connection drops,
whatever was not acknowledged is published again, in outbox order, on the next connection:
nothing relies on paho's in-memory queue, which dies with the process, and the retained
topics end with the newest value. MQTT delivery is therefore at-least-once.

Readings are retained (an older store-and-forward reading is published without retain),
link rows (rssi, snr) are not. ``<prefix>/bridge/<bridge id>/status`` says online/offline
(retained; "offline" is also the last will). Node statuses, the bridge's counters, the
state JSON and Home Assistant discovery are :class:`~.mqtt_extras.Extra` hooks.
"""

from __future__ import annotations

import contextlib
import logging
import select
import ssl
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt

from iiot_codec import CodecError, format_value

from ..model import READING, Kind
from ..outbox import Row
from . import ha
from .base import NOTHING, Context, Disconnected, Done, SinkPlugin
from .mqtt_config import MqttSettings, new_client, status_topic
from .mqtt_extras import BridgeCounters, Extra, NodeState, SettingRequests, Statuses
from .wake import Wake

log = logging.getLogger("iiot_bridge.mqtt")

WINDOW = 2000  # rows in flight (published, PUBACK pending) at most
FETCH = 500
TICK_S = 0.25  # the extras' timers are looked at on new rows, else this often
CONNECT_TIMEOUT_S = 10.0
GOODBYE_S = 2.0


def _socket_write_wanted(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Nothing to do: ``_io`` asks ``want_write()`` on every round."""


class _Entry:
    """A published row in outbox order; ``done`` once its PUBACK came."""

    __slots__ = ("id", "done")

    def __init__(self, row_id: int) -> None:
        self.id = row_id
        self.done = False


class ConnectionLost(Exception):
    """The broker connection ended."""


class MqttSink:
    name = "mqtt"
    title = "MQTT"
    accepts = frozenset({Kind.READING, Kind.LINK})
    batch_size = FETCH
    window = WINDOW
    linger_s = 0.0

    def __init__(self, cfg: MqttSettings, extras: Sequence[Extra]) -> None:
        self.cfg = cfg
        self.target = f"{cfg.target.host}:{cfg.target.port}"
        self.extras = tuple(extras)
        # Only the hooks an extra implements: the sink calls them on most rounds.
        self._on_rows = [e.on_rows for e in extras if type(e).on_rows is not Extra.on_rows]
        self._on_tick = [e.on_tick for e in extras if type(e).on_tick is not Extra.on_tick]
        self._next_tick = 0.0
        self.client: mqtt.Client | None = None
        # Published rows in outbox order, PUBACK pending or not yet reported done.
        self._order: deque[_Entry] = deque()
        # Published rows by MQTT message id, until their PUBACK marks them done. Marking
        # from paho's on_publish is cheaper than asking every entry is_published().
        self._inflight: dict[int, _Entry] = {}
        self._connack_rc: Any = None
        self._lost = False
        self._newest_ts: dict[tuple[str, str], int] = {}
        self._topics: dict[tuple[str, str], str] = {}
        self._messages: list[tuple[str, bytes]] = []
        self._wake_fd: Wake | None = None

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
        self._messages.append((msg.topic, bytes(msg.payload)))

    # -- network I/O -----------------------------------------------------------------------

    def _io(self, client: mqtt.Client, timeout: float, wake: Wake | None) -> bool:
        """One round of network work, waiting up to ``timeout`` s for the broker or a wake.
        Returns whether the wake pipe is readable (the intake committed something)."""
        sock = client.socket()
        if sock is None or self._lost:
            raise ConnectionLost
        pending = getattr(sock, "pending", None)
        if pending is not None and pending():  # TLS: decrypted bytes already buffered
            timeout = 0.0
        wlist = [sock] if client.want_write() else []
        rlist: list[Any] = [sock] if wake is None else [sock, wake]
        try:
            readable, _, _ = select.select(rlist, wlist, [], timeout)
        except (OSError, ValueError) as err:  # the socket was closed under us
            raise ConnectionLost from err
        if sock in readable or (pending is not None and pending()):
            client.loop_read()
        if client.want_write():
            client.loop_write()
        client.loop_misc()
        if self._lost or client.socket() is None:
            raise ConnectionLost
        return wake is not None and wake in readable

    def _publish(self, topic: str, payload: str | bytes, retain: bool, qos: int = 1) -> None:
        assert self.client is not None
        self.client.publish(topic, payload, qos=qos, retain=retain)

    # -- the Sink contract -----------------------------------------------------------------

    def connect(self) -> None:
        cfg, target = self.cfg, self.cfg.target
        client = new_client(cfg)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        # paho's hook for an external event loop: with it set, publish() only queues and
        # _io's loop_write sends the queue, a frame's messages back to back, instead of a
        # send per publish. The broker then answers with PUBACKs that arrive together, so
        # one wake-up reads them all (less CPU per frame, see docs/performance.md).
        client.on_socket_register_write = _socket_write_wanted
        self._connack_rc = None
        self._lost = False
        where = f"broker {target.host}:{target.port}"
        try:
            client.connect(target.host, target.port, keepalive=cfg.mqtt_keepalive)
            deadline = time.monotonic() + CONNECT_TIMEOUT_S
            while self._connack_rc is None and time.monotonic() < deadline:
                self._io(client, 0.1, None)
        except (OSError, ssl.SSLError, ValueError) as err:
            raise Disconnected(f"{where} unreachable ({err})", state="down") from err
        except ConnectionLost:
            pass
        rc = self._connack_rc
        if rc is None or rc.is_failure:
            with contextlib.suppress(Exception):
                client.disconnect()
            why = f"refused: {rc}" if rc is not None else "did not answer CONNECT"
            if rc is not None and rc.value in (4, 5, 134, 135):
                why += " (check the user name in --mqtt-url and the MQTT password)"
            raise Disconnected(f"{where} {why}", state=f"refused{rc}")
        self.client = client
        self._order.clear()
        self._inflight.clear()
        self._messages.clear()
        self._publish(status_topic(cfg.topic_prefix, cfg.bridge_id), "online", True)
        for extra in self.extras:
            for topic in extra.subscriptions:
                client.subscribe(topic, qos=1)
            extra.on_connect(self._publish)

    def write(self, rows: Sequence[Row]) -> Done:
        client = self.client
        if client is None:
            raise Disconnected("not connected", state="down")
        publish = self._publish
        if rows:
            self._publish_rows(client, rows)
            for on_rows in self._on_rows:
                on_rows(publish, rows)
        now = time.monotonic()
        if rows or now >= self._next_tick:
            self._next_tick = now + TICK_S
            fresh = bool(rows)
            for on_tick in self._on_tick:
                on_tick(publish, now, fresh)
        if self._messages:
            messages, self._messages = self._messages, []
            for topic, payload in messages:
                for extra in self.extras:
                    if any(mqtt.topic_matches_sub(s, topic) for s in extra.subscriptions):
                        extra.on_message(publish, topic, payload)
        return self._advance()

    def wait(self, timeout: float, wake: Wake) -> bool:
        if self.client is None:
            return wake.wait(timeout)
        try:
            return self._io(self.client, timeout, wake)
        except ConnectionLost:
            raise Disconnected("connection lost", state="lost") from None

    def close(self, final: bool) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        if final:
            self._goodbye(client)
        with contextlib.suppress(Exception):  # already gone
            client.disconnect()

    # -- internals ---------------------------------------------------------------------------

    def _goodbye(self, client: mqtt.Client) -> None:
        # A clean stop: the broker does not send the will on a normal disconnect.
        cfg = self.cfg
        info = client.publish(
            status_topic(cfg.topic_prefix, cfg.bridge_id), "offline", qos=1, retain=True
        )
        deadline = time.monotonic() + GOODBYE_S
        with contextlib.suppress(ConnectionLost):
            while not info.is_published() and time.monotonic() < deadline:
                self._io(client, 0.05, None)
        log.info("MQTT: published bridge offline, disconnecting")

    def _advance(self) -> Done:
        """Pop every row acknowledged without a gap before it."""
        order = self._order
        through = 0
        delivered = 0
        while order and order[0].done:
            through = order.popleft().id
            delivered += 1
        return Done(through, delivered) if delivered else NOTHING

    def _publish_rows(self, client: mqtt.Client, rows: Sequence[Row]) -> None:
        prefix = self.cfg.topic_prefix
        # Locals and the topic cache: this loop runs for every reading (the hot path).
        append = self._order.append
        inflight = self._inflight
        publish = client.publish
        newest_ts = self._newest_ts
        topics = self._topics
        reading = READING
        for row in rows:
            key = (row.node, row.metric)
            try:
                payload = format_value(row.metric, row.value)
            except CodecError:
                payload = repr(row.value)
            # Retained topics keep the newest reading: an older one (store-and-forward,
            # arriving late) is published but does not replace the retained value.
            retain = row.kind == reading and row.ts_ns >= newest_ts.get(key, 0)
            if retain:
                newest_ts[key] = row.ts_ns
            topic = topics.get(key)
            if topic is None:
                topic = topics[key] = f"{prefix}/{row.node}/{row.metric}"
            info = publish(topic, payload, qos=1, retain=retain)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise Disconnected("publish failed: connection lost", state="lost")
            entry = _Entry(row.id)
            append(entry)
            inflight[info.mid] = entry


def _build(cfg: MqttSettings, ctx: Context) -> MqttSink:
    prefix = cfg.topic_prefix
    extras: list[Extra] = [
        Statuses(prefix, ctx.availability),
        BridgeCounters(prefix, ctx.stats, cfg.bridge_id),
    ]
    if cfg.state_topic:
        extras.append(NodeState(prefix))
    if ctx.downlink is not None:
        extras.append(SettingRequests(prefix, ctx.downlink))
    if cfg.ha_discovery:
        extras.append(ha.Discovery(cfg.ha_prefix, prefix, ctx.outbox, cfg.bridge_id))
    return MqttSink(cfg, extras)


PLUGIN = SinkPlugin(
    name=MqttSink.name,
    settings=MqttSettings,
    enabled=lambda cfg: not cfg.no_mqtt,
    build=_build,
    off="--no-mqtt",
)
