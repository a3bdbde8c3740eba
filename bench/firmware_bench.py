"""Firmware figures from the simulator: delivery ratio under loss, peak heap, deploy size.

Each loss level runs two simulations at the same time, same seed: our link layer as
configured by default, and the earlier behaviour, which is the same firmware with
``max_retries: 0`` and ``queue_len: 1``. The firmware refuses ``queue_len: 0`` (its minimum
is 1), and a one-reading queue is no queue: each new reading pushes out the one before it,
and with no retransmission nothing is ever sent twice.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

from . import REPO
from .figures import Figure
from .firmware_specs import (
    LOSSES,
    ROUTES,
    SECTION,
    SPECS,
    delivery_key,
    deploy_key,
    heap_key,
    min_heap_key,
)
from .profile import Profile
from .spec import Collector, Unavailable, run_part

EARLIER = {"max_retries": 0, "queue_len": 1}
NODE1_ID, NODE2_ID = 1, 2
FAT_CLUSTER = 512  # bytes: what a small file really takes on the board's FAT filesystem
# The bisection's range around the simulator's last recorded figure (MPY_MINIMUM_KIB).
HEAP_BELOW_KIB, HEAP_ABOVE_KIB = 6, 14
FROZEN_BOUNDS_KIB = {"low_kib": 32, "high_kib": 64}  # the frozen image needs far less


def _sim_api() -> Any:
    try:
        from iiot_sim import channel, config, report, runner
    except Exception as exc:  # the simulator is being written: any import failure
        raise Unavailable(f"the simulator (iiot_sim.runner) does not import: {exc!r}") from exc
    return channel, config, report, runner


def _simulate(profile: Profile, loss: int, design: str, seed: int) -> dict[str, Any]:
    channel, config, _, runner = _sim_api()
    from iiot_sim.host import AckingHost  # importable: _sim_api() has checked iiot_sim

    link = channel.LinkParams(loss=loss / 100)
    overrides = EARLIER if design == "earlier" else {}
    cfg = config.SimConfig(
        interval_ms=profile.sim_interval_ms,
        channel=channel.ChannelConfig(link=link, seed=seed),
        seed=seed,
        **overrides,
    )
    sim = runner.Simulation(cfg)
    sim.start()
    # A host on node2's port, as the bridge would be: without one node2 keeps what it
    # takes (custody) but stops writing lines, and "forwarded" would understate delivery.
    try:
        with AckingHost(sim.serial_path):
            sim.run(profile.sim_duration_s)
    finally:
        rep: dict[str, Any] = sim.stop()
    return rep


def _delivery(rep: dict[str, Any], settle_s: float) -> tuple[float, dict[str, Any]]:
    """% of node1's readings that reached node2's serial output at least once.

    A reading pushed out of a full queue counts as taken and, unless a frame carrying it got
    through before, as lost. Readings taken in the last ``settle_s`` seconds are left out:
    they may still be queued or in flight when the run stops, which is not a loss.
    """
    _, _, report, _ = _sim_api()
    gateway = rep["nodes"][str(NODE2_ID)]
    node1 = rep["nodes"][str(NODE1_ID)]
    taken_at = {(r["boot"], r["rn"]): r["t"] for r in node1["readings"]}
    if not taken_at:
        tail = node1.get("tracebacks", [])[-1:] or ["no reading logged"]
        raise Unavailable(f"node1 took no readings in the simulator ({tail[0][:160]})")
    until = max(taken_at.values()) - settle_s
    frames = report.forwarded_frames(gateway.get("forwarded", []))
    result = report.analyze_delivery(rep, frames, nodes=[NODE1_ID], until_t=until)
    dropped = [k for k in result.dropped if taken_at.get(k[1:], until + 1) <= until]
    counted = list(result.expected) + dropped
    if not counted:
        raise Unavailable("the simulation ran too briefly to count any reading")
    delivered = sum(1 for k in counted if result.delivered.get(k, 0) > 0)
    detail = {
        "readings": len(counted),
        "delivered": delivered,
        "duplicated": len(result.duplicated),
        "queue_drops": len(dropped),
        "left_out_last_s": round(settle_s, 1),
    }
    return 100.0 * delivered / len(counted), detail


def _heap(col: Collector, rep: dict[str, Any]) -> None:
    for node_id, name in ((NODE1_ID, "node1"), (NODE2_ID, "node2")):
        heap = rep["nodes"][str(node_id)].get("heap", {})
        if "peak_live" not in heap:
            col.missing(heap_key(name), "the simulator reported no heap samples")
            continue
        extra = {k: heap[k] for k in ("peak_alloc", "total", "standin") if k in heap}
        col.put(heap_key(name), round(heap["peak_live"] / 1024, 1), **extra)


def _run_into(out: dict[tuple[int, str], Any], profile: Profile, loss: int, design: str) -> None:
    """Thread body: the report, or the exception, lands in ``out``."""
    try:
        out[(loss, design)] = _simulate(profile, loss, design, seed=100 + loss)
    except BaseException as exc:  # handed to the main thread
        out[(loss, design)] = exc


def _deliveries(profile: Profile, col: Collector) -> None:
    """Every loss level, both designs, all simulations at once (they are mostly idle)."""
    settle_s = max(10 * profile.sim_interval_ms / 1000, 0.15 * profile.sim_duration_s)
    results: dict[tuple[int, str], Any] = {}
    threads = [
        threading.Thread(target=_run_into, args=(results, profile, loss, design))
        for loss in LOSSES
        for design in ("ours", "earlier")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = results[(0, "ours")]
    if isinstance(first, dict):
        _heap(col, first)
    for (loss, design), rep in sorted(results.items()):
        key = delivery_key(design, loss)
        if isinstance(rep, Unavailable):
            col.missing(key, str(rep))
            continue
        if isinstance(rep, BaseException):
            col.missing(key, f"the simulation failed: {rep!r}")
            continue
        try:
            value, detail = _delivery(rep, settle_s)
        except Unavailable as exc:
            col.missing(key, str(exc))
            continue
        if design == "earlier":
            detail["method"] = "same firmware, max_retries 0, queue_len 1"
        col.put(key, round(value, 2), loss_pct=loss, **detail)
    if not isinstance(first, dict):
        raise first if isinstance(first, Unavailable) else Unavailable(repr(first))


def _deploy_dirs() -> dict[str, Path]:
    for base in ("build/firmware", "build/deploy", "build"):
        found = {n: REPO / base / n for n in ("node1", "node2") if (REPO / base / n).is_dir()}
        if len(found) == 2:
            return found
    raise Unavailable("`make firmware` left no build/firmware/node1 and node2 folders")


def _deploy_sizes(col: Collector) -> None:
    probe = subprocess.run(["make", "-n", "firmware"], cwd=REPO, capture_output=True, text=True)
    if probe.returncode != 0:
        raise Unavailable("there is no `make firmware` target yet")
    proc = subprocess.run(
        ["make", "-s", "firmware"], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise Unavailable(f"`make firmware` failed: {tail[0][:160]}")
    for node, folder in _deploy_dirs().items():
        files = [p for p in folder.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        on_fat = sum(-(-p.stat().st_size // FAT_CLUSTER) * FAT_CLUSTER for p in files)
        col.put(
            deploy_key(node),
            round(size / 1024, 1),
            files=len(files),
            on_flash_kb=round(on_fat / 1024, 1),
            folder=str(folder.relative_to(REPO)),
        )


def _min_heaps(out: dict[Any, Any]) -> None:
    """The simulator's minimal-heap bisection, both boards and both routes at once."""
    try:
        from iiot_sim import heap
    except Exception as exc:  # the simulator is being changed: any import failure
        out["error"] = f"the simulator has no minimal-heap search ({exc})"
        return
    known = getattr(heap, "MPY_MINIMUM_KIB", {})
    try:
        from iiot_sim.paths import micropython_info

        out["label"] = str(getattr(micropython_info(), "label", ""))
    except Exception:  # noqa: BLE001 (the label is a detail)
        out["label"] = ""

    def one(node: str, route: str) -> None:
        try:
            if route == "frozen":
                lo, hi = FROZEN_BOUNDS_KIB["low_kib"], FROZEN_BOUNDS_KIB["high_kib"]
                found = heap.minimal_heap(node, frozen=True, low_kib=lo, high_kib=hi)
            elif known.get(node):
                lo, hi = known[node] - HEAP_BELOW_KIB, known[node] + HEAP_ABOVE_KIB
                found = heap.minimal_heap(node, low_kib=lo, high_kib=hi)
            else:
                found = heap.minimal_heap(node)
            out[(node, route)] = found
        except Exception as exc:  # a failing search is reported, never fatal
            out[(node, route)] = exc

    threads = [
        threading.Thread(target=one, args=(node, route))
        for node in ("node1", "node2")
        for route in ROUTES
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _put_min_heaps(col: Collector, out: dict[Any, Any]) -> None:
    for route in ROUTES:
        for node in ("node1", "node2"):
            key = min_heap_key(node, route)
            found = out.get((node, route), out.get("error", "not run"))
            if isinstance(found, str):
                col.missing(key, found)
            elif isinstance(found, BaseException):
                col.missing(key, f"the minimal-heap search failed: {found!r}"[:200])
            else:
                col.put(
                    key,
                    float(found.firmware_heap_kib),
                    route=found.route,
                    interpreter=out.get("label", ""),
                    heap_kib_as_run=found.heap_kib,
                    standin_bytes=found.standin,
                    firmware_peak_live=found.firmware_peak_live,
                    trials=len(found.trials),
                )


def _body(profile: Profile, col: Collector) -> None:
    try:
        _deploy_sizes(col)
    except Unavailable as exc:
        for node in ("node1", "node2"):
            col.missing(deploy_key(node), str(exc))
    heaps: dict[str, Any] = {}
    search = threading.Thread(target=_min_heaps, args=(heaps,), name="min-heap")
    if profile.min_heap:
        search.start()  # alongside the delivery runs: a MemoryError does not need quiet
    else:
        heaps["error"] = "not run in the quick profile (a bisection of 25 s link tests)"
    try:
        _deliveries(profile, col)
    finally:
        if profile.min_heap:
            search.join()
    _put_min_heaps(col, heaps)


def figures(profile: Profile) -> list[Figure]:
    return run_part(Collector(SECTION, SPECS), lambda col: _body(profile, col))
