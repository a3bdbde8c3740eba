"""The bridge figures and their targets (issue 7)."""

from __future__ import annotations

from .figures import Target
from .spec import Spec

SECTION = "Bridge"

THROUGHPUT = "bridge.throughput"
NAIVE = "bridge.naive_throughput"
RATIO = "bridge.ratio_to_naive"
MQTT_P50 = "bridge.latency_mqtt_p50"
MQTT_P99 = "bridge.latency_mqtt_p99"
DB_P99 = "bridge.latency_db_p99"
CPU = "bridge.cpu_25fps"
RSS = "bridge.rss_25fps"
RSS_OUTAGE_START = "bridge.rss_outage_start"
RSS_OUTAGE_END = "bridge.rss_outage_end"
RSS_OUTAGE_GROWTH = "bridge.rss_outage_growth"
BACKLOG = "bridge.outage_backlog"
DRAIN = "bridge.drain_rate"

SPECS = (
    Spec(
        THROUGHPUT,
        "sustained throughput, every reading confirmed by MQTT and the database",
        "frames/s",
        Target(">=", 1000),
    ),
    Spec(NAIVE, "naive bridge (earlier design), same load, same run", "frames/s"),
    Spec(RATIO, "iiot-bridge throughput / naive bridge throughput", "x", Target(">=", 20)),
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
    Spec(CPU, "bridge CPU at 25 frames/s", "% of a core", Target("<=", 5)),
    Spec(RSS, "bridge resident memory at 25 frames/s", "MB", Target("<=", 60)),
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
