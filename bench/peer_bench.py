"""iiot-bridge and the Node-RED peer side by side (issue 17, section 1).

Both systems read the same earlier-firmware JSON lines (the format Node-RED's users had,
which the bridge also accepts) from a fresh pty, one after the other, on the same servers
in the same run: CPU per frame and RSS at 25 lines/s and with node2's link saturated,
latency to the MQTT subscriber, and the highest unpaced rate with every reading confirmed.
The faults (``faults_bench``) and the instruction counts (``callgrind_bench``) fill the
rest of the section.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import callgrind_bench, faults_bench
from . import peer_specs as P
from .figures import Figure
from .load import GAS_BASE
from .profile import Profile
from .rig import LINK, Phase, Rig, Window, blast_throughput, log, paced_window
from .spec import Collector, Unavailable, run_part
from .stats import percentile

KINDS = ("iiot", "node-red")


def _rate_name(rate: float | str) -> str:
    return "link" if rate == LINK else f"{float(rate):g}"


def _window_detail(w: Window) -> dict[str, Any]:
    return {
        "rate_lines_s": round(w.rate_hz, 1),
        "frames": w.frames,
        "window_s": round(w.wall_s, 1),
        "cpu_s": round(w.cpu_s, 3),
        "cpu_us_per_frame": round(w.cpu_us_per_frame, 1),
        "cpu_pct": round(w.cpu_pct, 2),
        "rss_max_mb": round(max(w.rss_mb), 1) if w.rss_mb else None,
        "all_confirmed": w.confirmed,
        **({"note": w.note[:300]} if w.note else {}),
    }


def _run_system(
    profile: Profile, rig: Rig, kind: str
) -> tuple[dict[str, Window], tuple[float, dict[str, Any]] | str]:
    windows: dict[str, Window] = {}
    with Phase(rig, kind, f"peer-{kind}", legacy=True) as ph:
        ph.start()
        for rate in profile.peer_rates:
            w = paced_window(ph, rate, profile.peer_window_s, GAS_BASE)
            windows[_rate_name(rate)] = w
            log(
                f"{kind} at {w.rate_hz:.0f} lines/s: {w.cpu_us_per_frame:.0f} µs/frame, "
                f"{w.cpu_pct:.2f} % of a core, confirmed {w.confirmed}"
            )
        frames = profile.peer_blast_frames
        try:
            blast: tuple[float, dict[str, Any]] | str = blast_throughput(
                ph, frames, 60 + frames / 20
            )
        except Unavailable as exc:
            blast = str(exc)
    return windows, blast


def _put(
    col: Collector, key: str, kind: str, value: float | None, reason: str, **detail: Any
) -> None:
    if kind == "iiot":
        if value is None:
            col.missing(key, reason)
        else:
            col.put(key, value, **detail)
    else:
        col.put_peer(key, value, reason)
        if value is not None and key in col.values:
            col.values[key][1]["node_red"] = detail


def _fill(col: Collector, kind: str, windows: dict[str, Window], blast: Any) -> None:
    at25, link = windows.get("25"), windows.get("link")
    for key, w, attr in (
        (P.CPU_25, at25, "cpu_us_per_frame"),
        (P.CPU_LINK, link, "cpu_us_per_frame"),
        (P.PCT_25, at25, "cpu_pct"),
        (P.PCT_LINK, link, "cpu_pct"),
    ):
        if w is None:
            _put(col, key, kind, None, "rate not in this profile")
            continue
        digits = 1 if attr == "cpu_us_per_frame" else 2
        value = round(getattr(w, attr), digits)
        extra = {"by_rate": {r: _window_detail(x) for r, x in windows.items()}}
        _put(col, key, kind, value, "", **_window_detail(w), **extra)
    if at25 is not None and at25.rss_mb:
        _put(col, P.RSS_25, kind, round(max(at25.rss_mb), 1), "", samples=len(at25.rss_mb))
    if at25 is not None and at25.mqtt_ms:
        ms = at25.mqtt_ms
        samples = sorted(round(v, 2) for v in ms)
        _put(col, P.P50, kind, round(percentile(ms, 50), 2), "", frames=len(ms))
        _put(
            col, P.P99, kind, round(percentile(ms, 99), 2), "", max_ms=samples[-1],
            samples_ms=samples,
        )  # fmt: skip
    elif at25 is not None:
        for key in (P.P50, P.P99):
            _put(col, key, kind, None, "no reading reached the MQTT subscriber")
    if isinstance(blast, tuple):
        fps, detail = blast
        _put(col, P.MAX_RATE, kind, round(fps, 1), "", **detail)
    else:
        _put(col, P.MAX_RATE, kind, None, str(blast)[:200])


def _body(profile: Profile, col: Collector, during_faults: Callable[[], None] | None) -> None:
    with tempfile.TemporaryDirectory(prefix="iiot-bench-peer-") as tmp, Rig(Path(tmp)) as rig:
        for kind in KINDS:
            try:
                windows, blast = _run_system(profile, rig, kind)
            except Unavailable as exc:
                reason = str(exc)
                log(f"{kind}: {reason}")
                for key in (P.CPU_25, P.CPU_LINK, P.PCT_25, P.PCT_LINK, P.RSS_25, P.P50, P.P99):
                    _put(col, key, kind, None, reason)
                _put(col, P.MAX_RATE, kind, None, reason)
                continue
            _fill(col, kind, windows, blast)
        # The instruction counts do not depend on how busy the machine is, and the faults
        # count losses, not time: both at once, the counts on this rig (its series exist).
        counting = threading.Thread(
            target=callgrind_bench.run, args=(profile, col, rig), name="callgrind"
        )
        side = threading.Thread(target=during_faults, name="side") if during_faults else None
        counting.start()
        try:
            faults_bench.run(profile, col, side)
        finally:
            counting.join()


def figures(profile: Profile, during_faults: Callable[[], None] | None = None) -> list[Figure]:
    """The side-by-side figures; ``during_faults`` (if the faults are reached) runs on a
    thread while they play out."""
    col = Collector(P.SECTION, P.specs(profile.fault_db_down_s))
    return run_part(col, lambda c: _body(profile, c, during_faults))
