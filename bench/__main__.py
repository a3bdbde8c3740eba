"""``python -m bench [--quick]``: run every benchmark, print one table, write the results."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import (
    REPO,
    airtime,
    bridge_bench,
    capacity_bench,
    codec_bench,
    custody_bench,
    e2e_bench,
    firmware_bench,
    peer_bench,
    plots,
    report,
)
from .figures import Figure, merge, unavailable
from .machine import machine_info
from .profile import FULL, QUICK, Profile

PARTS: dict[str, Callable[[Profile], list[Figure]]] = {
    "codec": lambda p: codec_bench.figures(p.codec_iterations, p.codec_repeats),
    "radio": lambda p: airtime.figures(),
    "bridge": bridge_bench.figures,
    "peer": peer_bench.figures,
    "e2e": e2e_bench.figures,
    "capacity": capacity_bench.figures,
    "firmware": firmware_bench.figures,
    "custody": custody_bench.figures,
}


class _FirmwareDuringFaults:
    """Runs the firmware part (delivery under loss: counts, not times) while the peer part
    waits through its faults, where the machine would otherwise mostly idle; falls back to
    running it on its own afterwards."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.figures: list[Figure] | None = None
        self.error: BaseException | None = None

    def __call__(self) -> None:
        _log("firmware (while the peer part waits through its faults) ...")
        try:
            self.figures = firmware_bench.figures(self.profile)
        except BaseException as exc:  # re-raised in the main thread by result()
            self.error = exc
            self.figures = []

    def result(self) -> list[Figure]:
        if self.error is not None:
            raise self.error
        if self.figures is None:  # the peer part never reached its faults
            return firmware_bench.figures(self.profile)
        return self.figures


def _log(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short smoke run (CI): same figures")
    ap.add_argument("--out", type=Path, help="results file (default bench/results.json)")
    ap.add_argument("--docs", type=Path, help="performance.md to update (default docs/...)")
    ap.add_argument("--no-docs", action="store_true", help="leave performance.md alone")
    ap.add_argument(
        "--only", action="append", choices=sorted(PARTS), help="run only these parts (repeatable)"
    )
    return ap.parse_args(argv)


def _merge_earlier(
    out: Path, figures: list[Figure], info: dict[str, Any], wanted: list[str]
) -> None:
    """``--only``: the parts run replace their rows in the earlier results file; the other
    parts' rows stay, marked with the run they come from."""
    info["parts"] = wanted
    try:
        doc = json.loads(out.read_text(encoding="utf-8"))
        earlier = [Figure.from_json(f) for f in doc["figures"]]
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _log(f"earlier results in {out} unreadable ({exc!r}): writing this run's parts only")
        return
    # A run that was itself merged keeps naming the full run the other rows come from.
    base = doc.get("earlier_run") or {k: doc.get(k) for k in ("command", "finished", "duration_s")}
    info["earlier_run"] = base
    figures[:] = merge(earlier, figures)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    profile = QUICK if args.quick else FULL
    out = args.out or REPO / "bench" / ("results-quick.json" if args.quick else "results.json")
    docs = None if args.no_docs else (args.docs or REPO / "docs" / "performance.md")
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    figures: list[Figure] = []
    harness_errors: list[str] = []
    wanted = [name for name in PARTS if not args.only or name in args.only]
    firmware = _FirmwareDuringFaults(profile)
    parts = dict(PARTS)
    if "peer" in wanted and "firmware" in wanted:
        parts["peer"] = lambda p: peer_bench.figures(p, firmware)
        parts["firmware"] = lambda p: firmware.result()
    for name in wanted:
        part = parts[name]
        _log(f"{name} ...")
        t0 = time.monotonic()
        try:
            figures += part(profile)
        except Exception as exc:  # a bug in the harness itself: report it and fail the run
            traceback.print_exc()
            harness_errors.append(f"{name}: {exc!r}")
            figures.append(
                unavailable(
                    f"{name}.harness_error",
                    name,
                    f"{name} benchmark",
                    "",
                    f"harness error: {exc!r}",
                )
            )
        _log(f"{name} done in {time.monotonic() - t0:.1f} s")
    info = {
        "command": "make bench-quick" if args.quick else "make bench",
        "profile": profile.name,
        "started": started_at,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine_info(),
        "harness_errors": harness_errors,
    }
    if args.only:
        _merge_earlier(out, figures, info, wanted)
    plot_dir = REPO / "bench" / "plots" if not args.quick else out.parent / "plots"
    try:
        info["plots"] = plots.write_all(figures, plot_dir)
    except plots.PlotError as exc:
        info["plots"] = {}
        info["plot_error"] = str(exc)
        _log(f"plots not drawn: {exc}")
    report.scrub(figures)
    print(report.console_table(figures))
    report.write_json(out, figures, info)
    print(f"results written to {out}", file=sys.stderr)
    if docs is not None:
        report.update_docs(docs, figures, info)
        print(f"tables updated in {docs}", file=sys.stderr)
    return 1 if harness_errors else 0


if __name__ == "__main__":
    sys.exit(main())
