"""The custody figures, their goal (issue 11), and how a run's record becomes them, for
``bench/custody_bench.py``."""

from __future__ import annotations

from typing import Any

from . import custody_analysis as ca
from .custody_analysis import DEFAULTS
from .figures import Target
from .profile import Profile
from .spec import Collector, Spec

SECTION = "Custody: host away, real firmware in the simulator (time settings scaled 1/k)"
HOLD_JITTER = 1.25  # node1 waits its hold plus up to a quarter more (shared/link.py)
GOAL_MIN = 60.0  # issue 11: at least an hour at a 10 s report interval

K_LONGEST = "custody.longest_absence"
K_FIRST_LOSS = "custody.first_loss"
K_EXPECTED = "custody.expected"
K_RING = "custody.ring_covers"
K_RING_USE = "custody.ring_use"
K_DRAIN = "custody.drain"
K_DRAIN_DEFAULTS = "custody.drain_at_defaults"
K_AIR_BATCH = "custody.airtime_batch"
K_AIR_SINGLE = "custody.airtime_single"
K_AIR_RATIO = "custody.airtime_ratio"
K_NODE2_LOST = "custody.node2_own_lost"
K_OVER_LOST = "custody.over_lost"


def specs(profile: Profile) -> tuple[Spec, ...]:
    k, div = profile.custody_k, profile.custody_buffer_div
    at = f"scaled x{k}" + ("" if div == 1 else f"; quick: ring and queue 1/{div}")
    goal = Target(">=", GOAL_MIN, "≥ 60 min (issue 11)") if div == 1 else None
    hold_s = HOLD_JITTER * DEFAULTS["hold_retry_s"]
    return (
        Spec(K_LONGEST, f"longest host absence, none of node1's readings lost ({at})", "min", goal),
        Spec(K_FIRST_LOSS, f"host absence at node1's first lost reading ({at})", "min"),
        Spec(K_EXPECTED, f"expected from the settings: ring + node1's queue ({at})", "min"),
        Spec(K_RING, f"node2's ring alone covers, until node1 is told to hold ({at})", "min"),
        Spec(K_RING_USE, "node2's ring use per minute of absence (default interval)", "B/min"),
        Spec(K_DRAIN, f"drain: host back -> every held reading at the host (as measured, x{k} "
             "time settings)", "s"),
        Spec(K_DRAIN_DEFAULTS, f"drain at the default settings, worst case (node1's hold of "
             f"{hold_s:g} s, the rest as measured)", "s"),
        Spec(K_AIR_BATCH, "time on air per reading, drain (BATCH frames)", "ms"),
        Spec(K_AIR_SINGLE, "time on air per reading, one reading per frame (TELEMETRY)", "ms"),
        Spec(K_AIR_RATIO, "time on air per reading, drain / one reading per frame", "%"),
        Spec(K_NODE2_LOST, "node2's own readings lost in the longest absence (ring full: "
             "documented)", "readings"),
        Spec(K_OVER_LOST, "node1 readings lost past the limit (each dropped and counted by "
             "node1)", "readings"),
    )  # fmt: skip


def _minutes(seconds: float, s: ca.Scaled) -> float:
    """An absence in the run, in minutes at the default time settings."""
    return round(seconds * s.k / 60, 1)


def _put_coverage(col: Collector, s: ca.Scaled, res: dict[str, Any], a: dict[str, Any]) -> None:
    """The limit run's absence (if it lost nothing), against what the settings predict."""
    lost = a["node1_lost"] + a["missing"]
    if res["timed_out"]:
        col.missing(K_LONGEST, "node1's queue did not fill within 1.5x the expected coverage")
    elif lost:
        why = f"the run meant to lose nothing lost {lost} of node1's readings"
        col.missing(K_LONGEST, f"{why} (margin {res['margin_readings']} readings)")
    else:
        col.put(
            K_LONGEST,
            _minutes(a["absence_s"], s),
            absence_s=round(a["absence_s"], 2),
            settings=s.as_dict(),
            margin_readings=res["margin_readings"],
            held_readings=a["held_readings"],
            queue_depth_samples=res["samples"],
        )
    exp = res["expected"]
    col.put(
        K_EXPECTED,
        _minutes(exp["total_s"], s),
        ring_min=_minutes(exp["ring_s"], s),
        queue_min=_minutes(exp["queue_s"], s),
        ring_bytes=s.ring_bytes,
        queue_len=s.queue_len,
        interval_s_at_defaults=s.interval_s * s.k,
    )
    col.put(
        K_RING_USE,
        round(res["ring_per_s"] * 60 / s.k, 1),
        entry_header_bytes=ca.ring_entry_header(),
        frame_bytes={f"node{src}.{kind}": n for (src, kind), n in res["frame_sizes"].items()},
    )
    if a["ring_covers_s"] is None:
        col.missing(K_RING, "node1 never had to hold a reading")
    else:
        own = a["node2_first_own_drop_s"]
        col.put(
            K_RING,
            _minutes(a["ring_covers_s"], s),
            expected_min=_minutes(exp["ring_s"], s),
            node2_first_own_drop_min=None if own is None else _minutes(own, s),
            reading_period_ms=a["reading_period_ms"],
            interval_ms=s.interval_ms,
        )
    col.put(K_NODE2_LOST, a["node2_lost"], absence_s=round(a["absence_s"], 2))


