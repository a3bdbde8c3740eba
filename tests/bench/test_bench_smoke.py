"""`make bench-quick`'s harness end to end, on the parts that need no Node-RED and no
simulator (codec, radio, bridge): it runs against the real servers and MicroPython, and its
results file and tables are well-formed with every figure present.

Figures are reported, never asserted against time limits: a figure is either a number or
"not available: <reason>" (its component is missing or broken). Codec and radio figures
depend on nothing else, so they must always be numbers.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import airtime, bridge_specs, codec_bench, report

REPO = Path(__file__).resolve().parents[2]


def expected_keys() -> list[str]:
    keys = [
        f"codec.{runtime}.{name.removesuffix('_us')}"
        for runtime in ("cpython", "micropython")
        for name, _ in codec_bench.OPERATIONS
    ]
    keys += [f.key for f in airtime.figures()]
    keys += [s.key for s in bridge_specs.SPECS]
    return keys


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    tmp = tmp_path_factory.mktemp("bench")
    docs = tmp / "performance.md"
    shutil.copy(REPO / "docs" / "performance.md", docs)
    out = tmp / "results.json"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "bench", "--quick", "--out", str(out), "--docs", str(docs)),
            *("--only", "codec", "--only", "radio", "--only", "bridge"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
    )
    return proc, tmp


def test_quick_run_succeeds_and_prints_one_table(quick_run) -> None:
    proc, _ = quick_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines()[0].split() == ["figure", "value", "unit", "target", "met"]
    for section in ("[Codec and radio]", f"[{bridge_specs.SECTION}]"):
        assert section in proc.stdout


def test_results_file_has_machine_info_and_every_figure(quick_run) -> None:
    proc, tmp = quick_run
    doc = json.loads((tmp / "results.json").read_text(encoding="utf-8"))
    assert doc["profile"] == "quick" and doc["harness_errors"] == []
    machine = doc["machine"]
    for field in ("cpu_model", "cores", "python", "micropython", "mosquitto", "victoria_metrics"):
        assert machine[field], field
    assert machine["cores"] >= 1
    figures = {f["key"]: f for f in doc["figures"]}
    assert sorted(figures) == sorted(expected_keys())
    for key, fig in figures.items():
        assert fig["unit"] and fig["label"], key
        if fig["available"]:
            assert isinstance(fig["value"], float) and math.isfinite(fig["value"]), key
            assert fig["value"] >= 0, key
        else:
            assert fig["value"].startswith("not available: ") and len(fig["value"]) > 16, key
        if "target" in fig:
            assert fig["target"]["op"] in (">=", "<=") and fig["target"]["description"]
            assert fig["meets_target"] in (True, False, None)
            assert (fig["meets_target"] is None) == (not fig["available"]), key
    # No dependencies: these are always measured.
    for key, fig in figures.items():
        if key.startswith(("codec.", "radio.")):
            assert fig["available"], (key, fig["value"])
    assert figures["radio.earlier.bytes"]["value"] == 10.0
    assert str(REPO) not in (tmp / "results.json").read_text(encoding="utf-8")


def test_docs_tables_regenerated_with_every_figure(quick_run) -> None:
    _, tmp = quick_run
    text = (tmp / "performance.md").read_text(encoding="utf-8")
    start, end = text.index(report.BEGIN), text.index(report.END)
    block = text[start:end]
    assert "Not run yet" not in block and "make bench-quick" in block
    doc = json.loads((tmp / "results.json").read_text(encoding="utf-8"))
    rows = [ln for ln in block.splitlines() if ln.startswith("| ") and "---" not in ln]
    labelled = [ln for ln in rows if not ln.startswith("| figure |")]
    assert len(labelled) == len(doc["figures"])
    for fig in doc["figures"]:
        assert f"| {fig['label']} |" in block, fig["key"]
    # Everything outside the markers is kept.
    assert text[:start] == (REPO / "docs" / "performance.md").read_text(encoding="utf-8")[:start]
