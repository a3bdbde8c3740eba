"""The PNG plots of a run, drawn with matplotlib from the figures (``make bench``).

* ``latency_cdf.png``: line written -> MQTT subscriber at 25 lines/s, iiot-bridge and
  Node-RED on the same earlier-firmware lines, plus iiot-bridge on its contract lines;
* ``capacity.png``: delivery ratio and first-attempt success against offered channel load,
  with pure ALOHA's e^(-2G);
* ``cpu_per_reading.png``: CPU per reading against the line rate, both systems;
* ``custody.png``: node1's queue while the host is away (time scaled to the default
  settings) and after it is back (as measured), in the run that lost nothing and in the
  one past the limit.

matplotlib comes with the ``bench`` extra (``pip install -e '.[bench]'``); without it the
run still writes its tables and says why there are no plots.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .figures import Figure
from .load import LEGACY_READINGS_PER_FRAME, READINGS_PER_FRAME

FILES = {
    "latency_cdf": "latency_cdf.png",
    "capacity": "capacity.png",
    "cpu_per_reading": "cpu_per_reading.png",
    "custody": "custody.png",
}


class PlotError(RuntimeError):
    """matplotlib is missing, or a plot could not be drawn."""


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PlotError(f"matplotlib is not installed ({exc}); pip install -e '.[bench]'") from exc
    return plt


def _by_key(figures: list[Figure]) -> dict[str, Figure]:
    return {f.key: f for f in figures}


def _cdf(ax: Any, samples: list[float], label: str) -> None:
    xs = sorted(samples)
    ys = [(i + 1) / len(xs) for i in range(len(xs))]
    ax.step(xs, ys, where="post", label=f"{label} (n={len(xs)})")


def latency_cdf(plt: Any, figs: dict[str, Figure], path: Path) -> bool:
    ours = figs.get("peer.latency_p99")
    contract = figs.get("bridge.latency_mqtt_p99")
    series: list[tuple[str, Any]] = []
    if ours is not None and ours.available:
        series.append(("iiot-bridge, earlier lines", ours.detail.get("samples_ms")))
        peer = ours.detail.get("node_red", {})
        series.append(("Node-RED, earlier lines", peer.get("samples_ms")))
    if contract is not None and contract.available:
        series.append(("iiot-bridge, contract lines", contract.detail.get("samples_ms")))
    series = [(label, s) for label, s in series if isinstance(s, list) and s]
    if not series:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, samples in series:
        _cdf(ax, samples, label)
    ax.set_xscale("log")
    ax.set_xlabel("line written -> MQTT subscriber (ms, log scale)")
    ax.set_ylabel("fraction of frames")
    ax.set_title("Latency at 25 lines/s, same servers, same run")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def capacity(plt: Any, figs: dict[str, Figure], path: Path) -> bool:
    rows = []
    for f in figs.values():
        if f.key.startswith("capacity.g") and f.key.endswith(".delivery") and f.available:
            first = figs.get(f.key.replace(".delivery", ".first"))
            rows.append((f.detail["offered_load"], f.value, first.value if first else None))
    if not rows:
        return False
    rows.sort()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    loads = [r[0] for r in rows]
    ax.plot([g * 100 for g in loads], [r[1] for r in rows], "o-", label="delivery ratio (retries)")
    firsts = [(r[0], r[2]) for r in rows if r[2] is not None]
    if firsts:
        ax.plot(
            [g * 100 for g, _ in firsts],
            [v for _, v in firsts],
            "s--",
            label="first-attempt success",
        )
    top = max(0.55, max(loads) * 1.05)
    grid = [top * i / 100 for i in range(1, 101)]
    aloha = [100 * math.exp(-2 * g) for g in grid]
    ax.plot([g * 100 for g in grid], aloha, ":", label="pure ALOHA e^(-2G)")
    ax.set_xlabel("offered channel load G (% of airtime)")
    ax.set_ylabel("% of readings")
    ax.set_ylim(0, 105)
    ax.set_title("Radio capacity with the real firmware (SF7, collisions on)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def cpu_per_reading(plt: Any, figs: dict[str, Figure], path: Path) -> bool:
    """CPU per reading against the line rate: both systems on the earlier lines (9 readings
    each), and the bridge on its contract lines (7 readings each)."""
    series: list[tuple[str, list[tuple[float, float]]]] = []
    fig_cpu = figs.get("peer.cpu_us.r25")
    if fig_cpu is not None and fig_cpu.available:
        per = LEGACY_READINGS_PER_FRAME
        for label, by_rate in (
            ("iiot-bridge, earlier lines", fig_cpu.detail.get("by_rate", {})),
            ("Node-RED, earlier lines", fig_cpu.detail.get("node_red", {}).get("by_rate", {})),
        ):
            points = [(d["rate_lines_s"], d["cpu_us_per_frame"] / per) for d in by_rate.values()]
            series.append((label, sorted(points)))
    contract = []
    for key in ("bridge.cpu_us_25fps", "bridge.cpu_us_link"):
        f = figs.get(key)
        if f is not None and f.available and f.value is not None:
            rate = float(f.detail.get("rate_lines_s", 25.0))
            contract.append((rate, f.value / READINGS_PER_FRAME))
    series.append(("iiot-bridge, contract lines", sorted(contract)))
    series = [(label, pts) for label, pts in series if pts]
    if not series:
        return False
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, points in series:
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label=label)
    ax.set_xlabel("lines per second (each series' last point: 115200 baud link saturated)")
    ax.set_ylabel("CPU per reading (µs, user + system)")
    ax.set_ylim(bottom=0)
    ax.set_title("CPU per reading against rate, same servers, same run")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def custody(plt: Any, figs: dict[str, Figure], path: Path) -> bool:
    """node1's queue depth in both custody runs: while the host is away, against the time
    since it left at the default settings' time (the run's seconds x k); once it is back,
    against the seconds since it came back, as measured (the radio is not scaled)."""
    runs = []
    for key, label in (
        ("custody.longest_absence", "host back in time: nothing lost"),
        ("custody.first_loss", "host back after node1's first loss"),
    ):
        f = figs.get(key)
        if f is not None and f.available and f.detail.get("queue_depth_samples"):
            runs.append((label, f.detail))
    if not runs:
        return False
    fig, (away, back) = plt.subplots(
        1, 2, figsize=(9, 4.2), sharey=True, gridspec_kw={"width_ratios": [3, 1]}
    )
    k = queue_len = 0
    for (label, d), style in zip(runs, ("-", "--"), strict=False):
        k, queue_len = d["settings"]["k"], d["settings"]["queue_len"]
        absence = d["absence_s"]
        samples = d["queue_depth_samples"]
        before = [(t * k / 60, n) for t, n in samples if t <= absence]
        after = [(t - absence, n) for t, n in samples if t >= absence]
        line = away.plot([x for x, _ in before], [n for _, n in before], style, label=label)[0]
        back.plot([x for x, _ in after], [n for _, n in after], style, color=line.get_color())
    for ax in (away, back):
        ax.axhline(queue_len, color="grey", linestyle="-.")
        ax.grid(True, alpha=0.3)
    away.plot([], [], "-.", color="grey", label=f"node1's queue_len ({queue_len})")
    away.set_xlabel(f"host away: minutes since it left (run scaled x{k})")
    back.set_xlabel("host back: s, as measured")
    away.set_ylabel("readings held in node1's queue")
    away.set_ylim(bottom=0)
    away.legend(loc="upper left")
    fig.suptitle("Custody: host away, then back (real firmware in the simulator)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_all(figures: list[Figure], out_dir: Path) -> dict[str, str]:
    """Draw every plot the figures allow; return name -> file name written in ``out_dir``."""
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = _by_key(figures)
    written: dict[str, str] = {}
    for name, draw in (
        ("latency_cdf", latency_cdf),
        ("capacity", capacity),
        ("cpu_per_reading", cpu_per_reading),
        ("custody", custody),
    ):
        path = out_dir / FILES[name]
        try:
            if draw(plt, figs, path):
                written[name] = path.name
        except (KeyError, TypeError, ValueError) as exc:
            raise PlotError(f"{name}: {exc!r}") from exc
    return written
