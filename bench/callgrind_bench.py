"""Instructions per frame under valgrind's callgrind, for both systems (issue 17, 1a).

``perf stat`` is not available on these machines (no hardware counters in the VM), so
the stable figure comes from valgrind: each system starts under ``valgrind
--tool=callgrind --instr-atstart=no`` (uninstrumented, so start-up is quick), gets the
usual warm-up, then ``callgrind_control -i on`` counts every instruction of every thread
while a fixed replay of earlier-firmware lines is written at 25 lines/s, until the MQTT
subscriber holds every reading of it, and for 1 s more (the database write goes out within
it); ``-i off`` and a dump end the count, and both servers must then hold every reading
(``all_confirmed``). The figure is the counted instructions divided by the frames
replayed: the same code paths as the CPU figure at 25 lines/s, idle timer work included,
independent of how busy the machine is.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from . import peer_specs as P
from .load import paced
from .profile import Profile
from .rig import Phase, Rig, log
from .spec import Collector, Unavailable

RATE_HZ = 25.0
TAIL_S = 1.0  # counted after the subscriber has every reading
GRACE_S = 5.0  # after the port is open: under valgrind the open-and-flush takes a while
_TOTALS = re.compile(rb"^(?:summary|totals):\s*(\d+)", re.M)


def _control(*args: str) -> None:
    proc = subprocess.run(["callgrind_control", *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise Unavailable(f"callgrind_control {' '.join(args)} failed: {proc.stderr.strip()[:160]}")


def _wait_mqtt(ph: Phase, frames: int, timeout_s: float = 120.0) -> None:
    """Until the subscriber holds every reading of the replay (the system did the work)."""
    want = ph.base.mqtt + frames * ph.per_frame
    deadline = time.monotonic() + timeout_s
    while ph.rig.tap.poll() < want and time.monotonic() < deadline:
        time.sleep(0.05)


def _instructions(out_dir: Path) -> int:
    total = 0
    for path in out_dir.glob("callgrind.out*"):
        for match in _TOTALS.finditer(path.read_bytes()):
            total += int(match.group(1))
    return total


def _measure(profile: Profile, rig: Rig, kind: str, workdir: Path) -> tuple[float, dict[str, Any]]:
    out_dir = workdir / f"callgrind-{kind}"
    out_dir.mkdir(parents=True)
    wrapper = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_dir}/callgrind.out.%p",
        "--trace-children=no",
    ]
    with Phase(rig, kind, f"callgrind-{kind}", legacy=True, wrapper=wrapper) as ph:
        system = ph.start(timeout_s=300.0, grace_s=GRACE_S)
        pid = str(system.pid)
        ph.rebase()
        frames = max(1, round(profile.callgrind_s * RATE_HZ))
        load = ph.load(frames)
        # A fixed window: the replay, then a fixed tail for the last lines to go out, so
        # every run counts the same idle work (timers, keep-alives) around the frames.
        t0 = time.monotonic()
        _control("-i", "on", pid)
        paced(ph.pty, load.lines, RATE_HZ)
        _wait_mqtt(ph, frames)
        time.sleep(TAIL_S)  # the database write goes out within this (batch flush 200 ms)
        _control("-i", "off", pid)
        counted_s = time.monotonic() - t0
        _control("-d", pid)
        try:
            ph.confirm(frames, 60.0)
            confirmed = True
        except Unavailable:
            confirmed = False
    time.sleep(0.5)
    instructions = _instructions(out_dir)
    if not instructions:
        raise Unavailable(f"callgrind wrote no totals for {kind}")
    detail = {
        "frames": frames,
        "instructions": instructions,
        "counted_s": round(counted_s, 1),
        "all_confirmed": confirmed,
        "tool": "valgrind --tool=callgrind, all threads, counting from the replay's start "
        "to 1 s after its last reading reached MQTT",
    }
    return instructions / frames, detail


def run(profile: Profile, col: Collector, rig: Rig) -> None:
    """Fill the instruction-count row, using ``rig``'s servers (one system at a time)."""
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        reason = "valgrind is not installed (Debian package valgrind)"
        col.missing(P.INSTR, reason)
        col.put_peer(P.INSTR, None, reason)
        return
    with tempfile.TemporaryDirectory(prefix="iiot-bench-cg-") as tmp:
        for kind in ("iiot", "node-red"):
            try:
                per_frame, detail = _measure(profile, rig, kind, Path(tmp))
            except Exception as exc:  # noqa: BLE001 (runs on a thread: report, never lose it)
                log(f"callgrind {kind}: {exc}")
                if kind == "iiot":
                    col.missing(P.INSTR, str(exc))
                else:
                    col.put_peer(P.INSTR, None, str(exc))
                continue
            log(f"callgrind {kind}: {per_frame:,.0f} instructions per frame")
            if kind == "iiot":
                col.put(P.INSTR, round(per_frame), **detail)
            else:
                col.put_peer(P.INSTR, round(per_frame))
                if P.INSTR in col.values:
                    col.values[P.INSTR][1]["node_red"] = detail
