"""What each system loses across the same faults, at 25 lines/s (issue 17, section 1e).

Three systems run at once, each on its own Mosquitto and VictoriaMetrics (same binaries,
same configuration), so every fault hits all of them at the same moment:

* ``iiot``: iiot-bridge fed our firmware's contract lines by a writer that behaves as
  node2 does (:class:`Node2Writer`): a ring of ``ring_bytes`` that keeps every line until
  the bridge acknowledges it (``{"ack": n}``), a stream of at most 16 unacknowledged lines,
  and a restart of the stream after ``resend_ms`` of silence, backing off to 60 s;
* ``iiot-legacy``: iiot-bridge fed the earlier firmware's lines (no acknowledgement);
* ``node-red``: the Node-RED flow fed the same earlier lines.

The faults, in order: every broker SIGKILLed and restarted; every database stopped and
started again after ``fault_db_down_s``; every system SIGKILLed and started again. A
reading is lost when its frame never reaches the MQTT subscriber or the database (the
frame's unique gas-resistance id tells which); it is charged to the fault whose window its
line was written in.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import peer_specs as P
from .bridge_run import start_system
from .load import GAS_BASE
from .node2_writer import RATE_HZ, Node2Writer
from .profile import Profile
from .rig import Phase, Rig, log
from .spec import Collector, Unavailable

SYSTEMS = (("iiot", False), ("iiot-legacy", True), ("node-red", True))


@dataclass
class Subject:
    name: str
    legacy: bool
    rig: Rig
    phase: Phase
    writer: Node2Writer | None = None
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)


def _restart_system(s: Subject) -> None:
    ph = s.phase
    kind = "node-red" if s.name == "node-red" else "iiot"
    ph.system = start_system(kind, ph.pty.port, s.rig.srv, ph.workdir)


def _each(subjects: list[Subject], what: str) -> None:
    for s in subjects:
        srv = s.rig.srv
        if what == "broker_kill":
            srv.broker.kill()
        elif what == "broker_start":
            srv.broker.start()
            if not s.rig.tap.alive:
                s.rig.tap.start()  # same client id, persistent session
        elif what == "db_stop":
            srv.db.stop()
        elif what == "db_start":
            srv.db.start()
        elif what == "process_kill":
            assert s.phase.system is not None
            s.phase.system.kill()
        elif what == "process_start":
            _restart_system(s)


def _schedule(profile: Profile, subjects: list[Subject]) -> dict[str, tuple[float, float]]:
    """Run the faults; return each fault's window (monotonic start, end)."""
    windows: dict[str, tuple[float, float]] = {}
    gap = profile.fault_gap_s
    time.sleep(gap)
    steps = (
        ("broker", "broker_kill", "broker_start", profile.fault_broker_down_s),
        ("database", "db_stop", "db_start", profile.fault_db_down_s),
        ("process", "process_kill", "process_start", profile.fault_process_down_s),
    )
    for name, down, up, down_s in steps:
        t0 = time.monotonic()
        _each(subjects, down)
        log(f"faults: {name} down for {down_s:g} s")
        time.sleep(down_s)
        _each(subjects, up)
        time.sleep(gap)
        windows[name] = (t0, time.monotonic())
    return windows


