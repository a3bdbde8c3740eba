"""The custody section of the benchmark (issue 11): its scaled settings, its arithmetic on a
small synthetic report, and one short run of the real firmware through both of its runs.

Nothing here is a time limit: the runs are checked for what they lost and reported.
"""

from __future__ import annotations

import ast
import dataclasses
from typing import Any

import pytest

from bench import REPO, custody_analysis, custody_bench, custody_specs
from bench.profile import FULL, QUICK
from bench.spec import Collector
from iiot_codec.settings import SETTINGS

DEFAULTS = {row[0]: row[1] for row in SETTINGS}


def test_every_time_setting_is_divided_by_k_and_the_buffers_stay_at_their_defaults() -> None:
    s = custody_analysis.scaled_settings(20)
    assert s.interval_ms * 20 == (DEFAULTS["interval_ms"] or DEFAULTS["interval_s"] * 1000)
    assert s.stats_interval_s * 20 == DEFAULTS["stats_interval_s"]
    assert s.hold_retry_s * 20 == DEFAULTS["hold_retry_s"]
    assert s.resend_ms * 20 == DEFAULTS["resend_ms"]
    assert (s.ring_bytes, s.queue_len, s.batch_max) == tuple(
        DEFAULTS[n] for n in ("ring_bytes", "queue_len", "batch_max")
    )
    assert s.at_defaults and FULL.custody_buffer_div == 1
    quick = custody_analysis.scaled_settings(QUICK.custody_k, QUICK.custody_buffer_div)
    assert quick.queue_len == DEFAULTS["queue_len"] // QUICK.custody_buffer_div
    assert not quick.at_defaults


@pytest.mark.parametrize(
    ("k", "div", "why"),
    [(7, 1, "interval_ms"), (40, 1, "hold_retry_s"), (20, 100, "ring_bytes"), (0, 1, "k")],
)
def test_a_scale_the_boards_would_refuse_is_refused(k: int, div: int, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        custody_analysis.scaled_settings(k, div)


def test_the_ring_entry_header_is_the_firmwares() -> None:
    # node2/serialring.py states it twice: the struct format (what the harness reads) and
    # the HEADER constant its code uses; both must agree.
    tree = ast.parse((REPO / "node2" / "serialring.py").read_text(encoding="utf-8"))
    consts = [
        n.value.args[0].value
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "HEADER" for t in n.targets)
        and isinstance(n.value, ast.Call)
    ]
    assert consts == [custody_analysis.ring_entry_header()]


# A synthetic run, one reading a second: the host leaves at 10 s and is back at 20 s.
# node1's readings 0..11 are taken at once (10 and 11 while the host is away, so their lines
# are written only when it is back); the ring is full from reading 12 on, which node1 holds
# with 13..19 queued behind it; back, one BATCH of those eight goes at 21.0 s, a BATCH of
# two at 21.6 s, then one reading per frame again. node2 lost two of its own readings.
T_AWAY, T_BACK = 10.0, 20.0


def _reading(rn: int, t: float, tx: list[int], acked: bool = True, **flags: bool) -> dict[str, Any]:
    return {
        "boot": 0,
        "rn": rn,
        "t": t,
        "r": {"temperature": 20.0 + rn / 10},
        "tx": tx,
        "acked": [tx[-1]] if acked and tx else [],
        "queued": flags.get("queued", False),
        "dropped": flags.get("dropped", False),
    }


def _line(n: int, fcnt: int, t: float, kind: str = "telemetry", taken: float | None = None):
    hold_ms = round((t - taken) * 1000) if taken is not None else 0
    return {"src": 1, "kind": kind, "seq": fcnt, "fcnt": fcnt, "n": n, "t": t, "boot": 0,
            "hold_ms": hold_ms}  # fmt: skip


