"""The bridge's counters in one object: logged periodically, exported on /metrics.

Every counter is written by one thread only (intake, a sink, housekeeping) and read by the
others; CPython makes a single int store atomic, so no lock is needed for a consistent
enough snapshot. Gauges (queued, connected) are set by their owner the same way.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields

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
    ("gap_lines", "lines after a gap in node2's numbering, left for node2 to resend"),
    ("readings", "readings accepted into the outbox"),
    ("acks_sent", "line acknowledgements written to node2"),
    ("ack_failures", "acknowledgements that could not be written"),
    ("drops", "readings dropped undelivered by the outbox limits"),
    ("serial_opens", "times the serial port was opened"),
)


@dataclass
class SinkStats:
    """One sink's counters and gauges."""

    delivered: int = 0
    rejected: int = 0  # dropped as invalid by the server (InfluxDB 400/422)
    retries: int = 0
    queued: int = 0  # backlog in the outbox, updated by housekeeping
    connected: bool = False
    last_error: str = ""


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
    gap_lines: int = 0
    readings: int = 0
    acks_sent: int = 0
    ack_failures: int = 0
    drops: int = 0
    serial_opens: int = 0
    serial_open: bool = False
    sinks: dict[str, SinkStats] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sink(self, name: str) -> SinkStats:
        with self._lock:
            return self.sinks.setdefault(name, SinkStats())

    def snapshot(self) -> dict[str, object]:
        """Plain dict of every counter, for logs and tests."""
        out: dict[str, object] = {}
        for f in fields(self):
            if f.name.startswith("_") or f.name == "sinks":
                continue
            out[f.name] = getattr(self, f.name)
        for name, s in sorted(self.sinks.items()):
            for f in fields(s):
                out[f"{name}_{f.name}"] = getattr(s, f.name)
        return out

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
        for name, s in sorted(self.sinks.items()):
            parts.append(f"{name}: delivered={s.delivered} queued={s.queued}")
        return " ".join(parts)
