"""How long and how hard each benchmark runs: the full run (`make bench`) and the quick one."""

from __future__ import annotations

from dataclasses import dataclass

from .rig import LINK


@dataclass(frozen=True)
class Profile:
    name: str
    codec_iterations: int
    codec_repeats: int
    throughput_frames: int  # contract frames blasted through iiot-bridge (secondary figure)
    steady_s: float  # seconds per paced window of contract lines (25/s and link saturated)
    outage_s: float  # seconds of broker and database outage at 100 frames/s
    outage_pre_s: float  # seconds at 100 frames/s, all confirmed, before the outage
    peer_rates: tuple[float | str, ...]  # lines/s of the side-by-side windows (LINK: saturated)
    peer_window_s: float  # seconds per side-by-side window
    peer_blast_frames: int  # earlier-format lines blasted through each system
    fault_gap_s: float  # seconds at 25 lines/s between faults
    fault_broker_down_s: float
    fault_db_down_s: float
    fault_process_down_s: float
    fault_settle_s: float  # longest wait for the systems to deliver their backlogs
    fault_quiet_s: float  # ... and the wait once nothing arrives any more
    callgrind_s: float  # seconds of the replay counted under callgrind
    sim_duration_s: float  # simulated seconds per loss level in the firmware benchmark
    sim_interval_ms: int  # node1's report interval in the simulator
    min_heap: bool  # bisect each board's smallest working heap (minutes of link tests)
    e2e_duration_s: float  # seconds per spreading factor, end to end through the firmware
    e2e_interval_ms: int
    capacity_loads: tuple[float, ...]  # offered channel loads G (fraction of airtime)
    capacity_interval_ms: int  # every sensor node's report interval in the capacity runs
    capacity_duration_s: float  # seconds per load level
    custody_k: int  # every time setting of the boards / k in the custody runs
    custody_buffer_div: int  # node2's ring and node1's queue / this (1: the defaults)


FULL = Profile(
    name="full",
    codec_iterations=20_000,
    codec_repeats=5,
    throughput_frames=20_000,
    steady_s=30.0,
    outage_s=90.0,
    outage_pre_s=5.0,
    peer_rates=(5.0, 25.0, 50.0, LINK),
    peer_window_s=20.0,
    peer_blast_frames=3_000,
    fault_gap_s=15.0,
    fault_broker_down_s=10.0,
    fault_db_down_s=60.0,
    fault_process_down_s=3.0,
    fault_settle_s=120.0,
    fault_quiet_s=20.0,
    callgrind_s=8.0,
    sim_duration_s=90.0,
    sim_interval_ms=1000,
    min_heap=True,
    e2e_duration_s=75.0,
    e2e_interval_ms=2000,
    capacity_loads=(0.05, 0.1, 0.2, 0.3, 0.4, 0.5),
    capacity_interval_ms=3000,
    capacity_duration_s=30.0,
    custody_k=20,
    custody_buffer_div=1,
)

QUICK = Profile(
    name="quick",
    codec_iterations=2_000,
    codec_repeats=2,
    throughput_frames=2_000,
    steady_s=2.0,
    outage_s=4.0,
    outage_pre_s=1.0,
    peer_rates=(25.0, LINK),
    peer_window_s=2.0,
    peer_blast_frames=500,
    fault_gap_s=2.0,
    fault_broker_down_s=2.0,
    fault_db_down_s=5.0,
    fault_process_down_s=2.0,
    fault_settle_s=40.0,
    fault_quiet_s=5.0,
    callgrind_s=1.0,
    sim_duration_s=8.0,
    sim_interval_ms=500,
    min_heap=False,
    e2e_duration_s=12.0,
    e2e_interval_ms=2000,
    capacity_loads=(0.05, 0.2),
    capacity_interval_ms=1500,
    capacity_duration_s=10.0,
    custody_k=20,
    custody_buffer_div=10,
)