def synthetic_report() -> tuple[dict[str, Any], dict[int, int]]:
    node1 = []
    forwarded = []
    acks: list[list[float]] = []
    sizes: dict[int, int] = {}
    for rn in range(12):  # one reading per frame, lines 1..12
        t = rn + 0.5
        node1.append(_reading(rn, t, [100 + rn]))
        if t < T_AWAY:
            forwarded.append(_line(rn + 1, 100 + rn, t + 0.1))
            acks.append([0, t + 0.2, rn + 1])
        else:  # kept in the ring while the host is away, written when it is back
            forwarded.append(_line(rn + 1, 100 + rn, 20.2, taken=t + 0.1))
        sizes[rn + 1] = 24
    acks.append([0, 20.3, 12])
    for rn in range(12, 20):  # held: a HOLD-answered try (150), then the drain's batch (200)
        node1.append(_reading(rn, rn + 0.5, [150, 200], queued=rn > 12))
    forwarded.append(_line(13, 200, 21.0, "batch"))
    sizes[13] = 124
    acks.append([0, 21.1, 13])
    for rn in (20, 21):
        node1.append(_reading(rn, rn + 0.5, [201], queued=True))
    forwarded.append(_line(14, 201, 21.6, "batch"))
    sizes[14] = 40
    acks.append([0, 21.7, 14])
    for i, rn in enumerate(range(22, 25)):
        t = rn + 0.5
        node1.append(_reading(rn, t, [202 + i]))
        forwarded.append(_line(15 + i, 202 + i, t + 0.1))
        sizes[15 + i] = 24
        acks.append([0, t + 0.2, 15 + i])
    node2 = [_reading(rn, rn + 0.25, [], acked=False, dropped=True) for rn in (13, 14)]
    report = {
        "nodes": {
            "1": {"readings": node1},
            "2": {"readings": node2, "forwarded": forwarded, "host_acks": acks},
        }
    }
    return report, sizes


def test_one_runs_losses_ring_drain_and_airtime_from_its_report() -> None:
    report, sizes = synthetic_report()
    a = custody_analysis.analyse_run(report, sizes, T_AWAY, T_BACK, lambda n: float(n))
    assert a["absence_s"] == 10.0
    assert (a["node1_lost"], a["node2_lost"], a["missing"]) == (0, 2, 0)
    assert a["held_readings"] == 20  # node1's readings 0..19
    assert a["ring_covers_s"] == pytest.approx(2.5)  # reading 12 was the first held
    assert a["node2_first_own_drop_s"] == pytest.approx(3.25)
    assert a["reading_period_ms"] == {"node1": 1000.0, "node2": 1000.0}
    # the last held reading (19, in the first batch) reached the host at 21.1 s
    assert a["drain_s"] == pytest.approx(1.1)
    assert a["hold_wait_s"] == pytest.approx(1.0)
    # lines 11 and 12 were written after the host was back, but taken before: not drain frames
    assert a["drain_frames"] == [{"kind": "batch", "size": 124, "readings": 8}]
    assert a["airtime_per_reading_ms"] == pytest.approx(124 / 8)
    assert (a["single_frame_bytes"], a["single_airtime_ms"]) == (24, 24.0)
    assert custody_analysis.unreached(report, T_BACK) == 0


def test_a_held_reading_the_host_never_acknowledged_is_missing() -> None:
    report, sizes = synthetic_report()
    acks = report["nodes"]["2"]["host_acks"]
    report["nodes"]["2"]["host_acks"] = [a for a in acks if a[1] < T_BACK]
    assert custody_analysis.unreached(report, T_BACK) == 10  # lines 11..13: readings 10..19
    a = custody_analysis.analyse_run(report, sizes, T_AWAY, T_BACK, lambda n: float(n))
    assert a["missing"] == 10


def test_ring_use_and_expected_coverage_follow_the_settings_and_frame_sizes() -> None:
    s = custody_analysis.scaled_settings(20)
    sizes = {(1, "telemetry"): 24, (2, "telemetry"): 14, (1, "stats"): 30, (2, "stats"): 26}
    header = custody_analysis.ring_entry_header()
    per_s = custody_analysis.ring_use_per_s(sizes, s, header)
    every = s.interval_s
    assert per_s == pytest.approx(
        (2 * header + 38) / every + (2 * header + 56) / s.stats_interval_s
    )
    exp = custody_analysis.expected_coverage(per_s, s)
    assert exp["ring_s"] == pytest.approx(s.ring_bytes / per_s)
    assert exp["queue_s"] == pytest.approx(s.queue_len * every)
    with pytest.raises(ValueError, match="stats"):
        custody_analysis.ring_use_per_s({(1, "telemetry"): 24, (2, "telemetry"): 14}, s, header)


