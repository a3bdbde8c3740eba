"""The run report (`--report FILE`) and the end-to-end delivery check built on it.

A reading is identified by (node, boot, rn). node1's `tx` events map each frame counter to
the reading it carried; node2's serial lines give the frames that reached the host. A
reading is delivered once when exactly one distinct frame carrying it reached the serial
output (a line node2 writes again for an unacknowledged host is the same line).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import iiot_codec

from .events import EventLog

REPORT_VERSION = 1


def build_report(log: EventLog, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON-ready report: per node readings, counters, drops, heap; node2's frames."""
    with log.lock:
        nodes: dict[str, Any] = {}
        for node, nl in sorted(log.nodes.items()):
            readings = [r.as_dict(nl.acked) for _, r in sorted(nl.readings.items())]
            entry: dict[str, Any] = {
                "role": nl.role,
                "boots": [dict(b) for b in nl.boots],
                "readings": readings,
                "drops": [{"boot": r["boot"], "rn": r["rn"]} for r in readings if r["dropped"]],
                "acked": sorted(nl.acked),
                "heap": dict(nl.heap, samples=nl.heap_samples),
                "radio": _radio_totals(nl.radio_by_boot),
                "console_lines": nl.console_lines,
                "bad_events": nl.bad_events,
                "tracebacks": list(nl.tracebacks),
                "console_tail": list(nl.tail),
            }
            if node in log.gateways:
                entry["forwarded"] = [f.as_dict() for f in nl.forwarded]
                entry["serial_lines"] = nl.serial_lines
                entry["host_acks"] = [list(a) for a in nl.host_acks]
                entry["bad_serial_lines"] = nl.bad_lines
            nodes[str(node)] = entry
        report: dict[str, Any] = {"version": REPORT_VERSION, "nodes": nodes}
    forwarded = [f for g in sorted(log.gateways) for f in nodes[str(g)].get("forwarded", [])]
    result = analyze_delivery(report, forwarded_frames(forwarded))
    report["totals"] = result.totals()
    report["delivery"] = result.as_dict()
    if extra:
        report.update(extra)
    return report


def _radio_totals(by_boot: dict[int, dict[str, int]]) -> dict[str, int]:
    """SPI transactions and receive-window time over every boot of a board."""
    totals: dict[str, int] = {}
    for counts in by_boot.values():
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
    return totals


@dataclass(frozen=True)
class SerialFrame:
    """One distinct frame that reached the host: its source and 32-bit counter if known."""

    src: int
    kind: str
    seq: int
    fcnt: int | None
    n: int | None = None


def forwarded_frames(forwarded: Iterable[dict[str, Any]]) -> list[SerialFrame]:
    return [
        SerialFrame(f["src"], f["kind"], f["seq"], f.get("fcnt"), f.get("n")) for f in forwarded
    ]


def frames_from_lines(lines: Iterable[str | bytes]) -> list[SerialFrame]:
    """Distinct frames in serial lines as a host read them (console lines skipped).

    Lines with the same line number n and frame are one write re-sent by node2.
    """
    seen: dict[int, tuple[int, int]] = {}
    frames: list[SerialFrame] = []
    for raw in lines:
        try:
            line = iiot_codec.decode_line(raw)
            if line is None:
                continue
            frame = iiot_codec.decode(line.frame)
        except iiot_codec.CodecError:
            continue
        if line.n is not None:
            if seen.get(line.n) == (frame.src, frame.seq):
                continue
            seen[line.n] = (frame.src, frame.seq)
        fcnt = frame.fcnt if frame.fcnt_hi is not None else None
        frames.append(SerialFrame(frame.src, frame.kind, frame.seq, fcnt, line.n))
    return frames