def _wait_settled(subjects: list[Subject], timeout_s: float, quiet_s: float) -> None:
    """Until every system's servers hold every frame, or nothing changes for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    last: tuple[int, ...] = ()
    changed = time.monotonic()
    while time.monotonic() < deadline:
        state = []
        complete = True
        for s in subjects:
            assert s.writer is not None
            want = len(s.writer.written)
            s.rig.tap.poll()
            got_mqtt = sum(1 for k in range(want) if _gas(s, k) in s.rig.tap.gas_seen)
            in_db = s.rig.db.gas_counts(0)
            got_db = sum(1 for k in range(want) if _gas(s, k) in in_db)
            state += [got_mqtt, got_db]
            complete = complete and got_mqtt >= want and got_db >= want
        if complete:
            return
        if tuple(state) != last:
            last, changed = tuple(state), time.monotonic()
        elif time.monotonic() - changed > quiet_s:
            return
        time.sleep(1.0)


def _gas(s: Subject, k: int) -> int:
    assert s.writer is not None
    return GAS_BASE + s.writer.load.start + k


def _losses(s: Subject, windows: dict[str, tuple[float, float]]) -> dict[str, dict[str, Any]]:
    assert s.writer is not None
    s.rig.tap.poll()
    mqtt = s.rig.tap.gas_count
    db = s.rig.db.gas_counts(0)
    per_frame = s.phase.per_frame
    mono_minus_wall = time.monotonic() - time.time()
    out: dict[str, dict[str, Any]] = {}
    for fault, (t0, t1) in windows.items():
        frames = lost_mqtt = lost_db = lost_any = dup_mqtt = dup_db = 0
        for k, wrote_ns in enumerate(s.writer.written):
            t = wrote_ns / 1e9 + mono_minus_wall
            if not t0 <= t < t1:
                continue
            gas = _gas(s, k)
            frames += 1
            in_mqtt, in_db = mqtt.get(gas, 0), db.get(gas, 0)
            lost_mqtt += in_mqtt == 0
            lost_db += in_db == 0
            lost_any += in_mqtt == 0 or in_db == 0
            dup_mqtt += max(0, in_mqtt - 1)
            dup_db += max(0, in_db - 1)
        out[fault] = {
            "frames_written": frames,
            "readings_written": frames * per_frame,
            "readings_lost": lost_any * per_frame,
            "frames_missing_mqtt": lost_mqtt,
            "frames_missing_db": lost_db,
            "duplicate_frames_mqtt": dup_mqtt,
            "duplicate_frames_db": dup_db,
            "duplicate_readings": (dup_mqtt + dup_db) * per_frame,
            "window_s": round(t1 - t0, 1),
        }
    return out


def run(profile: Profile, col: Collector, side: threading.Thread | None = None) -> None:
    """Fill the peer section's loss figures (a harness problem marks them unavailable).

    ``side`` is started when the faults begin and joined before the servers' counts are
    read; it must not need the machine's timing (it shares the cores with five servers).
    """
    try:
        result = _run(profile, side)
    except Unavailable as exc:
        for key in [*(P.lost_key(f) for f in P.FAULTS), P.DUPLICATES]:
            col.missing(key, str(exc))
            col.put_peer(key, None, str(exc))
        col.missing(P.LOST_LEGACY, str(exc))
        col.put_peer(P.LOST_LEGACY, None, str(exc))
        return
    for fault in P.FAULTS:
        key = P.lost_key(fault)
        ours = result.get("iiot", {}).get(fault)
        peer = result.get("node-red", {}).get(fault)
        legacy = result.get("iiot-legacy", {}).get(fault)
        if ours is None:
            col.missing(key, result.get("iiot", {}).get("error", "not measured"))
        else:
            col.put(
                key,
                ours["readings_lost"],
                iiot=ours,
                iiot_legacy=legacy,
                node_red=peer,
                writers=result.get("writers", {}),
            )
        col.put_peer(
            key,
            None if peer is None else peer["readings_lost"],
            result.get("node-red", {}).get("error", "not measured"),
        )
    dups: dict[str, int | None] = {}
    for name in ("iiot", "node-red"):
        faults = result.get(name, {})
        if all(f in faults for f in P.FAULTS):
            dups[name] = sum(faults[f]["duplicate_readings"] for f in P.FAULTS)
        else:
            dups[name] = None
    if dups["iiot"] is None:
        col.missing(P.DUPLICATES, result.get("iiot", {}).get("error", "not measured"))
    else:
        col.put(P.DUPLICATES, dups["iiot"])
    col.put_peer(P.DUPLICATES, dups["node-red"], result.get("node-red", {}).get("error", ""))
    for name, put in (("iiot-legacy", col.put), ("node-red", None)):
        faults = result.get(name, {})
        total = sum(faults[f]["readings_lost"] for f in P.FAULTS if f in faults)
        complete = all(f in faults for f in P.FAULTS)
        if put is not None:
            if complete:
                col.put(P.LOST_LEGACY, total, writer=result.get("writers", {}).get(name))
            else:
                col.missing(P.LOST_LEGACY, faults.get("error", "not measured"))
        else:
            col.put_peer(P.LOST_LEGACY, total if complete else None, faults.get("error", ""))


def _run(profile: Profile, side: threading.Thread | None) -> dict[str, Any]:
    result: dict[str, Any] = {"writers": {}}
    with tempfile.TemporaryDirectory(prefix="iiot-bench-faults-") as tmp:
        subjects: list[Subject] = []
        try:
            # Each system's servers and warm-up at once: a fresh VictoriaMetrics takes
            # about 10 s to make a new series queryable.
            started: dict[str, Subject | str] = {}

            def bring_up(name: str, legacy: bool) -> None:
                try:
                    rig = Rig(Path(tmp) / name)
                except Unavailable as exc:
                    started[name] = str(exc)
                    return
                kind = "node-red" if name == "node-red" else "iiot"
                ph = Phase(rig, kind, "system", legacy=legacy)
                try:
                    ph.start()
                except Unavailable as exc:
                    started[name] = str(exc)
                    ph.close()
                    rig.close()
                    return
                started[name] = Subject(name, legacy, rig, ph)

            threads = [threading.Thread(target=bring_up, args=sys_) for sys_ in SYSTEMS]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for name, _ in SYSTEMS:
                got = started.get(name, "did not start")
                if isinstance(got, Subject):
                    subjects.append(got)
                else:
                    result[name] = {"error": got}
            if not subjects:
                raise Unavailable(result.get("iiot", {}).get("error", "no system started"))
            total_s = 4 * profile.fault_gap_s + profile.fault_broker_down_s
            total_s += profile.fault_db_down_s + profile.fault_process_down_s + 5
            stop, halt = threading.Event(), threading.Event()
            for s in subjects:
                load = s.phase.load(int(total_s * RATE_HZ))
                s.writer = Node2Writer(s.phase, load, not s.legacy, stop, halt)
                s.writer.start()
            if side is not None:
                side.start()
            windows = _schedule(profile, subjects)
            stop.set()
            _wait_settled(subjects, profile.fault_settle_s, profile.fault_quiet_s)
            halt.set()
            if side is not None:
                side.join()
            for s in subjects:
                assert s.writer is not None
                s.writer.join(30)
                if s.writer.error is not None:
                    raise Unavailable(f"{s.name} writer failed: {s.writer.error!r}")
            for s in subjects:
                assert s.writer is not None
                result[s.name] = _losses(s, windows)
                result["writers"][s.name] = {
                    "lines": len(s.writer.written),
                    "writes": s.writer.writes if s.writer.ring else len(s.writer.written),
                    "resent": s.writer.resent,
                    "held_for_room": s.writer.held,
                    "most_held": s.writer.most_held,
                    "ring_bytes": s.writer.ring_bytes if s.writer.ring else None,
                }
                log(f"faults: {s.name}: {result[s.name]}")
        finally:
            for s in subjects:
                s.phase.close()
                s.rig.close()
    return result