def test_the_figures_of_a_run_are_its_absence_times_k_with_the_goal_at_the_defaults() -> None:
    report, sizes = synthetic_report()
    s = custody_analysis.scaled_settings(20)
    per_s = 8.0
    res = {
        "report": report,
        "sizes": sizes,
        "t_away": T_AWAY,
        "t_back": T_BACK,
        "first_loss_s": None,
        "timed_out": False,
        "ring_per_s": per_s,
        "frame_sizes": {(1, "telemetry"): 24},
        "expected": custody_analysis.expected_coverage(per_s, s),
        "margin_readings": 6,
        "samples": [(0.0, 0), (5.0, 3)],
    }
    col = Collector(custody_specs.SECTION, custody_specs.specs(FULL))
    custody_specs.put_figures(col, s, "limit", res, lambda n: float(n))
    figs = {f.key: f for f in col.figures("not measured")}
    longest = figs[custody_specs.K_LONGEST]
    assert longest.value == pytest.approx(10 * 20 / 60, abs=0.05)
    assert longest.meets_target is False  # 3.3 "minutes" against the hour
    assert figs[custody_specs.K_RING].value == pytest.approx(2.5 * 20 / 60, abs=0.05)
    assert figs[custody_specs.K_RING_USE].value == pytest.approx(8.0 * 60 / 20)
    assert figs[custody_specs.K_DRAIN].value == pytest.approx(1.1)
    hold_s = custody_specs.HOLD_JITTER * DEFAULTS["hold_retry_s"]
    assert figs[custody_specs.K_DRAIN_DEFAULTS].value == pytest.approx(0.1 + hold_s)
    assert figs[custody_specs.K_AIR_RATIO].value == pytest.approx(100 * (124 / 8) / 24, abs=0.1)
    assert figs[custody_specs.K_NODE2_LOST].value == 2
    # the over run's figures come from the other run
    assert not figs[custody_specs.K_FIRST_LOSS].available
    # a limit run that lost a reading has no longest absence, and says why
    report["nodes"]["1"]["readings"][3]["dropped"] = True
    col = Collector(custody_specs.SECTION, custody_specs.specs(QUICK))
    custody_specs.put_figures(col, s, "limit", res, lambda n: float(n))
    longest = {f.key: f for f in col.figures("-")}[custody_specs.K_LONGEST]
    assert not longest.available and "lost 1" in longest.reason
    assert longest.target is None  # quick: not at the default buffers, so no goal


def test_a_short_run_of_the_firmware_brackets_the_limit() -> None:
    # The real firmware, ring and queue at 1/27 of their defaults (the smallest ring the
    # board accepts), both runs at once: the one that comes back in time loses nothing,
    # the one past the limit loses only what node1 dropped and counted.
    profile = dataclasses.replace(QUICK, custody_buffer_div=27)
    figs = {f.key: f for f in custody_bench.figures(profile)}
    longest = figs[custody_specs.K_LONGEST]
    assert longest.available, longest.reason
    over = figs[custody_specs.K_OVER_LOST]
    assert over.available, over.reason
    assert over.value and over.value >= 1 and over.detail["lost_uncounted"] == 0
    first = figs[custody_specs.K_FIRST_LOSS]
    assert first.value is not None and first.value > longest.value
    assert figs[custody_specs.K_AIR_BATCH].detail["by_kind"]["batch"] >= 1
    ratio = figs[custody_specs.K_AIR_RATIO].value
    assert ratio is not None and ratio < 100  # a batch costs less air per reading
    print({k: (f.value, f.unit) for k, f in figs.items()})
