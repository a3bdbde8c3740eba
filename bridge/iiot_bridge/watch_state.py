"""iiot-watch's model: what the MQTT topics said, per node and for the bridge.

Built from topics alone (``<prefix>/<node>/<metric>``, ``<prefix>/<node>/status``,
``<prefix>/bridge/<bridge id>/<counter>``; an earlier bridge's ``<prefix>/bridge/<counter>``),
so it works against any deployment's broker. With several bridges (issue 15) their counters
are added up and the status says how many are online. Retained
messages give the latest values at once but not when they were taken, so they count
neither as frames nor as "last heard"; only live messages do. Counters a node reports
(retransmissions, ...) are followed as increases since the view started, surviving a reboot
of the node (the counter restarting from 0).

Settings sent down to a node (downlink.py): the value in effect is the node's own report
(``<prefix>/<node>/interval_s``); ``<prefix>/<node>/set/<setting>`` is a request someone
made, ``.../pending`` the one the bridge keeps until the node confirms it (retained, empty
once confirmed or withdrawn) and ``.../error`` why a request was refused.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

from .downlink import ERROR, PENDING, TAGS, parse_pending
from .watch_units import LINK_METRICS, is_health

# Topics under a node that describe the node rather than carry a reading.
NODE_META = frozenset({"status", "state"})
BRIDGE = "bridge"
# A node that reports how many frames it received is a gateway: its counters get a panel of
# their own, apart from its sensor readings.
GATEWAY_MARKER = "packets_received"
RETRANSMISSIONS = "retransmissions"
QUEUE = "queue_depth"


@dataclass
class Series:
    """One metric of one node: its latest text and a time-bounded history of values."""

    text: str = ""
    updated: float | None = None  # arrival of the latest live message; None: retained only
    live: int = 0  # live messages since the view started
    increase: float = 0.0  # growth since the view started, as a counter (resets survived)
    last: float | None = None
    history: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, text: str, now: float, window_s: float, retained: bool = False) -> None:
        self.text = text
        if not retained:
            self.updated = now
            self.live += 1
        try:
            value = float(text)
        except ValueError:
            return
        if self.last is not None and not retained:
            self.increase += value - self.last if value >= self.last else value
        self.last = value
        self.history.append((now, value))
        while self.history and self.history[0][0] < now - window_s:
            self.history.popleft()

    def values(self) -> list[float]:
        return [v for _, v in self.history]


@dataclass
class SettingView:
    """What the topics said about one setting of one node, besides the value in effect."""

    requested: str | None = None  # the latest request not yet taken ("": a withdrawal)
    pending: int | None = None  # the request the bridge keeps until the node confirms it
    since: float | None = None  # when the bridge took it (the bridge's clock)
    refused: str | None = None  # why the latest request was refused, when it was

    def request(self, text: str) -> None:
        self.requested, self.refused = text, None

    def keep(self, payload: bytes) -> None:
        try:
            kept = parse_pending(payload)
        except ValueError:
            return  # not the bridge's: keep what is known
        if kept is None:
            self.pending = self.since = None
            if self.requested == "":
                self.requested = None  # the withdrawal is done
        else:
            self.pending, self.since = kept
            if self.requested == str(self.pending):
                self.requested = None  # taken

    def refuse(self, why: str) -> None:
        self.refused, self.requested = why, None

    def confirmed(self, text: str) -> None:
        if self.requested is not None and self.requested == text:
            self.requested = None


@dataclass
class NodeView:
    status: str = "unknown"
    metrics: dict[str, Series] = field(default_factory=dict)
    settings: dict[str, SettingView] = field(default_factory=dict)

    @property
    def last_heard(self) -> float | None:
        times = [s.updated for s in self.metrics.values() if s.updated is not None]
        return max(times) if times else None

    @property
    def gateway(self) -> bool:
        return GATEWAY_MARKER in self.metrics

    @property
    def over_air(self) -> bool:
        """Heard over the radio (its frames carry RSSI/SNR), not the gateway's own frames."""
        return any(name in self.metrics for name in LINK_METRICS)

    @property
    def frames(self) -> int:
        """Frames of this node delivered while the view ran (duplicates excluded).

        The bridge publishes RSSI once per frame heard over the air; a node heard locally
        (the gateway itself) has no RSSI, so its busiest metric stands in for it."""
        if "rssi" in self.metrics:
            return self.metrics["rssi"].live
        return max((s.live for s in self.metrics.values()), default=0)

    @property
    def retransmissions(self) -> float | None:
        series = self.metrics.get(RETRANSMISSIONS)
        return None if series is None else series.increase

    @property
    def loss(self) -> float | None:
        """Share of transmissions that had to be repeated, since the view started."""
        retx = self.retransmissions
        if retx is None or (self.frames + retx) == 0:
            return None
        return retx / (self.frames + retx)

    def readings(self) -> list[str]:
        return sorted(n for n in self.metrics if n not in LINK_METRICS and not is_health(n))

    def health(self) -> list[str]:
        return sorted(n for n in self.metrics if n not in LINK_METRICS and is_health(n))

    def setting_names(self) -> list[str]:
        """Settings it can be sent: reported in effect, or named by a request's topics."""
        return sorted({n for n in self.metrics if n in TAGS} | set(self.settings))


