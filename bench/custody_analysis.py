"""The custody benchmark's arithmetic: the scaled settings, and what one run recorded.

Pure functions on the simulator's report (``iiot_sim.report``) and node2's serial capture,
so they are checked on small synthetic reports (tests/bench). ``bench/custody_bench.py``
runs the firmware and turns these numbers into figures.

* **scaled settings**: every time setting of the boards divided by ``k`` (report interval,
  STATS interval, hold retry, node2's resend pause), the buffers (node2's ring, node1's
  queue) and ``batch_max`` at their defaults, or divided by ``buffer_div`` for a shorter
  check; all from ``iiot_codec.settings`` and checked against the settings' ranges.
* **ring use**: a ring entry is node2's header (``node2/serialring.py``) plus the frame; per
  second, one TELEMETRY frame of node1 and of node2 each report interval, and one STATS frame
  of each every STATS interval, at the sizes the run sent before the host left.
* **reached the host**: a line reached the host when the host first acknowledged a number
  at or past it (``host_acks``); a reading, when the line of a frame carrying it did.
"""

from __future__ import annotations

import ast
import bisect
import statistics
import struct
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import iiot_codec
from iiot_codec.settings import SETTINGS

from . import REPO

NODE1 = 1  # the simulator's first node1
GATEWAY = 2  # and its node2
SENT = ("telemetry", "batch")  # frames that carry readings
_ROWS = {row[0]: row for row in SETTINGS}
DEFAULTS: dict[str, Any] = {row[0]: row[1] for row in SETTINGS}


@dataclass(frozen=True)
class Scaled:
    """The boards' settings for one custody run: times / k, buffers / buffer_div."""

    k: int
    buffer_div: int
    interval_ms: int
    stats_interval_s: float
    hold_retry_s: int
    resend_ms: int
    ring_bytes: int
    queue_len: int
    batch_max: int

    @property
    def interval_s(self) -> float:
        return self.interval_ms / 1000

    @property
    def at_defaults(self) -> bool:
        return self.buffer_div == 1

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _checked(name: str, value: float) -> float:
    """``value`` for setting ``name``, refused when the board would refuse it."""
    _, _, kind, low, high = _ROWS[name]
    if kind.startswith("i") and value != int(value):
        raise ValueError(f"{name} = {value:g} is not a whole number: choose another k")
    if not low <= value <= high:
        raise ValueError(f"{name} = {value:g} is outside the board's range {low}..{high}")
    return value


