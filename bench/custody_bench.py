"""Custody while the host is away (issue 11): the longest absence with nothing lost at the
default settings, the drain after it, and the airtime per reading of the drain.

An hour of host absence is too long to simulate in real time, so every time setting of the
boards is divided by the same factor ``k`` (report interval, STATS interval, hold retry,
node2's resend pause; ``custody_analysis.scaled_settings``) while node2's ring, node1's
queue and ``batch_max`` stay at their defaults (the quick run divides those too, by
``custody_buffer_div``, and says so). Everything that fills the buffers then happens ``k``
times faster, so an absence measured in the run, times ``k``, is the absence at the
defaults. The radio and the serial link are not scaled: the drain is reported as measured.

Two runs at once, each node1 (with a MIC key) and node2 running their firmware in the
simulator, a host (``iiot_sim.host.AckingHost``) on node2's pty that goes away (closes the
port) after a warm-up and comes back (a new host on the same port):

* **limit**: the host comes back when node1 holds ``queue_len - margin`` readings, the margin
  being the readings node1 takes while it may still sit out its hold after the host is
  back (twice ``hold_retry_s`` plus its jitter, and one poll). It must lose nothing of
  node1's: that absence is the longest one with nothing lost. The drain and its airtime
  come from this run.
* **over**: the host comes back a few readings after node1 dropped its first one: the
  absence at which the first reading is lost, and a check that only the readings node1
  dropped (and counted) are lost.

The two bracket the limit; the expected coverage (ring + queue) comes from the settings and
the frame sizes each run sent before the host left.
"""

from __future__ import annotations

import math
import tempfile
import threading
from pathlib import Path
from typing import Any

from . import custody_analysis as ca
from .custody_specs import HOLD_JITTER, K_FIRST_LOSS, K_OVER_LOST, SECTION, put_figures, specs
from .figures import Figure
from .profile import Profile
from .rig import log
from .spec import Collector, Unavailable, run_part

KEY = "000102030405060708090a0b0c0d0e0f"  # node1's MIC key (keys on, as deployed)
POLL_S = 0.25
OVER_READINGS = 3  # readings the over run lets node1 drop past its first loss
DRAIN_CAP_S = 120.0  # the longest wait for the backlog after the host is back


def _sim() -> Any:
    try:
        from iiot_sim import airtime, config, host, runner
    except Exception as exc:  # the simulator is being changed: any import failure
        raise Unavailable(f"the simulator does not import: {exc!r}") from exc
    return airtime, config, host, runner


def _host_class() -> Any:
    """``AckingHost``: coming back to a node2 that kept running, the first line after
    node2's session answer starts its gap-free run (node2 restarts at its oldest line not
    acknowledged yet)."""
    try:
        from iiot_sim.host import AckingHost
    except Exception as exc:  # the simulator is being changed: any import failure
        raise Unavailable(f"the simulator does not import: {exc!r}") from exc
    return AckingHost


def airtime_fn(radio: Any) -> Any:
    """Time on air (ms) of a frame of n bytes at the boards' radio settings, with the
    simulator's formula."""
    airtime, _, _, _ = _sim()
    bw_hz = airtime.BANDWIDTHS_HZ[radio.bw]

    def ms(n: int) -> float:
        us = airtime.time_on_air_us(
            n,
            sf=radio.sf,
            bw_hz=bw_hz,
            coding_rate=radio.coding_rate,
            preamble_len=radio.preamble_len,
            crc=radio.crc_en,
        )
        return float(us) / 1000

    return ms


def margin_readings(s: ca.Scaled) -> int:
    """Readings node1 may take after the host is back before its first batch is accepted:
    up to two holds with jitter (one may start just before the ring has room), one poll."""
    wait_s = 2 * HOLD_JITTER * s.hold_retry_s + POLL_S
    return math.ceil(wait_s / s.interval_s) + 1


def warmup_s(s: ca.Scaled) -> float:
    """Long enough for node1's first frames and two STATS of each board."""
    return max(8.0, 2.5 * s.stats_interval_s)


def _config(s: ca.Scaled, workdir: Path, seed: int) -> Any:
    _, config, _, _ = _sim()
    return config.SimConfig(
        nodes=1,
        interval_ms=s.interval_ms,
        stats_interval_s=s.stats_interval_s,
        queue_len=s.queue_len,
        keys={ca.NODE1: KEY},
        extra_config={
            "hold_retry_s": s.hold_retry_s,
            "resend_ms": s.resend_ms,
            "ring_bytes": s.ring_bytes,
            "batch_max": s.batch_max,
        },
        capture=workdir / "serial.log",
        workdir=workdir / "sim",
        seed=seed,
    )


