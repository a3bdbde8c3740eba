"""``--http-port``: ``/metrics`` (Prometheus text format) and ``/healthz`` (JSON).

/healthz answers 200 when the serial port is open, the outbox can be written, at least one
sink is connected and no sink with a backlog has gone without delivering for longer than
``--stall-timeout``; else 503, and the body says which part is failing and why.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .stats import INTAKE_COUNTERS, Stats

if TYPE_CHECKING:
    from .app import Bridge


class StatsCollector(Collector):
    """Reads the Stats object at scrape time; nothing is copied in between."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Any]:
        s = self.stats
        for name, help_text in INTAKE_COUNTERS:
            yield CounterMetricFamily(f"iiot_bridge_{name}", help_text, value=getattr(s, name))
        yield GaugeMetricFamily(
            "iiot_bridge_serial_open", "1 while the serial port is open", value=int(s.serial_open)
        )
        yield GaugeMetricFamily(
            "iiot_bridge_outbox_writable",
            "1 while readings can be stored (0: disk full or read-only; node2 is not acknowledged)",
            value=int(not s.outbox_error),
        )
        # [gateways] several gateways (issue 15): per gateway, and frames awaiting Redis
        yield GaugeMetricFamily(
            "iiot_bridge_pending_frames",
            "frames waiting for the shared duplicate claims (--dedup-url unreachable)",
            value=s.pending_frames,
        )
        frames = CounterMetricFamily(
            "iiot_bridge_gateway_frames", "new frames heard through the gateway", labels=["gateway"]
        )
        dups = CounterMetricFamily(
            "iiot_bridge_gateway_duplicates",
            "the gateway's copies of frames another gateway or bridge stored",
            labels=["gateway"],
        )
        for label, gw in sorted(s.gateways.items()):
            frames.add_metric([label], float(gw.frames))
            dups.add_metric([label], float(gw.duplicates))
        yield frames
        yield dups
        families: dict[str, CounterMetricFamily | GaugeMetricFamily] = {
            "delivered": CounterMetricFamily(
                "iiot_bridge_delivered", "readings confirmed by the server", labels=["sink"]
            ),
            "rejected": CounterMetricFamily(
                "iiot_bridge_rejected", "readings the server refused as invalid", labels=["sink"]
            ),
            "retries": CounterMetricFamily(
                "iiot_bridge_retries", "failed delivery attempts", labels=["sink"]
            ),
            "queued": GaugeMetricFamily(
                "iiot_bridge_queued", "readings waiting in the outbox", labels=["sink"]
            ),
            "connected": GaugeMetricFamily(
                "iiot_bridge_sink_connected", "1 while the sink's server works", labels=["sink"]
            ),
            "running": GaugeMetricFamily(
                "iiot_bridge_sink_running", "1 while the sink's thread runs", labels=["sink"]
            ),
            "outbox_errors": CounterMetricFamily(
                "iiot_bridge_sink_outbox_errors",
                "outbox reads or cursor writes of the sink that failed",
                labels=["sink"],
            ),
        }
        for sink, st in sorted(s.sinks.items()):
            for attr, family in families.items():
                family.add_metric([sink], float(getattr(st, attr)))
        yield from families.values()


def health(stats: Stats, stall_s: float, now: float | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for /healthz."""
    now = time.monotonic() if now is None else now
    reasons: list[str] = []
    if not stats.serial_open:
        reasons.append("serial port not open")
    if stats.outbox_error:
        reasons.append(f"outbox not writable, node2 is not acknowledged: {stats.outbox_error}")
    sinks: dict[str, dict[str, Any]] = {}
    for name, st in sorted(stats.sinks.items()):
        idle = now - st.progress_at
        stalled = st.queued > 0 and idle > stall_s
        sinks[name] = {
            "connected": st.connected,
            "running": st.running,
            "queued": st.queued,
            "delivered": st.delivered,
            "seconds_since_delivery": round(idle, 1),
            "last_error": st.last_error,
        }
        if not st.running:
            reasons.append(f"{name}: sink thread not running")
        elif stalled:
            why = st.last_error or "no error reported"
            reasons.append(
                f"{name}: {st.queued} readings waiting, nothing delivered for {idle:.0f} s ({why})"
            )
    if sinks and not any(st["connected"] for st in sinks.values()):
        reasons.append(
            "no sink is connected: "
            + "; ".join(
                f"{name}: {st['last_error'] or 'not connected'}" for name, st in sinks.items()
            )
        )
    body = {
        "status": "ok" if not reasons else "failing",
        "reasons": reasons,
        "serial": {"open": stats.serial_open},
        "outbox": {"writable": not stats.outbox_error, "error": stats.outbox_error},
        "sinks": sinks,
    }
    return (200 if not reasons else 503), body


class HttpEndpoint:
    def __init__(self, host: str, port: int, bridge: Bridge) -> None:
        stats = bridge.stats
        stall_s = bridge.settings.stall_timeout
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StatsCollector(stats))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
                elif path == "/healthz":
                    status, body = health(stats, stall_s)
                    self._send(status, "application/json", json.dumps(body).encode())
                else:
                    self._send(404, "text/plain", b"not found: try /metrics or /healthz\n")

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # scrapes every few seconds would flood the log

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