def _put_drain(col: Collector, s: ca.Scaled, a: dict[str, Any]) -> None:
    """The limit run's drain, and the airtime per reading it took."""
    if a["missing"]:
        for key in (K_DRAIN, K_DRAIN_DEFAULTS):
            col.missing(key, f"{a['missing']} held readings never reached the host")
    else:
        col.put(
            K_DRAIN,
            round(a["drain_s"], 2),
            held_readings=a["held_readings"],
            hold_wait_s=a["hold_wait_s"],
            speed=f"x{s.k} time settings; the radio and the serial link at their real speed",
        )
    if not a["missing"] and a["hold_wait_s"] is not None:
        # At the defaults node1 may sit out a whole hold (plus jitter) before it learns that
        # node2 has room again; the rest (the ring to the host, batches on air) is not scaled.
        hold_s = HOLD_JITTER * s.hold_retry_s * s.k
        col.put(
            K_DRAIN_DEFAULTS,
            round(a["drain_s"] - a["hold_wait_s"] + hold_s, 1),
            hold_wait_s=round(a["hold_wait_s"], 2),
            hold_at_defaults_s=hold_s,
        )
    batch, single = a["airtime_per_reading_ms"], a["single_airtime_ms"]
    if batch is None or single is None:
        for key in (K_AIR_BATCH, K_AIR_SINGLE, K_AIR_RATIO):
            col.missing(key, "no drain frame or no single-reading frame was forwarded")
        return
    frames = a["drain_frames"]
    col.put(
        K_AIR_BATCH,
        round(batch, 2),
        frames=len(frames),
        readings=a["drain_readings"],
        by_kind={kind: sum(1 for f in frames if f["kind"] == kind) for kind in ca.SENT},
        frame_bytes=sorted({f["size"] for f in frames}),
        batch_max=s.batch_max,
    )
    col.put(K_AIR_SINGLE, round(single, 2), frame_bytes=a["single_frame_bytes"])
    col.put(K_AIR_RATIO, round(100 * batch / single, 1))


def _put_over(col: Collector, s: ca.Scaled, res: dict[str, Any], a: dict[str, Any]) -> None:
    if res["first_loss_s"] is None:
        col.missing(K_FIRST_LOSS, "node1 dropped nothing within 1.5x the expected coverage")
        col.missing(K_OVER_LOST, "node1 dropped nothing")
        return
    col.put(
        K_FIRST_LOSS,
        _minutes(res["first_loss_s"], s),
        first_loss_s=round(res["first_loss_s"], 2),
        resolution_s=s.interval_s,
        absence_s=round(a["absence_s"], 2),
        settings=s.as_dict(),
        queue_depth_samples=res["samples"],
    )
    col.put(
        K_OVER_LOST,
        a["node1_lost"] + a["missing"],
        dropped_by_node1=a["node1_lost"],
        lost_uncounted=a["missing"],
        absence_s=round(a["absence_s"], 2),
    )


def put_figures(col: Collector, s: ca.Scaled, mode: str, res: dict[str, Any], air: Any) -> None:
    """A run's figures (``res`` as ``_run`` returns it) into ``col``."""
    a = ca.analyse_run(res["report"], res["sizes"], res["t_away"], res["t_back"], air)
    if mode == "limit":
        _put_coverage(col, s, res, a)
        _put_drain(col, s, a)
    else:
        _put_over(col, s, res, a)
