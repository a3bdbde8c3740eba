"""node2's side of the serial link, as the fault benchmark's load generator plays it.

:class:`Node2Writer` feeds a system lines at 25 lines/s; with ``ring`` it keeps and streams
them the way node2's firmware does (``node2/gateway_node.py``, ``node2/serialring.py``),
with node2's own settings (``iiot_codec.settings``).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque

from .custody_analysis import ring_entry_header
from .load import Load
from .rig import Phase

RATE_HZ = 25.0
RESEND_MAX_MS = 60_000  # node2 backs off to this while the host stays silent
WINDOW = 16  # lines node2 streams ahead of the host's acknowledgements
ENTRY_HEADER = ring_entry_header()  # bytes node2's ring keeps per line besides the frame
TICK_S = 0.02


def _node2_setting(name: str, default: int) -> int:
    """node2's default for a setting, from the codec's settings table when it has one."""
    try:
        from iiot_codec import settings
    except ImportError:
        return default
    for row in getattr(settings, "SETTINGS", ()):
        if row[0] == name:
            return int(row[1])
    return default


class Node2Writer(threading.Thread):
    """Lines arriving at 25 lines/s until ``stop``; with ``ring``, handled as node2 does.

    Without ``ring`` (the earlier firmware) each line is written once when it arrives. With
    it, each line goes into a ring of ``ring_bytes`` (an entry is a 14-byte header and the
    frame) and stays there until the host acknowledges it; a line that finds no room waits
    (node2 answers HOLD over the air and node1 keeps the reading queued), so nothing the
    gateway accepted is ever dropped. Lines stream to the host oldest first, at most
    ``WINDOW`` unacknowledged at a time; when acknowledgements stop for ``resend_ms`` the
    stream starts again from the oldest unacknowledged line, and that pause doubles (up to
    a minute) while the host stays silent. After ``stop`` it goes on until ``halt`` or until
    everything is acknowledged: node2 keeps running when the load ends. A host that opens the
    port says ``{"hello": X}``; node2 answers (the pty does) and sends every line again from
    the oldest at once.
    """

    def __init__(
        self, ph: Phase, load: Load, ring: bool, stop: threading.Event, halt: threading.Event
    ) -> None:
        super().__init__(name=f"writer-{ph.kind}", daemon=True)
        self.ph, self.load, self.ring = ph, load, ring
        self.stop_event, self.halt = stop, halt
        self.ring_bytes = _node2_setting("ring_bytes", 8192)
        self.resend_ms = _node2_setting("resend_ms", 3000)
        self.written: list[int] = []  # arrival time (ns) of line k
        self.writes = 0  # lines written to the host, resends included
        self.resent = 0
        self.held = 0  # lines that found the ring full and waited for room
        self.most_held = 0
        self.error: BaseException | None = None
        self._acked = 0
        self._ack_seen = 0
        self._hellos = ph.pty.hellos
        self._kept: deque[tuple[int, int]] = deque()  # (n, entry bytes) in the ring
        self._used = 0
        self._waiting: deque[int] = deque()  # indexes of lines waiting for room
        self._next_n = load.first_n  # next line number to stream to the host
        self._wait_ms = self.resend_ms
        self._quiet_since = time.monotonic()
        self._sizes = [ENTRY_HEADER + _frame_len(line) for line in load.lines]

    def _acks(self) -> bool:
        """Read the host's acks; an ack naming another boot is not for these lines."""
        data = bytes(self.ph.pty.acks[self._ack_seen :])
        cut = data.rfind(b"\n") + 1
        self._ack_seen += cut
        before = self._acked
        for line in data[:cut].splitlines():
            if b'"ack"' not in line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            n, boot = obj.get("ack"), obj.get("boot")
            if isinstance(n, int) and boot in (None, self.ph.pty.boot):
                self._acked = max(self._acked, n)
        return self._acked > before

    def _service(self) -> bool:
        """One pass of node2's loop; True once every line that arrived is acknowledged."""
        first_n = self.load.first_n
        now = time.monotonic()
        if self._acks():
            self._quiet_since, self._wait_ms = now, self.resend_ms
        if self.ph.pty.hellos > self._hellos:
            # A host (re)opened the port: node2 sends every line again from the oldest, now.
            self._hellos = self.ph.pty.hellos
            if self._kept:
                self.resent += max(0, self._next_n - self._kept[0][0])
                self._next_n = self._kept[0][0]
            self._quiet_since, self._wait_ms = now, self.resend_ms
        while self._kept and self._kept[0][0] <= self._acked:
            self._used -= self._kept.popleft()[1]
        while self._waiting and self._used + self._sizes[self._waiting[0]] <= self.ring_bytes:
            k = self._waiting.popleft()
            self._kept.append((first_n + k, self._sizes[k]))
            self._used += self._sizes[k]
        if self._kept and (now - self._quiet_since) * 1000 >= self._wait_ms:
            # The host went silent: the stream starts again from the oldest line kept.
            self.resent += max(0, self._next_n - self._kept[0][0])
            self._next_n = self._kept[0][0]
            self._quiet_since = now
            self._wait_ms = min(self._wait_ms * 2, RESEND_MAX_MS)
        newest = self._kept[-1][0] if self._kept else self._acked
        self._next_n = max(self._next_n, self._acked + 1)
        out = []
        while self._next_n <= newest and self._next_n - self._acked <= WINDOW:
            out.append(self.load.lines[self._next_n - first_n])
            self._next_n += 1
        if out:
            self.ph.pty.write(b"".join(out))
            self.writes += len(out)
        return not self._waiting and self._acked >= first_n + len(self.written) - 1

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # handed to the main thread
            self.error = exc

    def _run(self) -> None:
        pty, lines = self.ph.pty, self.load.lines
        start = time.perf_counter()
        for k, line in enumerate(lines):
            if self.stop_event.is_set():
                break
            while True:  # node2's loop runs between arrivals
                delay = start + k / RATE_HZ - time.perf_counter()
                if delay <= 0:
                    break
                time.sleep(min(delay, TICK_S))  # pacing a schedule
                if self.ring:
                    self._service()
            self.written.append(time.time_ns())
            if not self.ring:
                pty.write(line)
                continue
            self._waiting.append(k)
            self._service()
            if self._waiting:  # no room in the ring: node2 holds the frame
                self.held += 1
                self.most_held = max(self.most_held, len(self._waiting))
        while self.ring and not self.halt.is_set():
            if self._service():
                return
            self.halt.wait(TICK_S)


def _frame_len(line: bytes) -> int:
    try:
        return len(json.loads(line)["f"]) // 2
    except (ValueError, KeyError, TypeError):
        return len(line)