@dataclass
class DeliveryResult:
    expected: list[tuple[int, int, int]] = field(default_factory=list)  # (node, boot, rn)
    delivered: dict[tuple[int, int, int], int] = field(default_factory=dict)  # -> times
    dropped: list[tuple[int, int, int]] = field(default_factory=list)  # queue overflow
    unmatched: list[SerialFrame] = field(default_factory=list)  # frames no reading explains
    # The same counter forwarded again (e.g. node2 reset between a frame and its ACK and
    # forwarded the retransmission): the bridge's counter rule sees a DUPLICATE. Counted
    # per frame, (src, fcnt) -> extra times, since one batch frame carries several readings.
    repeated: dict[tuple[int, int], int] = field(default_factory=dict)
    stats_frames: int = 0

    @property
    def missing(self) -> list[tuple[int, int, int]]:
        return [k for k in self.expected if self.delivered.get(k, 0) == 0]

    @property
    def duplicated(self) -> list[tuple[int, int, int]]:
        return [k for k in self.expected if self.delivered.get(k, 0) > 1]

    @property
    def once(self) -> list[tuple[int, int, int]]:
        return [k for k in self.expected if self.delivered.get(k, 0) == 1]

    def totals(self) -> dict[str, int]:
        return {
            "readings": len(self.expected),
            "delivered_once": len(self.once),
            "missing": len(self.missing),
            "duplicated": len(self.duplicated),
            "dropped": len(self.dropped),
            "unmatched_frames": len(self.unmatched),
            "repeated_counters": sum(self.repeated.values()),
            "stats_frames": self.stats_frames,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "missing": [list(k) for k in self.missing],
            "duplicated": [[*k, self.delivered[k]] for k in self.duplicated],
            "repeated": [[*k, n] for k, n in self.repeated.items()],
            "dropped": [list(k) for k in self.dropped],
            "unmatched": [
                {"src": f.src, "kind": f.kind, "seq": f.seq, "fcnt": f.fcnt, "n": f.n}
                for f in self.unmatched
            ],
        }


def analyze_delivery(
    report: dict[str, Any],
    frames: Iterable[SerialFrame],
    *,
    nodes: Iterable[int] | None = None,
    until_t: float | None = None,
) -> DeliveryResult:
    """Match frames that reached the host to the readings the boards generated.

    ``nodes``: which boards' readings are expected (default: every board that logged one).
    ``until_t``: only readings taken before this time (report clock) are expected, so
    readings still in flight when the run stopped do not count as missing.
    """
    result = DeliveryResult()
    tx_map: dict[int, dict[int, list[tuple[int, int]]]] = {}  # src -> fcnt -> [(boot, rn)]
    wanted = None if nodes is None else set(nodes)
    for key, entry in report["nodes"].items():
        node = int(key)
        per = tx_map.setdefault(node, {})
        for r in entry["readings"]:
            for fcnt in r["tx"]:
                per.setdefault(fcnt, []).append((r["boot"], r["rn"]))
            if wanted is not None and node not in wanted:
                continue
            ident = (node, r["boot"], r["rn"])
            if r["dropped"]:
                result.dropped.append(ident)
            elif until_t is None or r["t"] <= until_t:
                result.expected.append(ident)
    seen: set[tuple[int, int]] = set()
    for frame in frames:
        if frame.kind == "stats":
            result.stats_frames += 1
            continue
        if frame.kind not in ("telemetry", "batch"):
            continue
        per = tx_map.get(frame.src, {})
        fcnt = frame.fcnt
        if fcnt is None:
            matches = [f for f in per if f & 0xFFFF == frame.seq]
            fcnt = max(matches) if matches else None
        carried = per.get(fcnt) if fcnt is not None else None
        if not carried:
            result.unmatched.append(frame)
            continue
        counter = (frame.src, fcnt)
        if counter in seen:
            if frame.n is not None:  # (without line numbers it may be a line re-sent)
                result.repeated[counter] = result.repeated.get(counter, 0) + 1
            continue
        seen.add(counter)
        for reading in carried:
            ident = (frame.src, *reading)
            result.delivered[ident] = result.delivered.get(ident, 0) + 1
    return result