class WatchState:
    """Everything the view shows, updated from MQTT messages (thread-safe)."""

    def __init__(self, prefix: str, window_s: float = 300.0, now: float | None = None) -> None:
        self.prefix = prefix.strip("/")
        self.window_s = window_s
        self.started = time.time() if now is None else now
        self.nodes: dict[str, NodeView] = {}
        self.bridge: dict[str, str] = {}  # every bridge's counters, added up
        self.bridge_status = "unknown"
        self.bridges: dict[str, dict[str, str]] = {}  # bridge id -> its counters
        self.bridge_statuses: dict[str, str] = {}  # bridge id -> online/offline
        self.messages = 0
        self.connected = False
        self.problem = ""  # why the broker is not connected, when known
        self.lock = threading.Lock()
        self._prefix_parts = self.prefix.split("/")

    def apply(
        self, topic: str, payload: bytes, now: float | None = None, retained: bool = False
    ) -> tuple[str, str, str]:
        """Record one message; return (node, name, text) for the plain-line output."""
        now = time.time() if now is None else now
        parts = topic.split("/")
        n = len(self._prefix_parts)
        if parts[:n] != self._prefix_parts or not all(parts[n:]):
            return "", "", ""
        text = payload.decode("utf-8", "replace").strip()
        if len(parts) in (n + 3, n + 4) and parts[n + 1] == "set" and parts[n] != BRIDGE:
            return self._setting(parts[n], parts[n + 2 :], payload, text)
        if len(parts) >= n + 3 and parts[n] == BRIDGE:
            return self._bridge(parts[n + 1], "/".join(parts[n + 2 :]), text)
        if len(parts) != n + 2:
            return "", "", ""
        node, name = parts[n], parts[n + 1]
        with self.lock:
            self.messages += 1
            if node == BRIDGE:
                if name == "status":
                    self.bridge_status = text
                else:
                    self.bridge[name] = text
            elif name == "status":
                self.nodes.setdefault(node, NodeView()).status = text
            elif name not in NODE_META:
                view = self.nodes.setdefault(node, NodeView())
                view.metrics.setdefault(name, Series()).add(text, now, self.window_s, retained)
                if name in view.settings:
                    view.settings[name].confirmed(text)
        return node, name, text

    def _setting(
        self, node: str, rest: list[str], payload: bytes, text: str
    ) -> tuple[str, str, str]:
        """``set/<setting>`` (a request), ``set/<setting>/pending`` or ``.../error``."""
        setting, what = rest[0], rest[1] if len(rest) > 1 else ""
        if what not in ("", PENDING, ERROR):
            return "", "", ""
        with self.lock:
            self.messages += 1
            view = self.nodes.setdefault(node, NodeView()).settings.setdefault(
                setting, SettingView()
            )
            if what == PENDING:
                view.keep(payload)
            elif what == ERROR:
                view.refuse(text)
            else:
                view.request(text)
        return node, "/".join(["set", *rest]), text

    def _bridge(self, bridge_id: str, name: str, text: str) -> tuple[str, str, str]:
        """``<prefix>/bridge/<bridge id>/<name>``: one bridge of possibly several."""
        with self.lock:
            self.messages += 1
            if name == "status":
                self.bridge_statuses[bridge_id] = text
                statuses = list(self.bridge_statuses.values())
                online = statuses.count("online")
                if len(statuses) == 1 or online in (0, len(statuses)):
                    self.bridge_status = text if len(set(statuses)) == 1 else "offline"
                else:
                    self.bridge_status = f"{online}/{len(statuses)} online"
            else:
                self.bridges.setdefault(bridge_id, {})[name] = text
                texts = [b[name] for b in self.bridges.values() if name in b]
                try:
                    total = sum((float(t) for t in texts), 0.0)
                    self.bridge[name] = str(int(total)) if total.is_integer() else str(total)
                except ValueError:
                    self.bridge[name] = text
        return BRIDGE, name, text

    def set_connection(self, connected: bool, problem: str = "") -> None:
        with self.lock:
            self.connected = connected
            self.problem = problem
