"""The bridge's counters in one object: logged periodically, exported on /metrics.

Every counter is written by one thread only (intake, a sink, housekeeping) and read by the
others; CPython makes a single int store atomic, so no lock is needed for a consistent
enough snapshot. Gauges (queued, connected) are set by their owner the same way.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

# Counters of the intake side (serial source and processors).
INTAKE_COUNTERS = (
    ("lines", "serial lines read"),
    ("console_lines", "console output lines skipped (not JSON)"),
    ("frames", "frames decoded"),
    ("legacy_lines", "earlier-firmware JSON lines accepted"),
    ("malformed", "lines or frames that could not be parsed"),
    ("bad_crc", "frames with a bad CRC"),
    ("mic_failures", "frames whose MIC is missing or wrong"),
    ("duplicates", "frames already stored (retransmissions, resends)"),
    ("cross_duplicates", "copies of frames another gateway or bridge stored (issue 15)"),
    ("gap_lines", "lines after a gap in node2's numbering, left for node2 to resend"),
    ("stale_lines", "lines from before node2 answered the hello, left for node2 to resend"),
    ("node2_boots", "boots of node2 named by its serial session"),
    ("readings", "readings accepted into the outbox"),
    ("acks_sent", "line acknowledgements written to node2"),
    ("ack_failures", "acknowledgements that could not be written"),
    ("drops", "readings dropped undelivered by the outbox limits"),
    ("outbox_errors", "intake commits that failed (disk full, read-only, I/O error)"),
    ("serial_opens", "times the serial port was opened"),
)


@dataclass
class SinkStats:
    """One sink's counters and gauges."""

    delivered: int = 0
    rejected: int = 0  # dropped as invalid by the server (InfluxDB 400/422, webhook 4xx)
    retries: int = 0
    outbox_errors: int = 0  # outbox reads or cursor writes that failed
    queued: int = 0  # backlog in the outbox, updated by housekeeping
    connected: bool = False
    running: bool = False  # the sink's thread is alive
    last_error: str = ""
    # time.monotonic() of the last delivery (or of start): /healthz's stall check
    progress_at: float = field(default_factory=time.monotonic)


@dataclass
class GatewayStats:
    """One gateway's (serial port's) counters: what it heard, how much of it overlapped."""

    frames: int = 0  # new frames heard through this gateway (its copies of shared ones too)
    duplicates: int = 0  # its copies of frames another gateway or bridge stored
    open: bool = False  # its serial port is open


@dataclass
class Stats:
    lines: int = 0
    console_lines: int = 0
    frames: int = 0
    legacy_lines: int = 0
    malformed: int = 0
    bad_crc: int = 0
    mic_failures: int = 0
    duplicates: int = 0
    cross_duplicates: int = 0
    gap_lines: int = 0
    stale_lines: int = 0
    node2_boots: int = 0
    readings: int = 0
    acks_sent: int = 0
    ack_failures: int = 0
    drops: int = 0
    outbox_errors: int = 0
    serial_opens: int = 0
    serial_open: bool = False
    outbox_error: str = ""  # why the last intake commit failed; "" while commits succeed
    sinks: dict[str, SinkStats] = field(default_factory=dict)
    gateways: dict[str, GatewayStats] = field(default_factory=dict)  # by gateway label
    pending_frames: int = 0  # frames waiting for the shared claims (Redis away)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sink(self, name: str) -> SinkStats:
        with self._lock:
            return self.sinks.setdefault(name, SinkStats())

    def gateway(self, label: str) -> GatewayStats:
        with self._lock:
            return self.gateways.setdefault(label, GatewayStats())

    def summary(self) -> str:
        """One log line: the counters that matter, sinks included."""
        parts = [
            f"lines={self.lines}",
            f"frames={self.frames}",
            f"readings={self.readings}",
            f"duplicates={self.duplicates}",
            f"malformed={self.malformed}",
            f"bad_crc={self.bad_crc}",
            f"mic_failures={self.mic_failures}",
            f"console={self.console_lines}",
            f"drops={self.drops}",
        ]
        if self.gateways:
            parts.append(f"cross_duplicates={self.cross_duplicates}")
            parts.append(f"pending={self.pending_frames}")
        for label, g in sorted(self.gateways.items()):
            parts.append(f"gateway {label}: frames={g.frames} duplicates={g.duplicates}")
        for name, s in sorted(self.sinks.items()):
            parts.append(f"{name}: delivered={s.delivered} queued={s.queued}")
        return " ".join(parts)
