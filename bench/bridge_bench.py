"""Bridge figures on our firmware's contract lines: CPU with node2's link saturated (the
headline), CPU, memory and latency at 25 frames/s, the unpaced maximum, and an outage.

All phases share one rig (``rig.Rig``); each gets a fresh pty and state directory. A phase
first sends warm-up frames and waits until both servers hold them, so the measured window
holds only steady work.
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
from .bridge_run import counts
from .figures import Figure
from .load import GAS_BASE, Pty, paced
from .procstat import rss_mb
from .profile import Profile
from .rig import LINK, Phase, Rig, Sampler, blast_throughput, log, paced_window
from .servers import DbTap
from .spec import Collector, Unavailable, run_part
from .stats import percentile

OUTAGE_HZ = 100.0


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


def _windows(profile: Profile, col: Collector, rig: Rig) -> None:
    """25 frames/s (latency to each server, CPU, RSS), then the link saturated (CPU)."""
    with Phase(rig, "iiot", "steady") as ph:
        ph.start()
        since_ms = time.time_ns() // 1_000_000 - 5_000
        with DbWatcher(rig.db, since_ms) as watcher:
            w = paced_window(ph, 25.0, profile.steady_s, GAS_BASE)
            deadline = time.monotonic() + 30
            start = rig.frames_used - w.frames
            want = {GAS_BASE + start + k for k in range(w.frames)}
            while not want <= watcher.seen.keys() and time.monotonic() < deadline:
                time.sleep(0.05)
        if not w.confirmed or len(w.mqtt_ms) != w.frames:
            raise Unavailable(f"at 25 frames/s: {w.note or 'readings missing at MQTT'}")
        n = {"frames": w.frames}
        col.put(B.MQTT_P50, round(percentile(w.mqtt_ms, 50), 2), **n)
        col.put(
            B.MQTT_P99,
            round(percentile(w.mqtt_ms, 99), 2),
            max_ms=round(max(w.mqtt_ms), 2),
            samples_ms=sorted(round(v, 2) for v in w.mqtt_ms),
            **n,
        )
        written = w.written_ns
        db_ms = [
            (watcher.seen[GAS_BASE + start + k] - t) / 1e6
            for k, t in enumerate(written)
            if GAS_BASE + start + k in watcher.seen
        ]
        if len(db_ms) == len(written):
            detail = {"p50_ms": round(percentile(db_ms, 50), 1), "poll_interval_ms": 50, **n}
            probe = watcher.probe_delays_ms()
            if probe:
                detail["database_own_p99_ms"] = round(percentile(probe, 99), 1)
            col.put(B.DB_P99, round(percentile(db_ms, 99), 1), **detail)
        else:
            col.missing(B.DB_P99, f"{len(db_ms)} of {len(written)} frames seen in the database")
        window = {"window_s": round(w.wall_s, 1), "frames": w.frames}
        col.put(B.CPU, round(w.cpu_pct, 2), **window)
        col.put(B.CPU_US, round(w.cpu_us_per_frame, 1), **window)
        col.put(B.RSS, round(max(w.rss_mb), 1), min_mb=round(min(w.rss_mb), 1))
        link = paced_window(ph, LINK, profile.steady_s, GAS_BASE)
        detail = {
            "rate_lines_s": round(link.rate_hz, 1),
            "window_s": round(link.wall_s, 1),
            "frames": link.frames,
            "all_confirmed": link.confirmed,
            "baud": 115200,
        }
        col.put(B.CPU_LINK, round(link.cpu_pct, 2), **detail)
        col.put(B.CPU_US_LINK, round(link.cpu_us_per_frame, 1), **detail)
        log(f"iiot at the saturated link ({link.rate_hz:.0f} lines/s): {link.cpu_pct:.2f} %")
        fps, detail = blast_throughput(
            ph, profile.throughput_frames, 30 + profile.throughput_frames / 400
        )
        col.put(B.THROUGHPUT, round(fps, 1), **detail)


def _outage(profile: Profile, col: Collector, rig: Rig) -> None:
    """Broker and database down for ``outage_s`` at 100 frames/s; then the outbox drains."""
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
        log("broker and database stopped")
        with Sampler(lambda: rss_mb(pid), 1.0) as rss:
            t_down = time.monotonic()
            acked_before = last_ack(ph.pty)
            paced(ph.pty, ph.load(during).lines, OUTAGE_HZ)
            t_end = time.monotonic()
            # Let the last lines be committed and acknowledged before counting the acks.
            deadline = time.monotonic() + 10
            while last_ack(ph.pty) < ph.lines_made and time.monotonic() < deadline:
                time.sleep(0.05)
            if ph.system is not None:
                ph.system.check_alive()
        acked = last_ack(ph.pty) - acked_before
        early = t_down + max(2.0, min(10.0, 0.1 * profile.outage_s))
        rss_early, rss_end = rss.at(early), rss.at(t_end)
        col.put(B.RSS_OUTAGE_START, round(rss_early, 1), at_s=round(early - t_down, 1))
        top = max(v for _, v in rss.samples)
        col.put(B.RSS_OUTAGE_END, round(rss_end, 1), max_mb=round(top, 1))
        col.put(B.RSS_OUTAGE_GROWTH, round(rss_end - rss_early, 1), outage_s=profile.outage_s)
        col.put(B.BACKLOG, acked * ph.per_frame, frames_acked=acked, frames_written=during)
        tap.mark()
        t_restart = time.time_ns()
        rig.srv.broker.start()
        rig.srv.db.start()
        log("broker and database restarted")
        if not tap.alive:
            tap.start()  # same client id and persistent session: nothing queued is lost
        backlog = during * ph.per_frame
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
            if ph.system:
                ph.system.check_alive()
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


def _body(profile: Profile, col: Collector) -> None:
    with tempfile.TemporaryDirectory(prefix="iiot-bench-") as tmp, Rig(Path(tmp)) as rig:
        _timed("paced windows", lambda: _windows(profile, col, rig))
        # Last: it stops and restarts the servers.
        _timed("outage", lambda: _outage(profile, col, rig))


def figures(profile: Profile) -> list[Figure]:
    return run_part(Collector(B.SECTION, B.SPECS), lambda col: _body(profile, col))
