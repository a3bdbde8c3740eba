"""Bridge figures: throughput, ratio to the naive bridge, latency, CPU, memory, recovery.

Every phase gets fresh servers, a fresh pty and a fresh bridge state directory, so nothing
carries over between figures. A phase first sends a few warm-up frames and waits until both
servers hold them: connections are up and the measured window contains only steady work.
"""

from __future__ import annotations

import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import bridge_specs as B
from .bridge_run import (
    BridgeProcess,
    Confirmed,
    Counts,
    counts,
    iiot_bridge_binary,
    readings,
    wait_confirmed,
)
from .figures import Figure
from .load import GAS_BASE, Load, Pty, blast, paced
from .procstat import cpu_seconds, rss_mb
from .profile import Profile
from .servers import DbTap, MqttTap, servers
from .spec import Collector, Unavailable, run_part
from .stats import percentile

WARMUP_FRAMES = 16
STEADY_HZ = 25.0
OUTAGE_HZ = 100.0


def _log(text: str) -> None:
    print(f"bench:   {text}", file=sys.stderr, flush=True)


class Rig:
    """The servers and the two taps, shared by every phase of one run.

    VictoriaMetrics 1.79 makes a brand-new series visible to queries only about 10 s after
    its first sample, so the series are created once (by the first phase's warm-up) and
    every later phase counts from a baseline instead of starting fresh servers.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._servers = servers(workdir)
        self.srv = self._servers.__enter__()
        try:
            self.tap = MqttTap(self.srv.broker.port, workdir, "bench-tap")
            self.db = DbTap(self.srv.influx_url)
            self.tap.start()
            self.tap.wait_subscribed()
        except BaseException:
            self.close()
            raise
        self.frames_used = 0  # frame ids are unique across phases: gas = GAS_BASE + id

    def load(self, frames: int, first_n: int = 1) -> Load:
        load = Load(frames, start=self.frames_used, first_n=first_n)
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
    """A pty and a bridge with a fresh state directory, on the shared rig."""

    def __init__(self, rig: Rig, kind: str, name: str) -> None:
        self.rig = rig
        self.kind = kind
        self.workdir = rig.workdir / name
        self.pty = Pty()
        self.bridge: BridgeProcess | None = None
        self.base = Counts(0, 0)
        self.lines_made = 0  # line numbers n continue across this session's loads

    def load(self, frames: int) -> Load:
        load = self.rig.load(frames, first_n=self.lines_made + 1)
        self.lines_made += frames
        return load

    def start(self, warmup_frames: int = WARMUP_FRAMES) -> BridgeProcess:
        """Start the bridge, send warm-up frames, return once both servers hold them."""
        t0 = time.monotonic()
        self.bridge = BridgeProcess(self.kind, self.pty.port, self.rig.srv, self.workdir)
        self.bridge.wait_port_open(self.pty.port)
        base = counts(self.rig.tap, self.rig.db)
        self.pty.write(b"".join(self.load(warmup_frames).lines))
        wait_confirmed(self.rig.tap, self.rig.db, readings(warmup_frames), 60.0, self.bridge, base)
        self.base = counts(self.rig.tap, self.rig.db)
        _log(f"{self.kind} bridge up and warm in {time.monotonic() - t0:.1f} s")
        return self.bridge

    def confirm(self, frames: int, timeout_s: float) -> Confirmed:
        """Wait until ``frames`` more frames than at warm-up are confirmed by both servers."""
        assert self.bridge is not None
        return wait_confirmed(
            self.rig.tap, self.rig.db, readings(frames), timeout_s, self.bridge, self.base
        )

    def close(self) -> None:
        if self.bridge is not None:
            self.bridge.stop()
        self.pty.close()

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def throughput(rig: Rig, kind: str, frames: int, timeout_s: float) -> tuple[float, dict]:
    """Frames per second from the first line written to every reading confirmed by both."""
    with Phase(rig, kind, f"throughput-{kind}") as ph:
        ph.start()
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
        "readings": readings(frames),
        "elapsed_s": round(elapsed, 3),
        "mqtt_done_s": round((done.mqtt_ns - t0) / 1e9, 3),
        "db_done_s": round((done.db_ns - t0) / 1e9, 3),
        "lines_written_s": round((writer_done[0] - t0) / 1e9, 3) if writer_done else None,
    }
    return frames / elapsed, detail


def _throughputs(profile: Profile, col: Collector, rig: Rig) -> None:
    frames = profile.naive_frames
    naive_fps, naive_detail = throughput(rig, "naive", frames, 30 + frames / 10)
    col.put(B.NAIVE, round(naive_fps, 1), **naive_detail)
    iiot_bridge_binary()  # raises Unavailable while the bridge is not there yet
    frames = profile.throughput_frames
    fps, detail = throughput(rig, "iiot", frames, 30 + frames / 400)
    col.put(B.THROUGHPUT, round(fps, 1), **detail)
    col.put(B.RATIO, round(fps / naive_fps, 1), naive_fps=round(naive_fps, 1))


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


class DbWatcher:
    """Polls the gas_resistance series and notes when each frame's value first shows up.

    It reads as any client would (no forced flush), so the figure includes the time
    the database itself takes to make a write queryable. Alongside, it writes a probe
    point straight to the database and times it the same way: that delay is the
    database's own share, reported in the figure's detail.
    """

    def __init__(self, db: DbTap, since_ms: int, every_s: float = 0.05) -> None:
        self.db = db
        self.since_ms = since_ms
        self.every_s = every_s
        self.seen: dict[int, int] = {}
        self.probe_written: dict[int, int] = {}
        self.probe_seen: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        probe = 0
        while not self._stop.is_set():
            if probe < 10_000:
                probe += 1
                self.probe_written[probe] = time.time_ns()
                self.db.write_probe(probe)
            now = time.time_ns()
            for _, value in self.db.export("gas_resistance_value", self.since_ms):
                self.seen.setdefault(int(value), now)
            for _, value in self.db.export("bench_probe", self.since_ms):
                self.probe_seen.setdefault(int(value), now)
            self._stop.wait(self.every_s)

    def __enter__(self) -> DbWatcher:
        self.probe_written[0] = time.time_ns()
        self.db.write_probe(0)
        self.db.wait_series("bench_probe")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def probe_delays_ms(self) -> list[float]:
        return [
            (self.probe_seen[k] - w) / 1e6
            for k, w in self.probe_written.items()
            if k in self.probe_seen
        ]


def _steady(profile: Profile, col: Collector, rig: Rig, kind: str = "iiot") -> None:
    """25 frames/s: latency to each server, CPU and RSS of the bridge."""
    frames = int(profile.steady_s * STEADY_HZ)
    with Phase(rig, kind, "steady") as ph:
        pid = ph.start().pid
        load = ph.load(frames)
        since_ms = time.time_ns() // 1_000_000 - 5_000
        with DbWatcher(rig.db, since_ms) as watcher, Sampler(lambda: rss_mb(pid), 1.0) as rss:
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            written = paced(ph.pty, load.lines, STEADY_HZ)
            cpu1, t1 = cpu_seconds(pid), time.monotonic()
            ph.confirm(frames, 60.0)
            want = {GAS_BASE + load.start + k for k in range(frames)}
            deadline = time.monotonic() + 30
            while not want <= watcher.seen.keys() and time.monotonic() < deadline:
                time.sleep(0.05)
    mqtt_ms, db_ms = [], []
    for k, wrote in enumerate(written):
        gas = GAS_BASE + load.start + k
        if gas in rig.tap.gas_seen:
            mqtt_ms.append((rig.tap.gas_seen[gas] - wrote) / 1e6)
        if gas in watcher.seen:
            db_ms.append((watcher.seen[gas] - wrote) / 1e6)
    if len(mqtt_ms) != len(written) or len(db_ms) != len(written):
        raise Unavailable(
            f"of {len(written)} frames at 25/s, {len(mqtt_ms)} reached MQTT and "
            f"{len(db_ms)} the database"
        )
    n = {"frames": len(written)}
    col.put(B.MQTT_P50, round(percentile(mqtt_ms, 50), 2), **n)
    col.put(B.MQTT_P99, round(percentile(mqtt_ms, 99), 2), max_ms=round(max(mqtt_ms), 2), **n)
    probe = watcher.probe_delays_ms()
    db_detail = {"p50_ms": round(percentile(db_ms, 50), 1), "poll_interval_ms": 50, **n}
    if probe:
        db_detail["database_own_p99_ms"] = round(percentile(probe, 99), 1)
    col.put(B.DB_P99, round(percentile(db_ms, 99), 1), **db_detail)
    window = t1 - t0
    col.put(B.CPU, round((cpu1 - cpu0) / window * 100, 2), window_s=round(window, 1))
    values = [v for t, v in rss.samples if t0 <= t <= t1] or [v for _, v in rss.samples]
    col.put(B.RSS, round(max(values), 1), min_mb=round(min(values), 1), samples=len(values))


def _outage(
    profile: Profile, col: Collector, rig: Rig, side_task: Callable[[], None] | None = None
) -> None:
    """Broker and database down for ``outage_s`` at 100 frames/s; then the outbox drains.

    ``side_task`` runs on a thread while the servers are down (the firmware benchmark uses the
    ten minutes); the servers come back only once it has finished, so it never overlaps the
    throughput-sensitive drain.
    """
    pre = int(profile.outage_pre_s * OUTAGE_HZ)
    during = int(profile.outage_s * OUTAGE_HZ)
    tap, db = rig.tap, rig.db
    with Phase(rig, "iiot", "outage") as ph:
        pid = ph.start().pid
        paced(ph.pty, ph.load(pre).lines, OUTAGE_HZ)
        ph.confirm(pre, 60.0)
        before = counts(tap, db)
        rig.srv.broker.stop()
        rig.srv.db.stop()
        _log("broker and database stopped")
        side = None
        if side_task is not None:
            side = threading.Thread(target=side_task, name="during-outage")
        if side is not None:
            side.start()
        with Sampler(lambda: rss_mb(pid), 1.0) as rss:
            t_down = time.monotonic()
            acked_before = last_ack(ph.pty)
            paced(ph.pty, ph.load(during).lines, OUTAGE_HZ)
            t_end = time.monotonic()
            # Let the last lines be committed and acknowledged before counting the acks.
            deadline = time.monotonic() + 10
            while last_ack(ph.pty) < ph.lines_made and time.monotonic() < deadline:
                time.sleep(0.05)
            if ph.bridge is not None:
                ph.bridge.check_alive()
        acked = last_ack(ph.pty) - acked_before
        early = t_down + max(2.0, min(10.0, 0.1 * profile.outage_s))
        rss_early, rss_end = rss.at(early), rss.at(t_end)
        col.put(B.RSS_OUTAGE_START, round(rss_early, 1), at_s=round(early - t_down, 1))
        top = max(v for _, v in rss.samples)
        col.put(B.RSS_OUTAGE_END, round(rss_end, 1), max_mb=round(top, 1))
        col.put(B.RSS_OUTAGE_GROWTH, round(rss_end - rss_early, 1), outage_s=profile.outage_s)
        col.put(B.BACKLOG, readings(acked), frames_acked=acked, frames_written=during)
        if side is not None:
            side.join()
        tap.mark()
        t_restart = time.time_ns()
        rig.srv.broker.start()
        rig.srv.db.start()
        _log("broker and database restarted")
        if not tap.alive:
            tap.start()  # same client id and persistent session: nothing queued is lost
        backlog = readings(during)
        first_db = last_db = 0
        deadline = time.monotonic() + 60 + backlog / 1000
        while True:
            got_mqtt = tap.poll() - before.mqtt
            got_db = db.count() - before.db
            now = time.time_ns()
            if not first_db and got_db > 0:
                first_db = now
            if got_db >= backlog:
                last_db = now
            if got_mqtt >= backlog and last_db:
                break
            if ph.bridge:
                ph.bridge.check_alive()
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"after the outage only {got_mqtt} of {backlog} readings reached MQTT "
                    f"and {got_db} the database"
                )
            time.sleep(0.1)
    assert tap.first_ns is not None and tap.last_ns is not None
    start = min(tap.first_ns, first_db)
    end = max(tap.last_ns, last_db)
    col.put(
        B.DRAIN,
        round(backlog / ((end - start) / 1e9)),
        backlog_readings=backlog,
        drain_s=round((end - start) / 1e9, 2),
        mqtt_first_after_restart_s=round((tap.first_ns - t_restart) / 1e9, 2),
        db_first_after_restart_s=round((first_db - t_restart) / 1e9, 2),
        mqtt_readings_per_s=round(backlog / max(1e-9, (tap.last_ns - tap.first_ns) / 1e9)),
        db_readings_per_s=round(backlog / max(1e-9, (last_db - first_db) / 1e9)),
    )


def last_ack(pty: Pty) -> int:
    """The highest ``{"ack": n}`` the bridge has written back so far."""
    found = [int(m) for m in re.findall(rb'"ack"\s*:\s*(\d+)', bytes(pty.acks))]
    return max(found, default=0)


def _timed(name: str, fn: Callable[[], None]) -> None:
    t0 = time.monotonic()
    try:
        fn()
    finally:
        print(f"bench:   bridge {name}: {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)


def _body(profile: Profile, col: Collector, during: Callable[[], None] | None) -> None:
    with tempfile.TemporaryDirectory(prefix="iiot-bench-") as tmp, Rig(Path(tmp)) as rig:
        _timed("throughput", lambda: _throughputs(profile, col, rig))
        _timed("steady 25/s", lambda: _steady(profile, col, rig))
        # Last: it stops and restarts the servers.
        _timed("outage", lambda: _outage(profile, col, rig, during))


def figures(profile: Profile, during_outage: Callable[[], None] | None = None) -> list[Figure]:
    """The bridge figures; ``during_outage`` (if the outage is reached) runs while the
    servers are down."""
    return run_part(Collector(B.SECTION, B.SPECS), lambda col: _body(profile, col, during_outage))
