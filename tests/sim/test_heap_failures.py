"""Memory failures are loud and recoverable (issue 12). node1, as `make firmware` deploys
it, runs the link test (iiot_sim.heap) and is made short of memory twice by a ballast in
its process, which leaves the firmware less free heap than it needs:

1. at boot, right before its radio and display drivers are loaded: 3 KiB free for 2.5 s.
   The radio init fails and is retried with a growing pause, the display falls back and
   is tried again 10 s later; both come back.
2. in steady running, from 20 s to 26 s: 1 KiB free. The board keeps running (no reset),
   says so on its console about once a second, and nothing it queued is lost.

Each MemoryError is counted in the STATS frames (memory_errors) the host decodes from
node2's serial lines.

The ballast is test instrumentation in front of node1's main.py in a copy of the checkout
(the firmware's files are the repository's): it holds the heap in small pieces, released
by a timer (a control message could not be read while the heap is short). Shortage 1 hooks the
stand-in `machine.Pin.irq` (the firmware's button, set up just before the radio)."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

import pytest

import iiot_codec
from iiot_sim.heap import GENEROUS_KIB, KEYS, LinkRun, LinkTest, memory_lines, run_link_test
from iiot_sim.runner import Simulation

REPO = Path(__file__).resolve().parent.parent.parent
BOOT_FREE = 3072  # bytes left at boot, before the drivers load
BOOT_SHORT_MS = 2500
SHORT_FREE = 1024  # bytes left in steady running
SHORT_S = (20.0, 26.0)
TEST = LinkTest(duration_s=38.0, interval_ms=800)  # STATS get their turn between rounds

BALLAST = f"""\
# [test instrumentation] a ballast in this board's heap (tests/sim/test_heap_failures.py):
# at power-up when the button is set up, and on {{"op": "ballast", "free": N, "ms": T}}:
# the firmware keeps N bytes free for T ms.
import machine  # first: the stand-ins measure their own share when it is imported
import gc
import time
from _simhw import hub, mcu
_held = [None, 0]
def _ballast(free, ms):
    gc.collect()
    chain = None
    try:
        while gc.mem_free() > free:
            for _ in range((gc.mem_free() - free) // 160 + 1):
                chain = (chain, bytearray(40))
    except MemoryError:
        pass
    _held[0] = chain
    _held[1] = time.ticks_add(time.ticks_ms(), ms)
    print('@{{"ev":"ballast"}}')
def _release():
    if _held[0] is not None and time.ticks_diff(time.ticks_ms(), _held[1]) >= 0:
        _held[0] = None
        print('@{{"ev":"ballast_released"}}')
def _irq(self, *args, **kw):
    _pin_irq(self, *args, **kw)
    if self.id == "PC13" and machine.reset_cause() == machine.PWRON_RESET:
        _ballast({BOOT_FREE}, {BOOT_SHORT_MS})
_pin_irq = mcu.Pin.irq
mcu.Pin.irq = _irq
hub.handlers["ballast"] = lambda msg: _ballast(msg["free"], msg["ms"])
hub.tickers.append(_release)
"""


def instrumented_repo(tmp: Path) -> Path:
    """The checkout as the simulator reads it, node1's main.py with the ballast in front."""
    repo = tmp / "repo"
    (repo / "node1").mkdir(parents=True)
    for name in ("node2", "shared", "tools"):
        (repo / name).symlink_to(REPO / name)
    for src in (REPO / "node1").iterdir():
        if src.is_file() and src.name != "main.py":
            (repo / "node1" / src.name).symlink_to(src)
    (repo / "node1" / "main.py").write_text(BALLAST + (REPO / "node1" / "main.py").read_text())
    return repo


class DisplayWatch:
    """When node1's display model got a whole new frame (its dump file is replaced)."""

    def __init__(self, sim: Simulation) -> None:
        self.path = sim.state_dir(1) / "display_3c.bin"
        self.sim = sim
        self.updates: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = None
        while not self._stop.wait(0.1):
            try:
                stamp = self.path.stat().st_mtime_ns
            except OSError:
                continue
            if stamp != last:
                last = stamp
                self.updates.append(self.sim.elapsed())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def shortage(tmp_path_factory: pytest.TempPathFactory) -> tuple[LinkRun, list[float], int]:
    repo = instrumented_repo(tmp_path_factory.mktemp("ballast"))
    heap = GENEROUS_KIB
    watch: list[DisplayWatch] = []

    def during(sim: Simulation) -> None:
        watch.append(DisplayWatch(sim))
        time.sleep(max(0.0, SHORT_S[0] - sim.elapsed()))
        ms = int((SHORT_S[1] - SHORT_S[0]) * 1000)
        sim.hub.control(1, {"op": "ballast", "free": SHORT_FREE, "ms": ms})

    try:
        run = run_link_test({"node1": heap}, False, TEST, during, repo)
    finally:
        for w in watch:
            w.stop()
    return run, watch[0].updates if watch else [], heap


def node1_stats(run: LinkRun) -> list[dict[str, float]]:
    """node1's STATS frames as the host read them (MIC checked), in order."""
    out = []
    for text in run.lines:
        line = iiot_codec.decode_line(text)
        if line is None:
            continue
        if iiot_codec.peek(line.frame) != ("stats", 1):
            continue
        out.append(iiot_codec.decode(line.frame, key=bytes.fromhex(KEYS[1])).readings)
    return out


def boot_t(run: LinkRun) -> float:
    return float(run.report["nodes"]["1"]["boots"][0]["t"])


def stats_between(run: LinkRun, t0: float, t1: float) -> list[dict[str, float]]:
    """node1's STATS sent between t0 and t1 (simulation clock), by their uptime."""
    boot = boot_t(run)
    return [s for s in node1_stats(run) if t0 <= boot + s["uptime"] < t1]


def test_the_board_keeps_running_and_says_so(shortage) -> None:
    run, _, heap = shortage
    trial = run.trials["node1"]
    print(f"\nnode1 at {heap}K: {trial}")
    console = run.consoles[1]
    assert console.count('"ev":"ballast"') == 2 and console.count('"ev":"ballast_released"') == 2
    assert trial.boots == 1  # never reset: the watchdog was fed all along
    lines = memory_lines(console)
    assert any("radio not found (MemoryError" in x for x in lines)
    assert [x for x in lines if "out of memory" in x], "the shortage in steady running is silent"
    # loud, not a flood: about a line a second while memory is short
    assert len(lines) <= 2 * (SHORT_S[1] - SHORT_S[0]) + 3, f"{len(lines)} lines"
    # every MemoryError counted, the ones the radio (here every radio error is one), the
    # display and the sensors survived included
    after_boot = stats_between(run, 0, SHORT_S[0])
    assert after_boot, "no STATS between the two shortages"
    assert after_boot[0]["memory_errors"] >= after_boot[0]["radio_errors"] + 1, after_boot
    after = stats_between(run, SHORT_S[1], run.report["duration_s"])
    assert after and after[-1]["memory_errors"] > after_boot[-1]["memory_errors"], after


def test_a_failed_radio_init_is_retried_with_backoff(shortage) -> None:
    run, _, _ = shortage
    after_boot = stats_between(run, 0, SHORT_S[0])
    assert after_boot, "the radio did not come back after the boot shortage"
    # tried again after 1, 2, 4, ... s while the heap was short, not at every round
    errors = after_boot[0]["radio_errors"]
    assert 1 <= errors <= 2 + math.log2(BOOT_SHORT_MS / 1000), errors
    sent = [r["t"] for r in run.report["nodes"]["1"]["readings"] if r["tx"]]
    assert min(sent) < SHORT_S[0] and max(sent) > SHORT_S[1]


def test_the_display_falls_back_and_is_retried_10_s_later(shortage) -> None:
    run, updates, _ = shortage
    boot = boot_t(run)
    assert updates, "the display never showed anything"
    # its driver could not be loaded at boot: tried again 10 s later, not at every
    # update (once a second) after the memory came back
    assert updates[0] - boot >= 9.5, updates[:3]
    assert updates[0] - boot <= BOOT_SHORT_MS / 1000 + 11, updates[:3]
    assert max(updates) > SHORT_S[1], "the display did not go on after the second shortage"


def test_nothing_queued_is_lost(shortage) -> None:
    run, _, _ = shortage
    trial = run.trials["node1"]
    assert trial.readings >= 40
    assert not trial.dropped and not trial.missing and not trial.duplicated, trial
