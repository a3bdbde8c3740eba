"""The processors in order: parse -> decode + MIC -> duplicate rule -> timestamp -> outbox.

Timestamps: a reading was taken at the line's receive time minus how long node2 held the
line (``h``) minus the reading's own age in the frame (a BATCH carries one per reading).
Receive times strictly increase per bridge, and a reading's time is moved on by a
nanosecond when another reading of the same node already has it, so two readings of one
series never share a timestamp (InfluxDB would keep only one).

``Intake.process`` takes a batch of received lines (those that arrived together), turns the
accepted ones into readings, commits readings and the per-source last counters in one
outbox transaction, and returns the line number to acknowledge to node2 (or None; see
``processors.acks``). The caller writes ``{"ack": n}`` only after this returns: commit
first, then acknowledge.

Several gateways (issue 15): each port is an :class:`Inlet`, with its own line run and its
own last counters per source (``node4@<gateway>``), so each port's resends are recognised
as before; ``process_ports`` takes the lines of every port that arrived together. A new
frame of a port is then a candidate, and the copies of one frame (same source and
counter) are merged and claimed once through ``processors.copies`` (in the outbox for one
bridge, in Redis for several): only the winner's readings are stored. With one port and
no shared claims (``Inlet`` suffix ""), frames are stored at once, as before.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from iiot_codec import DUPLICATE, STALE, CodecError, classify, decode, peek

from .availability import Availability
from .dedup import claim_key
from .logs import RateLimited
from .model import LINK, READING, Reading, node_name
from .outbox import Outbox, OutboxError
from .pending import Pending, Waiting, settle
from .processors.acks import AckTracker
from .processors.copies import Copy, Decider, best, gateways
from .processors.legacy import LegacyLine
from .processors.lines import FrameLine, parse_line
from .stats import GatewayStats, Stats

if TYPE_CHECKING:
    from iiot_codec import Frame

log = logging.getLogger("iiot_bridge.pipeline")

LINE_END = "line_end"  # outbox meta key: end of node2's gap-free line run
# Counter window per frame kind: a node's STATS frames are numbered apart from its readings.
_WINDOW = {"telemetry": "", "batch": "", "stats": "/stats"}
_RECENT_STAMPS = 4096  # per node: reading times remembered to keep them distinct
MS = 1_000_000  # ns
GATEWAYS = "gateways"  # link row: how many gateways heard the stored frame
Line = tuple[bytes, int]


class Inlet:
    """One serial port as the intake sees it: its gateway, its line run, its counter keys."""

    def __init__(self, label: str, suffix: str, end: int, stats: GatewayStats) -> None:
        self.label = label
        self.suffix = suffix  # appended to counter sources and LINE_END ("" : one port)
        self.meta_key = LINE_END + suffix
        self.acks = AckTracker(end)
        self.saved_end = self.acks.end
        self.stats = stats

    def new_run(self) -> None:
        """node2 starts its stream again from its oldest line (the serial session)."""
        self.acks.restart()


class Intake:
    def __init__(
        self,
        outbox: Outbox,
        stats: Stats,
        keys: dict[int, bytes] | None = None,
        availability: Availability | None = None,
        on_commit: Callable[[], None] | None = None,
        on_stored: Callable[[Sequence[Reading]], None] | None = None,
        decider: Decider | None = None,
        pending: Pending | None = None,
        single: str | None = "",
    ) -> None:
        """``single``: the gateway label of the only port, whose counters keep the plain
        source keys; None when there may be several ports (each then its own keys). The
        copies of a frame are claimed through ``decider`` when there is one."""
        self.outbox = outbox
        self.stats = stats
        self.keys = keys or {}
        self.availability = availability
        self.on_commit = on_commit
        self.on_stored = on_stored  # sees every batch of readings once it is committed
        self.noisy = RateLimited(log)
        # The duplicate filter's state: last accepted counter per source. Telemetry and
        # STATS frames of a node keep separate windows, so either numbering scheme works.
        self.counters = outbox.counters()
        self._last_ns = 0
        self._taken: dict[str, dict[int, None]] = {}  # node -> recent reading times (ordered)
        self.decider = decider
        self.pending = pending
        self.single = single
        self.inlets: dict[str, Inlet] = {}
        if single is not None:
            self.inlet(single)

    def inlet(self, label: str) -> Inlet:
        """The port named ``label`` (made on first use: ``--serial auto`` finds ports late)."""
        inlet = self.inlets.get(label)
        if inlet is None:
            suffix = "" if label == self.single else "@" + label
            end = self.outbox.meta(LINE_END + suffix)
            several = suffix or self.decider is not None  # gateways to count apart
            stats = self.stats.gateway(label) if several else GatewayStats()
            inlet = self.inlets[label] = Inlet(label, suffix, 0 if end is None else end, stats)
        return inlet

    @property
    def acks(self) -> AckTracker:
        """The line run of the only port (single-port callers and tests)."""
        return next(iter(self.inlets.values())).acks

    def new_run(self) -> None:
        """node2 starts its stream again from its oldest line (the serial session)."""
        for inlet in self.inlets.values():
            inlet.new_run()

    def _stamp(self, recv_ns: int) -> int:
        # Strictly increasing receive times: two frames of one node never share a timestamp
        # (InfluxDB would keep only one of them).
        self._last_ns = max(recv_ns, self._last_ns + 1)
        return self._last_ns

    def _distinct(self, node: str, ts_ns: int) -> int:
        """``ts_ns``, or the next free nanosecond when a reading of ``node`` has it."""
        taken = self._taken.get(node)
        if taken is None:
            taken = self._taken[node] = {}
        while ts_ns in taken:
            ts_ns += 1
        taken[ts_ns] = None
        if len(taken) > _RECENT_STAMPS:
            del taken[next(iter(taken))]
        return ts_ns

    def process(self, lines: Sequence[Line], inlet: Inlet | None = None) -> int | None:
        """Process ``(line, receive time ns)`` pairs of one port (the only one, unless
        named); return the ``n`` to acknowledge."""
        port = inlet if inlet is not None else next(iter(self.inlets.values()))
        return self.process_ports([(port, lines)])[0]

    def process_ports(self, batches: Sequence[tuple[Inlet, Sequence[Line]]]) -> list[int | None]:
        """The lines of several ports that arrived together; the ``n`` to acknowledge to
        each port's node2 (None: nothing numbered came), in the order given."""
        readings: list[Reading] = []
        changed: dict[str, int] = {}
        seen: dict[str, int] = {}
        heard: list[tuple[str, int, bool]] = []
        candidates: dict[str, list[Copy]] | None = {} if self.decider is not None else None
        numbered: list[bool] = []
        stats = self.stats
        for inlet, lines in batches:
            any_numbered = False
            acks = inlet.acks
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
                    for node, metric, value, kind in parsed.values:
                        readings.append(Reading(node, metric, value, ts, kind))
                        seen[node] = ts
                        heard.append((node, ts, True))
                    continue
                if parsed.n is not None:
                    any_numbered = True
                    if not acks.saw(parsed.n):
                        stats.gap_lines += 1
                        self.noisy.warning(
                            "gap", "line %d follows a gap; waiting for node2 to resend", parsed.n
                        )
                        continue
                accepted = self._frame(parsed, ts, readings, changed, inlet, candidates)
                if accepted is not None:
                    node, live = accepted
                    seen[node] = ts
                    heard.append((node, ts, live))
            numbered.append(any_numbered)
        meta = {i.meta_key: i.acks.end for i, _ in batches if i.acks.end != i.saved_end}
        won: dict[str, str] = {}
        waiting: dict[str, Waiting] = {}
        if candidates:
            won, waiting = self._decide(candidates, readings)
        if readings or changed or meta or waiting:
            try:
                self.outbox.commit(
                    readings, changed, seen, meta, self._extra(won, waiting) if candidates else None
                )
            except OutboxError:
                # Nothing of this batch is stored: forget its counters and do not ACK, so
                # node2 resends the lines once the disk is usable again.
                self.counters = self._reload_counters()
                for i, _ in batches:
                    i.acks = AckTracker(i.saved_end)
                raise
            for i, _ in batches:
                i.saved_end = i.acks.end
            if waiting and self.pending is not None:
                self.pending.settled(list(waiting), [])
                stats.pending_frames = self.pending.count
            stats.readings += len(readings)
            if readings and self.on_stored is not None:
                self.on_stored(readings)
        if self.availability is not None:
            for node, ts, live in heard:
                self.availability.heard(node, ts, live)
        # Wake the sinks last: the MQTT sink publishes node statuses as it wakes, so the
        # nodes just heard must already count as online.
        if (readings or changed or meta) and self.on_commit is not None:
            self.on_commit()
        return [i.acks.ack() if n else None for (i, _), n in zip(batches, numbered, strict=True)]

    def _extra(
        self, won: dict[str, str], waiting: dict[str, Waiting]
    ) -> Callable[[sqlite3.Connection], None]:
        assert self.decider is not None
        claims = self.decider.claims

        def write(db: sqlite3.Connection) -> None:
            if won:
                claims.persist(db, won)
            if waiting:
                Pending.stage(db, waiting)

        return write

    def _decide(
        self, candidates: dict[str, list[Copy]], readings: list[Reading]
    ) -> tuple[dict[str, str], dict[str, Waiting]]:
        """Claim the batch's new frames; append the readings of those won. Returns the
        claims won (key -> owner) and the frames left waiting (claims unreachable)."""
        assert self.decider is not None
        decision = self.decider.decide(candidates)
        stats = self.stats
        won: dict[str, str] = {}
        for key, copies in decision.won.items():
            self._store(copies, readings)
            won[key] = decision.owners[key]
            for copy in copies[1:]:  # merged into the stored one: heard, not stored again
                stats.gateway(copy.gateway).duplicates += 1
                stats.cross_duplicates += 1
        for copies in decision.lost.values():
            for copy in copies:
                stats.gateway(copy.gateway).duplicates += 1
                stats.cross_duplicates += 1
        waiting: dict[str, Waiting] = {}
        for key, copies in decision.undecided.items():
            rows: list[Reading] = []
            self._store(copies, rows)
            waiting[key] = Waiting(decision.owners[key], rows)
            stats.cross_duplicates += len(copies) - 1
            for copy in copies[1:]:
                stats.gateway(copy.gateway).duplicates += 1
        return won, waiting

    def settle_pending(self) -> int:
        """Claim the frames waiting since the shared claims were unreachable (see
        ``pending.settle``); how many were settled. OutboxError as process()."""
        if self.pending is None or self.decider is None or not self.pending.count:
            return 0
        count, readings = settle(self.pending, self.decider.claims, self.outbox, self.stats)
        if readings:
            if self.on_stored is not None:
                self.on_stored(readings)
            if self.on_commit is not None:
                self.on_commit()
        return count

    def _reload_counters(self) -> dict[str, int]:
        try:
            return self.outbox.counters()
        except OutboxError:
            return self.counters

    def _frame(
        self,
        line: FrameLine,
        ts: int,
        readings: list[Reading],
        changed: dict[str, int],
        inlet: Inlet,
        candidates: dict[str, list[Copy]] | None,
    ) -> tuple[str, bool] | None:
        """Decode and classify one frame; append its readings if it is new (or, with
        shared claims, make it a candidate)."""
        stats = self.stats
        frame = line.frame
        try:
            kind, src = peek(frame)
        except CodecError as err:
            stats.malformed += 1
            self.noisy.warning("frame", "undecodable frame (%s): %s", err.reason, err)
            return None
        if kind == "ack":
            stats.malformed += 1
            self.noisy.warning("ack", "an ACK frame on the serial line, ignored")
            return None
        source = node_name(src) + _WINDOW.get(kind, "")
        key = source + inlet.suffix
        last = self.counters.get(key)
        if last is None and inlet.suffix:
            # A port's first frame: the source's plain counter, from before the bridge read
            # several ports, still says what its node2 may resend.
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
        stats.frames += 1
        verdict = classify(f, last)
        if verdict in (DUPLICATE, STALE):
            stats.duplicates += 1
            log.debug("%s frame %d already stored (%s)", key, f.fcnt, verdict)
            return None
        self.counters[key] = f.fcnt
        changed[key] = f.fcnt
        live = f.age_ms == 0 and line.hold_ms == 0
        node = node_name(f.src)
        if candidates is not None:
            inlet.stats.frames += 1
            copy = Copy(inlet.label, line, f, ts)
            candidates.setdefault(claim_key(source, f.fcnt), []).append(copy)
            return node, live
        self._readings(node, f, line, ts, readings)
        # Link quality belongs to this reception, not to when the readings were taken.
        if line.rssi is not None:
            readings.append(Reading(node, "rssi", float(line.rssi), ts, LINK))
        if line.snr is not None:
            readings.append(Reading(node, "snr", float(line.snr), ts, LINK))
        return node, live

    def _readings(
        self, node: str, f: Frame, line: FrameLine, ts: int, readings: list[Reading]
    ) -> None:
        received = ts - line.hold_ms * MS
        recent = self._taken.get(node)
        for age_ms, values in f.entries:
            taken = received - age_ms * MS
            if recent is None or taken in recent or len(recent) >= _RECENT_STAMPS:
                taken = self._distinct(node, taken)
                recent = self._taken[node]
            else:  # the usual case, inline: a time no reading of this node has yet
                recent[taken] = None
            for metric, value in values.items():
                readings.append(Reading(node, metric, value, taken, READING))

    def _store(self, copies: list[Copy], readings: list[Reading]) -> None:
        """The rows of a frame heard by one or more gateways: the first copy's readings,
        the best copy's link, and how many gateways heard it."""
        first = copies[0]
        node = node_name(first.frame.src)
        self._readings(node, first.frame, first.line, first.ts, readings)
        top = best(copies)
        if top.line.rssi is None:
            return  # node2's own frame: heard by no radio
        readings.append(Reading(node, "rssi", float(top.line.rssi), top.ts, LINK))
        if top.line.snr is not None:
            readings.append(Reading(node, "snr", float(top.line.snr), top.ts, LINK))
        readings.append(Reading(node, GATEWAYS, float(len(gateways(copies))), top.ts, LINK))
