"""How long and how hard each benchmark runs: the full run (`make bench`) and the quick one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    codec_iterations: int
    codec_repeats: int
    naive_frames: int  # frames through the naive bridge (it manages tens per second)
    throughput_frames: int  # frames blasted through iiot-bridge for the throughput figure
    steady_s: float  # seconds at 25 frames/s for latency, CPU and memory
    outage_s: float  # seconds of broker and database outage at 100 frames/s
    outage_pre_s: float  # seconds at 100 frames/s, all confirmed, before the outage
    sim_duration_s: float  # simulated seconds per loss level in the firmware benchmark
    sim_interval_ms: int  # node1's report interval in the simulator


FULL = Profile(
    name="full",
    codec_iterations=20_000,
    codec_repeats=5,
    naive_frames=1_500,
    throughput_frames=30_000,
    steady_s=30.0,
    outage_s=600.0,
    outage_pre_s=5.0,
    sim_duration_s=420.0,
    sim_interval_ms=1000,
)

QUICK = Profile(
    name="quick",
    codec_iterations=2_000,
    codec_repeats=2,
    naive_frames=200,
    throughput_frames=5_000,
    steady_s=8.0,
    outage_s=10.0,
    outage_pre_s=2.0,
    sim_duration_s=8.0,
    sim_interval_ms=500,
)