class _Away:
    """The host away: polls node1's queue until ``mode``'s moment to come back."""

    def __init__(self, sim: Any, s: ca.Scaled, mode: str, cap_s: float) -> None:
        self.sim, self.s, self.mode, self.cap_s = sim, s, mode, cap_s
        self.t_away = sim.elapsed()
        self.samples: list[tuple[float, int]] = []  # (s since the host left, node1's queue)
        self.first_loss_t: float | None = None
        self.timed_out = False
        self.margin = margin_readings(s)

    def sample(self, rep: dict[str, Any]) -> list[dict[str, Any]]:
        readings: list[dict[str, Any]] = rep["nodes"][str(ca.NODE1)]["readings"]
        self.samples.append((round(self.sim.elapsed() - self.t_away, 2), ca.queue_depth(readings)))
        return readings

    def wait(self) -> None:
        newest_t = self.t_away
        over_s = OVER_READINGS * self.s.interval_s
        while True:
            readings = self.sample(self.sim.run(POLL_S))
            now = self.sim.elapsed()
            if self.first_loss_t is None and any(r["dropped"] for r in readings):
                # the reading that found the queue full came after the previous poll
                later = [r["t"] for r in readings if r["t"] > newest_t]
                self.first_loss_t = min(later, default=now)
            newest_t = max((r["t"] for r in readings), default=newest_t)
            if self.mode == "limit" and self.samples[-1][1] >= self.s.queue_len - self.margin:
                return
            if self.first_loss_t is not None and now >= self.first_loss_t + over_s:
                return  # (the limit run too: it lost readings, which its figure reports)
            if now - self.t_away > self.cap_s:
                self.timed_out = True
                return


def _run(s: ca.Scaled, mode: str, workdir: Path, seed: int) -> dict[str, Any]:
    """One run: warm-up, the host away until ``mode``'s moment, the host back, the drain."""
    _, _, _, runner = _sim()
    host_cls = _host_class()
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = _config(s, workdir, seed)
    sim = runner.Simulation(cfg)
    sim.start()
    host = None
    try:
        host = host_cls(sim.serial_path)
        rep = sim.run(warmup_s(s))
        host.close()
        host = None
        sizes = ca.line_sizes(cfg.capture.read_bytes())
        forwarded = rep["nodes"][str(ca.GATEWAY)].get("forwarded", [])
        by_kind = ca.frame_sizes(forwarded, sizes, sim.elapsed())
        ring_per_s = ca.ring_use_per_s(by_kind, s, ca.ring_entry_header())
        expected = ca.expected_coverage(ring_per_s, s)
        away = _Away(sim, s, mode, 1.5 * expected["total_s"] + 20)
        away.wait()
        host = host_cls(sim.serial_path)
        t_back = sim.elapsed()
        while sim.elapsed() < t_back + DRAIN_CAP_S:
            rep = sim.run(2 * POLL_S)
            away.sample(rep)
            if not ca.unreached(rep, t_back):
                break
        sim.run(1.0)
    finally:
        if host is not None:
            host.close()
        final: dict[str, Any] = sim.stop()
    return {
        "report": final,
        "sizes": ca.line_sizes(cfg.capture.read_bytes()),
        "t_away": away.t_away,
        "t_back": t_back,
        "first_loss_s": None if away.first_loss_t is None else away.first_loss_t - away.t_away,
        "timed_out": away.timed_out,
        "ring_per_s": ring_per_s,
        "frame_sizes": by_kind,
        "expected": expected,
        "margin_readings": away.margin,
        "samples": away.samples,
    }


def _body(profile: Profile, col: Collector) -> None:
    _, config, _, _ = _sim()
    try:
        s = ca.scaled_settings(profile.custody_k, profile.custody_buffer_div)
    except ValueError as exc:
        raise Unavailable(f"settings cannot be scaled: {exc}") from exc
    air = airtime_fn(config.SimConfig().radio)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="iiot-bench-custody-") as tmp:

        def job(mode: str, seed: int) -> None:
            try:
                results[mode] = _run(s, mode, Path(tmp) / mode, seed)
            except BaseException as exc:  # handed to the main thread
                results[mode] = exc

        threads = [
            threading.Thread(target=job, args=(mode, seed))
            for mode, seed in (("limit", 110), ("over", 111))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    over_keys = [K_FIRST_LOSS, K_OVER_LOST]
    keys = {
        "limit": [sp.key for sp in specs(profile) if sp.key not in over_keys],
        "over": over_keys,
    }
    for mode in ("limit", "over"):
        res = results[mode]
        if isinstance(res, BaseException):
            reason = str(res) if isinstance(res, Unavailable) else f"failed: {res!r}"
            for key in keys[mode]:
                col.missing(key, reason[:200])
            continue
        put_figures(col, s, mode, res, air)
        away_s = res["t_back"] - res["t_away"]
        log(f"custody {mode}: host away {away_s:.1f} s at x{s.k}, first loss {res['first_loss_s']}")


def figures(profile: Profile) -> list[Figure]:
    return run_part(Collector(SECTION, specs(profile)), lambda c: _body(profile, c))
