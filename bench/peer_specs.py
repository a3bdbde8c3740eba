"""The side-by-side figures: iiot-bridge against Node-RED (issue 17, section 1)."""

from __future__ import annotations

from .figures import Target
from .spec import Spec

SECTION = "Peer: iiot-bridge vs Node-RED, same lines, same servers, same run"

CPU_25 = "peer.cpu_us.r25"
CPU_LINK = "peer.cpu_us.link"
PCT_25 = "peer.cpu_pct.r25"
PCT_LINK = "peer.cpu_pct.link"
INSTR = "peer.instructions"
RSS_25 = "peer.rss.r25"
P50 = "peer.latency_p50"
P99 = "peer.latency_p99"
MAX_RATE = "peer.max_rate"
FAULTS = ("broker", "database", "process")
FAULT_LABELS = {
    "broker": "broker killed (SIGKILL) and restarted",
    "database": "database stopped, down for {db_s:g} s",
    "process": "the process killed (SIGKILL) and restarted",
}
LOST_LEGACY = "peer.lost.legacy_total"
DUPLICATES = "peer.duplicates"

TEN_X_LESS = Target("<=", 0.1, "ratio ≤ 0.1 (10x less)", on="ratio")
HALF = Target("<=", 0.5, "ratio ≤ 0.5", on="ratio")
NOTHING_LOST = Target("<=", 0, "0 lost", on="value")


def lost_key(fault: str) -> str:
    return f"peer.lost.{fault}"


def specs(db_down_s: float) -> tuple[Spec, ...]:
    out = [
        Spec(CPU_25, "CPU per frame at 25 lines/s", "µs", TEN_X_LESS, compared=True),
        Spec(
            CPU_LINK,
            "CPU per frame, link saturated (115200 baud 8N1)",
            "µs",
            TEN_X_LESS,
            compared=True,
        ),
        Spec(PCT_25, "CPU at 25 lines/s", "% of a core", compared=True),
        Spec(PCT_LINK, "CPU, link saturated", "% of a core", compared=True),
        Spec(
            INSTR,
            "instructions per frame (valgrind callgrind, fixed replay)",
            "instructions",
            TEN_X_LESS,
            compared=True,
        ),
        Spec(RSS_25, "resident memory at 25 lines/s", "MB", HALF, compared=True),
        Spec(
            P50, "latency at 25 lines/s: line written -> MQTT subscriber, p50", "ms", compared=True
        ),
        Spec(
            P99, "latency at 25 lines/s: line written -> MQTT subscriber, p99", "ms", compared=True
        ),
        Spec(
            MAX_RATE,
            "highest rate, every reading confirmed by both servers (unpaced)",
            "lines/s",
            compared=True,
        ),
    ]
    for fault in FAULTS:
        label = FAULT_LABELS[fault].format(db_s=db_down_s)
        out.append(
            Spec(
                lost_key(fault),
                f"readings lost at 25 lines/s: {label}",
                "readings",
                NOTHING_LOST,
                compared=True,
            )
        )
    out.append(
        Spec(
            DUPLICATES,
            "readings delivered twice across the three faults (MQTT and database)",
            "readings",
            compared=True,
        )
    )
    out.append(
        Spec(
            LOST_LEGACY,
            "readings lost across all three faults, iiot-bridge fed the earlier lines too",
            "readings",
            compared=True,
        )
    )
    return tuple(out)
