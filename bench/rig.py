"""The servers, taps and phases every host-side benchmark shares, and one paced window.

One :class:`Rig` (a Mosquitto with a user and password, a VictoriaMetrics, a
``mosquitto_sub`` tap, a database tap) serves a whole part: VictoriaMetrics 1.79 makes a
brand-new series visible to queries only about 10 s after its first sample, so the series
are created once (by the first phase's warm-up) and every later phase counts from a
baseline. A :class:`Phase` is one system under test (iiot-bridge or Node-RED) on a fresh pty
with a fresh state directory, fed either line format.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bridge_run import Confirmed, Counts, SystemProcess, counts, start_system, wait_confirmed
from .load import LegacyLoad, Load, Pty, blast, link_rate, paced, paced_link
from .procstat import cpu_seconds, rss_mb
from .servers import DbTap, MqttTap, servers
from .spec import Unavailable

WARMUP_FRAMES = 16
NODE2_BOOT = 7  # the boot number node2 announces (its frame counter at boot)
LINK = "link"  # a rate: as fast as node2's 115200 baud 8N1 link carries the lines


def log(text: str) -> None:
    print(f"bench:   {text}", file=sys.stderr, flush=True)


class Rig:
    """The servers and the two taps, shared by every phase of one part."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._servers = servers(workdir)
        self.srv = self._servers.__enter__()
        try:
            self.tap = MqttTap(self.srv, workdir, "bench-tap")
            self.db = DbTap(self.srv.influx_url)
            self.tap.start()
            self.tap.wait_subscribed()
        except BaseException:
            self.close()
            raise
        self.frames_used = 0  # frame ids are unique across phases: gas = GAS_BASE + id

    def load(self, frames: int, first_n: int = 1, legacy: bool = False) -> Load:
        cls = LegacyLoad if legacy else Load
        load = cls(frames, start=self.frames_used, first_n=first_n)
        self.frames_used += frames
        return load

    def close(self) -> None:
        if hasattr(self, "tap"):
            self.tap.stop()
        self._servers.__exit__(None, None, None)

    def __enter__(self) -> Rig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Phase:
    """A pty and one system under test with a fresh state directory, on the shared rig."""

    def __init__(
        self, rig: Rig, kind: str, name: str, legacy: bool = False, wrapper: Sequence[str] = ()
    ) -> None:
        self.rig = rig
        self.wrapper = tuple(wrapper)
        self.kind = kind
        self.legacy = legacy
        self.per_frame = LegacyLoad.readings_per_frame if legacy else Load.readings_per_frame
        self.workdir = rig.workdir / name
        # Contract lines come from "node2", which speaks its session protocol; the earlier
        # firmware had none.
        self.pty = Pty(boot=None if legacy else NODE2_BOOT)
        self.system: SystemProcess | None = None
        self.base = Counts(0, 0)
        self.lines_made = 0  # line numbers n continue across this session's loads

    def load(self, frames: int) -> Load:
        load = self.rig.load(frames, first_n=self.lines_made + 1, legacy=self.legacy)
        self.lines_made += frames
        return load

    def start(
        self, warmup_frames: int = WARMUP_FRAMES, timeout_s: float = 90.0, grace_s: float = 0.0
    ) -> SystemProcess:
        """Start the system, send warm-up frames, return once both servers hold them.

        A serial port is flushed just after it is opened, so lines written at once could be
        lost: ``grace_s`` waits after the open (a system under valgrind needs seconds).
        """
        t0 = time.monotonic()
        self.system = start_system(
            self.kind, self.pty.port, self.rig.srv, self.workdir, self.wrapper
        )
        self.system.wait_port_open(self.pty.port, timeout_s)
        time.sleep(grace_s)  # a settling time, not a wait for a condition
        self.pty.announce()  # node2 "boots" now: its boot line, then its lines from n = 1
        base = counts(self.rig.tap, self.rig.db)
        self.pty.write(b"".join(self.load(warmup_frames).lines))
        wait_confirmed(
            self.rig.tap, self.rig.db, warmup_frames * self.per_frame, timeout_s, self.system, base
        )
        self.base = counts(self.rig.tap, self.rig.db)
        log(f"{self.kind} up and warm in {time.monotonic() - t0:.1f} s")
        return self.system

    def rebase(self) -> None:
        """Count what comes next from what both servers hold now."""
        self.base = counts(self.rig.tap, self.rig.db)

    def confirm(self, frames: int, timeout_s: float) -> Confirmed:
        """Wait until ``frames`` more frames than at warm-up are confirmed by both servers."""
        assert self.system is not None
        return wait_confirmed(
            self.rig.tap,
            self.rig.db,
            frames * self.per_frame,
            timeout_s,
            self.system,
            self.base,
        )

    def close(self) -> None:
        if self.system is not None:
            self.system.stop()
        self.pty.close()

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Sampler:
    """Calls ``fn`` every ``every_s`` seconds on a thread and keeps (monotonic, value) pairs."""

    def __init__(self, fn: Callable[[], float], every_s: float) -> None:
        self.fn = fn
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.fn()))
            self._stop.wait(self.every_s)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def at(self, when: float) -> float:
        """The first sample taken at or after monotonic time ``when`` (else the last)."""
        for t, value in self.samples:
            if t >= when:
                return value
        return self.samples[-1][1]


