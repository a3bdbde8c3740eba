"""The harness's own arithmetic and helpers: airtime formula, percentile, figure and docs
rendering, waiting for a process to open a port."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench import airtime, procstat, report
from bench.figures import Figure, Target, measured, merge, unavailable
from bench.stats import percentile


def test_airtime_matches_semtech_calculator() -> None:
    # Semtech's LoRa calculator: 10 bytes, SF7/BW125/CR4-5, preamble 8, explicit header, CRC
    # on: 41.216 ms. Preamble 12 adds 4 symbols of 1.024 ms.
    assert airtime.time_on_air_ms(10, airtime.SF7) == pytest.approx(45.312)
    # SF9: 4.096 ms symbols; payload symbols 8 + ceil(92/36)*5 = 23; (12 + 4.25 + 23) * 4.096
    assert airtime.time_on_air_ms(10, airtime.SF9) == pytest.approx(160.768)
    # SF12 at 125 kHz switches on low data rate optimisation (symbol > 16 ms).
    sf12 = airtime.Modulation(sf=12)
    assert airtime.time_on_air_ms(10, sf12) == pytest.approx((16.25 + 8 + 2 * 5) * 32.768)
    with pytest.raises(ValueError):
        airtime.time_on_air_ms(256, airtime.SF7)


def test_airtime_grows_with_payload_and_spreading_factor() -> None:
    sizes = {k: len(p) for k, (_, p) in airtime.payloads().items()}
    assert sizes["ours"] + 4 == sizes["ours_mic"]
    assert sizes["earlier"] == 10 < sizes["ours"] < sizes["json"]
    for n in (10, 20, 117):
        assert airtime.time_on_air_ms(n, airtime.SF7) < airtime.time_on_air_ms(n, airtime.SF9)


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile([5.0], 99) == 5.0
    assert percentile([3, 1, 2], 100) == 3
    with pytest.raises(ValueError):
        percentile([], 50)


def test_figures_render_targets_and_reasons(tmp_path: Path) -> None:
    figs = [
        measured("a.x", "A", "fast thing", 1234.5, "frames/s", Target(">=", 1000)),
        measured("a.y", "A", "slow thing", 30.0, "ms", Target("<=", 20)),
        unavailable("b.z", "B", "missing thing", "MB", "no bridge yet", Target("<=", 60)),
    ]
    assert [f.meets_target for f in figs] == [True, False, None]
    table = report.console_table(figs)
    assert "not available: no bridge yet" in table and "NO" in table and "[B]" in table
    doc = tmp_path / "perf.md"
    doc.write_text(f"# T\n\nbefore\n{report.BEGIN}\nold\n{report.END}\nafter\n", encoding="utf-8")
    info = {
        "command": "make bench",
        "finished": "now",
        "duration_s": 1.0,
        "machine": dict.fromkeys(
            ("cpu_model", "cores", "python", "micropython", "mosquitto", "victoria_metrics"), "x"
        ),
    }
    report.update_docs(doc, figs, info)
    text = doc.read_text(encoding="utf-8")
    assert "old" not in text and text.startswith("# T\n\nbefore\n") and text.endswith("after\n")
    assert "| fast thing | 1,234 | frames/s | ≥ 1000 frames/s | yes |" in text
    assert "| missing thing | not available: no bridge yet | MB | ≤ 60 MB |  |" in text
    report.update_docs(doc, figs, info)  # idempotent: the markers survive a rewrite
    assert doc.read_text(encoding="utf-8") == text
    doc.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(report.DocsError):
        report.update_docs(doc, figs, info)


def test_only_runs_replace_their_rows_and_keep_the_others() -> None:
    goal = Target("<=", 0.1, on="ratio")
    side = Figure("peer.cpu", "Peer", "CPU", "µs", 2.0, goal, compared=True, peer=4.0)
    earlier = [
        measured("codec.encode", "Codec", "encode", 7.0, "µs", run=1),
        side,
        unavailable("e2e.p50", "E2E", "p50", "ms", "the simulator does not import"),
    ]
    for fig in earlier:  # what results.json holds reads back as the same figure
        assert Figure.from_json(fig.to_json()) == fig
    fresh = [
        measured("peer.cpu", "Peer", "CPU", 1.5, "µs"),
        measured("peer.new", "Peer", "n", 1, ""),
    ]
    merged = merge(earlier, fresh)
    assert [f.key for f in merged] == ["codec.encode", "peer.cpu", "e2e.p50", "peer.new"]
    assert merged[1].value == 1.5 and merged[0].value == 7.0 and merged[2].value is None


def test_wait_open_sees_a_file_opened_by_a_child_and_times_out_on_one_never_opened(
    tmp_path: Path,
) -> None:
    port = tmp_path / "port"
    port.write_text("")
    opener = f"import time; time.sleep(0.3); f = open({str(port)!r}); time.sleep(30)"
    # The reader is a child of the process waited on, like Node-RED's or the bridge's.
    shell = subprocess.Popen(["sh", "-c", f'"{sys.executable}" -c "{opener}"; :'])
    polls = []
    try:
        assert procstat.wait_open(shell.pid, str(port), 20, lambda: polls.append(1))
        assert len(polls) > 1  # it was not open at once: the wait did wait
        assert not procstat.wait_open(shell.pid, str(tmp_path / "other"), 0.2, lambda: None)

        def died() -> None:
            raise RuntimeError("gone")

        with pytest.raises(RuntimeError, match="gone"):
            procstat.wait_open(shell.pid, str(tmp_path / "other"), 5, died)
    finally:
        for pid in procstat.tree(shell.pid)[::-1]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        shell.wait()
