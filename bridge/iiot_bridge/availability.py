"""Node availability: online while a node reports, offline after it misses N intervals.

A node's report interval is measured, not configured: the median of the gaps between its
last live frames (store-and-forward frames, which arrive in bursts, do not count). Until two
gaps are known the configured default applies. The MQTT sink publishes the statuses
(``<prefix>/<node>/status``, retained) whenever they differ from what it last sent.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable

ONLINE = "online"
OFFLINE = "offline"


class _Node:
    __slots__ = ("last_ns", "last_live_ns", "gaps", "interval_s")

    def __init__(self, last_ns: int) -> None:
        self.last_ns = last_ns
        self.last_live_ns: int | None = None
        self.gaps: deque[float] = deque(maxlen=9)
        self.interval_s: float | None = None  # the median gap, once two gaps are known


class Availability:
    def __init__(
        self,
        default_interval_s: float = 60.0,
        timeout_intervals: float = 3.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.default_interval_s = default_interval_s
        self.timeout_intervals = timeout_intervals
        self.clock = clock
        self._nodes: dict[str, _Node] = {}
        self._lock = threading.Lock()

    def load(self, seen: dict[str, int]) -> None:
        """Last-seen times from the outbox, so a restart does not forget the nodes."""
        with self._lock:
            for node, last_ns in seen.items():
                self._nodes.setdefault(node, _Node(last_ns))

    def heard(self, node: str, recv_ns: int, live: bool = True) -> None:
        with self._lock:
            state = self._nodes.get(node)
            if state is None:
                state = self._nodes[node] = _Node(recv_ns)
            state.last_ns = max(state.last_ns, recv_ns)
            if live:
                if state.last_live_ns is not None and recv_ns > state.last_live_ns:
                    state.gaps.append((recv_ns - state.last_live_ns) / 1e9)
                    # Kept up to date here, so statuses() (the MQTT sink asks after every
                    # commit) does not take medians.
                    if len(state.gaps) >= 2:
                        state.interval_s = max(0.1, statistics.median(state.gaps))
                state.last_live_ns = recv_ns

    def _interval(self, state: _Node) -> float:
        return self.default_interval_s if state.interval_s is None else state.interval_s

    def statuses(self, now: float | None = None) -> dict[str, str]:
        """Every known node's status now."""
        now = self.clock() if now is None else now
        out: dict[str, str] = {}
        with self._lock:
            for node, state in self._nodes.items():
                silent = now - state.last_ns / 1e9
                limit = self.timeout_intervals * self._interval(state)
                out[node] = OFFLINE if silent > limit else ONLINE
        return out