@dataclass
class Window:
    """One paced window of a system: what it cost and how fast its readings arrived."""

    kind: str
    legacy: bool
    rate_hz: float
    frames: int
    wall_s: float
    cpu_s: float
    rss_mb: list[float]
    mqtt_ms: list[float] = field(default_factory=list)  # line written -> subscriber, per frame
    written_ns: list[int] = field(default_factory=list)  # wall-clock write time of each line
    confirmed: bool = True
    note: str = ""

    @property
    def cpu_us_per_frame(self) -> float:
        return self.cpu_s / self.frames * 1e6

    @property
    def cpu_pct(self) -> float:
        return self.cpu_s / self.wall_s * 100


def paced_window(ph: Phase, rate: float | str, seconds: float, gas_base: int) -> Window:
    """Write ``seconds`` of lines at ``rate`` (lines/s, or LINK for a saturated link), then
    wait until every reading is confirmed.

    CPU and RSS are taken from the first line written until the subscriber holds every
    reading of the window (at most 5 s after the last line): the work the window's frames
    caused, for both systems alike, without the database's own ingest delay.
    """
    assert ph.system is not None
    pid = ph.system.pid
    ph.rebase()
    probe = ph.load(1)  # sizes the link rate from this format's line length
    hz = link_rate(probe.lines) if rate == LINK else float(rate)
    ph.pty.write(probe.lines[0])
    frames = max(1, int(seconds * hz))
    load = ph.load(frames)
    want = ph.base.mqtt + (frames + 1) * ph.per_frame
    with Sampler(lambda: rss_mb(pid), 1.0) as rss:
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        written = paced_link(ph.pty, load.lines) if rate == LINK else paced(ph.pty, load.lines, hz)
        deadline = time.monotonic() + 5.0
        while ph.rig.tap.poll() < want and time.monotonic() < deadline:
            time.sleep(0.01)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
    rss_values = [v for _, v in rss.samples]
    window = Window(ph.kind, ph.legacy, hz, frames, t1 - t0, cpu1 - cpu0, rss_values)
    window.written_ns = written
    try:
        ph.confirm(frames + 1, 60.0 + frames / 50)
    except Unavailable as exc:  # reported: the window's cost still stands
        window.confirmed = False
        window.note = str(exc)
    ph.rig.tap.poll()
    seen = ph.rig.tap.gas_seen
    for k, wrote in enumerate(written):
        gas = gas_base + load.start + k
        if gas in seen:
            window.mqtt_ms.append((seen[gas] - wrote) / 1e6)
    return window


def blast_throughput(ph: Phase, frames: int, timeout_s: float) -> tuple[float, dict[str, Any]]:
    """Frames per second from the first line written (as fast as the pty takes them) until
    every reading is confirmed by both servers."""
    ph.rebase()
    body = ph.load(frames).lines
    writer_done: list[int] = []
    t0 = time.time_ns()
    thread = threading.Thread(
        target=lambda: writer_done.append(blast(ph.pty, body)[1]), daemon=True
    )
    thread.start()
    done = ph.confirm(frames, timeout_s)
    thread.join(10)
    elapsed = (done.both_ns - t0) / 1e9
    detail = {
        "frames": frames,
        "readings": frames * ph.per_frame,
        "elapsed_s": round(elapsed, 3),
        "mqtt_done_s": round((done.mqtt_ns - t0) / 1e9, 3),
        "db_done_s": round((done.db_ns - t0) / 1e9, 3),
        "lines_written_s": round((writer_done[0] - t0) / 1e9, 3) if writer_done else None,
    }
    return frames / elapsed, detail
