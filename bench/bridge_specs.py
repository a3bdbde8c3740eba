"""The bridge figures on our firmware's contract lines, and their targets (issues 7, 17)."""

from __future__ import annotations

from .figures import Target
from .spec import Spec

SECTION = "Bridge on node2's serial link (contract lines)"

CPU_LINK = "bridge.cpu_link"
CPU_US_LINK = "bridge.cpu_us_link"
CPU = "bridge.cpu_25fps"
CPU_US = "bridge.cpu_us_25fps"
RSS = "bridge.rss_25fps"
MQTT_P50 = "bridge.latency_mqtt_p50"
MQTT_P99 = "bridge.latency_mqtt_p99"
DB_P99 = "bridge.latency_db_p99"
THROUGHPUT = "bridge.throughput"
RSS_OUTAGE_START = "bridge.rss_outage_start"
RSS_OUTAGE_END = "bridge.rss_outage_end"
RSS_OUTAGE_GROWTH = "bridge.rss_outage_growth"
BACKLOG = "bridge.outage_backlog"
DRAIN = "bridge.drain_rate"

SPECS = (
    Spec(
        CPU_LINK,
        "keeps up with a saturated gateway link (115200 baud 8N1) with",
        "% of a core",
    ),
    Spec(CPU_US_LINK, "CPU per frame, link saturated", "µs"),
    Spec(CPU, "bridge CPU at 25 frames/s", "% of a core", Target("<=", 5)),
    Spec(CPU_US, "CPU per frame at 25 frames/s", "µs"),
    Spec(RSS, "bridge resident memory at 25 frames/s", "MB", Target("<=", 60)),
    Spec(MQTT_P50, "latency at 25 frames/s: line written -> MQTT subscriber, p50", "ms"),
    Spec(
        MQTT_P99,
        "latency at 25 frames/s: line written -> MQTT subscriber, p99",
        "ms",
        Target("<=", 20),
    ),
    Spec(
        DB_P99,
        "latency at 25 frames/s: line written -> queryable in the database, p99",
        "ms",
        Target("<=", 1500),
    ),
    Spec(
        THROUGHPUT,
        "unpaced maximum (no baud limit), every reading confirmed by MQTT and the database",
        "frames/s",
        Target(">=", 1000),
    ),
    Spec(RSS_OUTAGE_START, "bridge RSS early in a broker + database outage at 100 frames/s", "MB"),
    Spec(RSS_OUTAGE_END, "bridge RSS at the end of the outage", "MB", Target("<=", 60)),
    Spec(
        RSS_OUTAGE_GROWTH,
        "RSS growth from early to end of the outage",
        "MB",
        Target("<=", 5, "≤ 5 MB (flat)"),
    ),
    Spec(BACKLOG, "readings buffered in the outbox during the outage", "readings"),
    Spec(
        DRAIN,
        "outbox drain rate after the outage, both sinks confirmed",
        "readings/s",
        Target(">=", 5000),
    ),
)
