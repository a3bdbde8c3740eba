"""The processors in order: parse -> decode + MIC -> duplicate rule -> timestamp -> outbox.

``Intake.process`` takes a batch of received lines (those that arrived together), turns the
accepted ones into readings, commits readings and the per-source last counters in one
outbox transaction, and returns the line number to acknowledge to node2 (or None; see
``processors.acks``). The caller writes ``{"ack": n}`` only after this returns: commit
first, then acknowledge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from iiot_codec import DUPLICATE, STALE, CodecError, classify, decode

from .availability import Availability
from .logs import RateLimited
from .model import ROUTE_LINK, ROUTE_READING, Reading, node_name
from .outbox import Outbox, OutboxError
from .processors.acks import AckTracker
from .processors.legacy import LegacyLine
from .processors.lines import FrameLine, parse_line
from .stats import Stats

log = logging.getLogger("iiot_bridge.pipeline")

LINE_END = "line_end"  # outbox meta key: end of node2's gap-free line run
_KIND_BITS = {0: "", 2: "/stats"}  # frame type bits -> counter window suffix


class Intake:
    def __init__(
        self,
        outbox: Outbox,
        stats: Stats,
        keys: dict[int, bytes] | None = None,
        availability: Availability | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.stats = stats
        self.keys = keys or {}
        self.availability = availability
        self.on_commit = on_commit
        self.noisy = RateLimited(log)
        # The duplicate filter's state: last accepted counter per source. Telemetry and
        # STATS frames of a node keep separate windows, so either numbering scheme works.
        self.counters = outbox.counters()
        self._last_ns = 0
        line_end = outbox.meta(LINE_END)
        self.acks = AckTracker(0 if line_end is None else line_end)
        self._saved_end = self.acks.end

    def _stamp(self, recv_ns: int) -> int:
        # Strictly increasing receive times: two frames of one node never share a timestamp
        # (InfluxDB would keep only one of them).
        self._last_ns = max(recv_ns, self._last_ns + 1)
        return self._last_ns

    def process(self, lines: Sequence[tuple[bytes, int]]) -> int | None:
        """Process ``(line, receive time ns)`` pairs; return the ``n`` to acknowledge."""
        readings: list[Reading] = []
        changed: dict[str, int] = {}
        seen: dict[str, int] = {}
        heard: list[tuple[str, int, bool]] = []
        numbered = False
        stats = self.stats
        for raw, recv_ns in lines:
            stats.lines += 1
            try:
                parsed = parse_line(raw)
            except CodecError as err:
                stats.malformed += 1
                self.noisy.warning("malformed", "malformed line (%s): %.120r", err, raw)
                continue
            if parsed is None:
                stats.console_lines += 1
                if raw.strip():
                    # Console output is not an error (boot banner, node2's own log).
                    self.noisy.info(
                        "console", "node2 console: %.200s", raw.decode("utf-8", "replace")
                    )
                continue
            ts = self._stamp(recv_ns)
            if isinstance(parsed, LegacyLine):
                stats.legacy_lines += 1
                for node, metric, value, route in parsed.values:
                    readings.append(Reading(node, metric, value, ts, route))
                    seen[node] = ts
                    heard.append((node, ts, True))
                continue
            if parsed.n is not None:
                numbered = True
                if not self.acks.saw(parsed.n):
                    stats.gap_lines += 1
                    self.noisy.warning(
                        "gap", "line %d follows a gap; waiting for node2 to resend", parsed.n
                    )
                    continue
            accepted = self._frame(parsed, ts, readings, changed)
            if accepted is not None:
                node, live = accepted
                seen[node] = ts
                heard.append((node, ts, live))
        meta = {LINE_END: self.acks.end} if self.acks.end != self._saved_end else None
        if readings or changed or meta:
            try:
                self.outbox.commit(readings, changed, seen, meta)
            except OutboxError:
                # Nothing of this batch is stored: forget its counters and do not ACK, so
                # node2 resends the lines once the disk is usable again.
                self.counters = self._reload_counters()
                self.acks = AckTracker(self._saved_end)
                raise
            if meta:
                self._saved_end = self.acks.end
            stats.readings += len(readings)
        if self.availability is not None:
            for node, ts, live in heard:
                self.availability.heard(node, ts, live)
        # Wake the sinks last: the MQTT sink publishes node statuses as it wakes, so the
        # nodes just heard must already count as online.
        if (readings or changed or meta) and self.on_commit is not None:
            self.on_commit()
        return self.acks.ack() if numbered else None

    def _reload_counters(self) -> dict[str, int]:
        try:
            return self.outbox.counters()
        except OutboxError:
            return self.counters

    def _frame(
        self, line: FrameLine, ts: int, readings: list[Reading], changed: dict[str, int]
    ) -> tuple[str, bool] | None:
        """Decode and classify one frame; append its readings if it is new."""
        stats = self.stats
        frame = line.frame
        src = frame[1] if len(frame) > 1 else 0
        suffix = _KIND_BITS.get((frame[0] >> 4) & 0x03, "") if frame else ""
        source = node_name(src) + suffix
        last = self.counters.get(source)
        try:
            f = decode(frame, key=self.keys.get(src), last_fcnt=last)
        except CodecError as err:
            if err.reason == "crc":
                stats.bad_crc += 1
                self.noisy.warning("crc", "frame with a bad CRC: %s", err)
            elif err.reason == "mic":
                stats.mic_failures += 1
                self.noisy.warning("mic", "frame refused: %s", err)
            else:
                stats.malformed += 1
                self.noisy.warning("frame", "undecodable frame (%s): %s", err.reason, err)
            return None
        if f.kind == "ack":
            stats.malformed += 1
            self.noisy.warning("ack", "an ACK frame on the serial line, ignored: %r", f)
            return None
        stats.frames += 1
        verdict = classify(f, last)
        if verdict in (DUPLICATE, STALE):
            stats.duplicates += 1
            log.debug("%s frame %d already stored (%s)", source, f.fcnt, verdict)
            return None
        self.counters[source] = f.fcnt
        changed[source] = f.fcnt
        node = node_name(f.src)
        taken = ts - f.age_s * 1_000_000_000
        for metric, value in f.readings.items():
            readings.append(Reading(node, metric, value, taken, ROUTE_READING))
        # Link quality belongs to this reception, not to when the readings were taken.
        if line.rssi is not None:
            readings.append(Reading(node, "rssi", float(line.rssi), ts, ROUTE_LINK))
        if line.snr is not None:
            readings.append(Reading(node, "snr", float(line.snr), ts, ROUTE_LINK))
        return node, f.age_s == 0