def scaled_settings(k: int, buffer_div: int = 1) -> Scaled:
    """The default settings with every time setting divided by ``k``."""
    if k < 1 or buffer_div < 1:
        raise ValueError("k and buffer_div are whole numbers from 1")
    d = DEFAULTS
    interval_ms = d["interval_ms"] or d["interval_s"] * 1000
    return Scaled(
        k=k,
        buffer_div=buffer_div,
        interval_ms=int(_checked("interval_ms", interval_ms / k)),
        stats_interval_s=_checked("stats_interval_s", d["stats_interval_s"] / k),
        hold_retry_s=int(_checked("hold_retry_s", d["hold_retry_s"] / k)),
        resend_ms=int(_checked("resend_ms", d["resend_ms"] / k)),
        ring_bytes=int(_checked("ring_bytes", d["ring_bytes"] // buffer_div)),
        queue_len=int(_checked("queue_len", d["queue_len"] // buffer_div)),
        batch_max=int(d["batch_max"]),
    )


def ring_entry_header() -> int:
    """Bytes node2's ring keeps per line besides the frame: its entry header's struct
    format, read from the firmware (``node2/serialring.py``)."""
    source = (REPO / "node2" / "serialring.py").read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "_FMT" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return struct.calcsize(node.value.value)
    raise ValueError("node2/serialring.py has no _FMT entry header format")


def line_sizes(capture: bytes) -> dict[int, int]:
    """Line number n -> the length of the frame it carries, from node2's serial output
    (one boot: line numbers start again when node2 reboots)."""
    out: dict[int, int] = {}
    for raw in capture.splitlines():
        try:
            line = iiot_codec.decode_line(raw)
        except iiot_codec.CodecError:
            continue
        if line is not None and line.n is not None:
            out.setdefault(line.n, len(line.frame))
    return out


def frame_sizes(
    forwarded: Iterable[dict[str, Any]], sizes: dict[int, int], until_t: float
) -> dict[tuple[int, str], int]:
    """(source, kind) -> the median size of the frames node2 forwarded up to ``until_t``."""
    seen: dict[tuple[int, str], list[int]] = {}
    for f in forwarded:
        size = sizes.get(f["n"]) if f.get("n") is not None else None
        if size is not None and f["t"] <= until_t:
            seen.setdefault((f["src"], f["kind"]), []).append(size)
    return {key: round(statistics.median(v)) for key, v in seen.items()}


def ring_use_per_s(by_kind: dict[tuple[int, str], int], s: Scaled, header: int) -> float:
    """Bytes a second node2's ring takes while the host is away (one node1 and node2)."""
    per_s = 0.0
    for src in (NODE1, GATEWAY):
        for kind, every_s in (("telemetry", s.interval_s), ("stats", s.stats_interval_s)):
            size = by_kind.get((src, kind))
            if size is None:
                raise ValueError(f"no {kind} frame of node {src} was seen before the absence")
            per_s += (header + size) / every_s
    return per_s


def expected_coverage(ring_per_s: float, s: Scaled) -> dict[str, float]:
    """Seconds (at the run's speed) the ring, then node1's queue, cover a host absence."""
    ring_s = s.ring_bytes / ring_per_s
    queue_s = s.queue_len * s.interval_s
    return {"ring_s": ring_s, "queue_s": queue_s, "total_s": ring_s + queue_s}


def queue_depth(readings: Iterable[dict[str, Any]]) -> int:
    """Readings node1 holds: taken, neither acknowledged nor dropped."""
    return sum(1 for r in readings if not r["acked"] and not r["dropped"])


class Reached:
    """When each line of node2 reached the host: the first acknowledgement at or past it."""

    def __init__(self, host_acks: Iterable[list[Any] | tuple[Any, ...]]) -> None:
        self._by_boot: dict[int, tuple[list[int], list[float]]] = {}
        for boot, t, n in sorted(host_acks, key=lambda a: (a[0], a[2], a[1])):
            ns, ts = self._by_boot.setdefault(int(boot), ([], []))
            ns.append(int(n))
            ts.append(float(t))
        for _ns, ts in self._by_boot.values():  # the earliest time covering each n
            for i in range(len(ts) - 2, -1, -1):
                ts[i] = min(ts[i], ts[i + 1])

    def at(self, boot: int, n: int) -> float | None:
        ns, ts = self._by_boot.get(boot, ([], []))
        i = bisect.bisect_left(ns, n)
        return ts[i] if i < len(ns) else None


def _lines_by_frame(forwarded: Iterable[dict[str, Any]]) -> dict[tuple[int, int], dict[str, Any]]:
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for f in forwarded:
        if f["kind"] in SENT and f.get("n") is not None:
            out.setdefault((f["src"], f["fcnt"]), f)
    return out


def reading_reached(report: dict[str, Any]) -> dict[tuple[int, int, int], float | None]:
    """(node, boot, rn) -> when a line carrying the reading reached the host (None: never),
    for every reading that was not dropped."""
    gateway = report["nodes"][str(GATEWAY)]
    lines = _lines_by_frame(gateway.get("forwarded", []))
    reached = Reached(gateway.get("host_acks", []))
    out: dict[tuple[int, int, int], float | None] = {}
    for node in (NODE1, GATEWAY):
        for r in report["nodes"][str(node)]["readings"]:
            if r["dropped"]:
                continue
            times = [
                reached.at(line["boot"], line["n"])
                for fcnt in r["tx"]
                if (line := lines.get((node, fcnt))) is not None
            ]
            known = [t for t in times if t is not None]
            out[(node, r["boot"], r["rn"])] = min(known) if known else None
    return out


def unreached(report: dict[str, Any], until_t: float) -> int:
    """Readings taken up to ``until_t``, not dropped, that have not reached the host."""
    taken = {
        (node, r["boot"], r["rn"])
        for node in (NODE1, GATEWAY)
        for r in report["nodes"][str(node)]["readings"]
        if r["t"] <= until_t and not r["dropped"]
    }
    got = reading_reached(report)
    return sum(1 for key in taken if got.get(key) is None)


def _carried(readings: Iterable[dict[str, Any]]) -> dict[int, int]:
    """Frame counter -> how many readings went out under it."""
    out: dict[int, int] = {}
    for r in readings:
        for fcnt in set(r["tx"]):
            out[fcnt] = out.get(fcnt, 0) + 1
    return out


def taken_at(forwarded: dict[str, Any]) -> float:
    """When node2 took custody of a forwarded frame: its first write less its hold."""
    return float(forwarded["t"]) - float(forwarded.get("hold_ms") or 0) / 1000


def first_held_t(
    readings: list[dict[str, Any]],
    lines: dict[tuple[int, int], dict[str, Any]],
    t_away: float,
    t_back: float,
) -> float | None:
    """When node1 took the first reading node2 could not keep while the host was away (the
    ring was full): the first one taken after the host left that node2 took in only after
    the host was back, or never (a reading retransmitted meanwhile was taken in before)."""
    for r in sorted(readings, key=lambda r: r["t"]):
        if r["t"] <= t_away:
            continue
        taken = [taken_at(line) for f in r["tx"] if (line := lines.get((NODE1, f))) is not None]
        if not taken or min(taken) > t_back:
            return float(r["t"])
    return None


def mean_period_ms(readings: Iterable[dict[str, Any]], t0: float, t1: float) -> float | None:
    """The mean time between a board's readings taken from ``t0`` to ``t1``."""
    ts = sorted(r["t"] for r in readings if t0 <= r["t"] <= t1)
    return round((ts[-1] - ts[0]) * 1000 / (len(ts) - 1), 1) if len(ts) > 1 else None


def analyse_run(
    report: dict[str, Any],
    sizes: dict[int, int],
    t_away: float,
    t_back: float,
    airtime_ms: Callable[[int], float],
) -> dict[str, Any]:
    """What one run recorded: losses, the ring's coverage, the drain and its airtime."""
    node1 = report["nodes"][str(NODE1)]["readings"]
    node2 = report["nodes"][str(GATEWAY)]["readings"]
    forwarded = report["nodes"][str(GATEWAY)].get("forwarded", [])
    reached = reading_reached(report)
    held = [
        (node, r)
        for node, readings in ((NODE1, node1), (GATEWAY, node2))
        for r in readings
        if r["t"] <= t_back and not r["dropped"]
    ]
    times = [reached.get((node, r["boot"], r["rn"])) for node, r in held]
    missing = sum(1 for t in times if t is None)
    done = max([t for t in times if t is not None], default=t_back)
    drain_end = max(done, t_back)
    carried = _carried(node1)
    frames = [
        f
        for f in forwarded
        if f["src"] == NODE1 and f["kind"] in SENT and t_back < taken_at(f) <= drain_end
    ]
    drain_frames = [
        {"kind": f["kind"], "size": sizes[f["n"]], "readings": carried.get(f["fcnt"], 0)}
        for f in frames
        if f.get("n") in sizes
    ]
    air = sum(airtime_ms(f["size"]) for f in drain_frames)
    drained = sum(f["readings"] for f in drain_frames)
    singles = [
        sizes[f["n"]]
        for f in forwarded
        if f["src"] == NODE1 and f["kind"] == "telemetry" and f["t"] <= t_away and f["n"] in sizes
    ]
    single = round(statistics.median(singles)) if singles else None
    held_t = first_held_t(node1, _lines_by_frame(forwarded), t_away, t_back)
    periods = {
        f"node{node}": mean_period_ms(readings, t_away, t_back)
        for node, readings in ((NODE1, node1), (GATEWAY, node2))
    }
    own_drops = [r["t"] for r in node2 if r["dropped"] and r["t"] > t_away]
    return {
        "absence_s": t_back - t_away,
        "node1_lost": sum(1 for r in node1 if r["dropped"]),
        "node2_lost": sum(1 for r in node2 if r["dropped"]),
        "missing": missing,  # neither dropped nor at the host: lost without being counted
        "held_readings": len(held),
        "ring_covers_s": None if held_t is None else held_t - t_away,
        "reading_period_ms": periods,
        "node2_first_own_drop_s": min(own_drops) - t_away if own_drops else None,
        "drain_s": drain_end - t_back,
        "hold_wait_s": min(taken_at(f) for f in frames) - t_back if frames else None,
        "drain_frames": drain_frames,
        "drain_readings": drained,
        "airtime_per_reading_ms": air / drained if drained else None,
        "single_frame_bytes": single,
        "single_airtime_ms": airtime_ms(single) if single is not None else None,
    }
