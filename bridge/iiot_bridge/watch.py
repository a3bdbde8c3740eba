"""iiot-watch: a live terminal view of any deployment, built from its MQTT topics alone.

It subscribes to ``<prefix>/#`` and keeps, per node, each metric's latest value, when it
arrived and a short history for a sparkline; ``<prefix>/<node>/status`` gives the node's
availability and ``<prefix>/bridge/...`` the bridge's own counters and backlog. On a
terminal it redraws a table per node with rich; otherwise (a pipe, a log file) it prints
one plain line per message, so the same command works in scripts and CI logs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

SPARK_CHARS = "▁▂▃▄▅▆▇█"
# Topics under a node that describe the node rather than carry a reading.
NODE_META = {"status", "state"}


def sparkline(values: list[float], width: int = 20) -> str:
    """The last ``width`` values as block characters scaled between their min and max."""
    values = values[-width:]
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return SPARK_CHARS[len(SPARK_CHARS) // 2] * len(values)
    steps = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[round((v - low) / (high - low) * steps)] for v in values)


@dataclass
class Series:
    """One metric of one node: its latest text and a time-bounded history."""

    text: str = ""
    updated: float = 0.0
    history: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, text: str, now: float, window_s: float) -> None:
        self.text = text
        self.updated = now
        try:
            self.history.append((now, float(text)))
        except ValueError:
            return
        while self.history and self.history[0][0] < now - window_s:
            self.history.popleft()


@dataclass
class NodeView:
    status: str = "unknown"
    metrics: dict[str, Series] = field(default_factory=dict)


class WatchState:
    """Everything the view shows, updated from MQTT messages (thread-safe)."""

    def __init__(self, prefix: str, window_s: float = 300.0) -> None:
        self.prefix = prefix.rstrip("/")
        self.window_s = window_s
        self.nodes: dict[str, NodeView] = {}
        self.bridge: dict[str, str] = {}
        self.messages = 0
        self.connected = False
        self._lock = threading.Lock()

    def apply(self, topic: str, payload: bytes, now: float | None = None) -> tuple[str, str, str]:
        """Record one message; return (node, name, text) for the plain-line output."""
        now = time.time() if now is None else now
        parts = topic.split("/")
        prefix_parts = self.prefix.split("/")
        if parts[: len(prefix_parts)] != prefix_parts or len(parts) != len(prefix_parts) + 2:
            return "", "", ""
        node, name = parts[len(prefix_parts)], parts[len(prefix_parts) + 1]
        text = payload.decode("utf-8", "replace").strip()
        with self._lock:
            self.messages += 1
            if node == "bridge":
                self.bridge[name] = text
            elif name == "status":
                self.nodes.setdefault(node, NodeView()).status = text
            elif name not in NODE_META:
                view = self.nodes.setdefault(node, NodeView())
                view.metrics.setdefault(name, Series()).add(text, now, self.window_s)
        return node, name, text

    def render(self, now: float | None = None) -> Group:
        now = time.time() if now is None else now
        with self._lock:
            parts: list[Table | Text] = []
            link = "connected" if self.connected else "not connected"
            parts.append(Text(f"iiot-watch  prefix={self.prefix}  broker {link}", style="bold"))
            for node in sorted(self.nodes):
                parts.append(self._node_table(node, self.nodes[node], now))
            if self.bridge:
                table = Table(title="bridge", title_justify="left", expand=False)
                table.add_column("counter")
                table.add_column("value", justify="right")
                for name in sorted(self.bridge):
                    table.add_row(name, self.bridge[name])
                parts.append(table)
            if not self.nodes and not self.bridge:
                parts.append(Text("waiting for messages..."))
            return Group(*parts)

    @staticmethod
    def _node_table(node: str, view: NodeView, now: float) -> Table:
        style = {"online": "green", "offline": "red"}.get(view.status, "yellow")
        title = Text.assemble((node, "bold"), "  ", (view.status, style))
        table = Table(title=title, title_justify="left", expand=False)
        table.add_column("metric")
        table.add_column("value", justify="right")
        table.add_column("age", justify="right")
        table.add_column("recent")
        for name in sorted(view.metrics):
            series = view.metrics[name]
            age = f"{now - series.updated:.0f} s"
            spark = sparkline([v for _, v in series.history])
            table.add_row(name, series.text, age, spark)
        return table


def parse_mqtt_url(url: str) -> tuple[str, int, str | None, bool]:
    """host, port, username and TLS flag from ``mqtt[s]://[user@]host[:port]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"--mqtt-url must look like mqtt://[user@]host[:port], got {url!r}")
    tls = parts.scheme == "mqtts"
    return parts.hostname, parts.port or (8883 if tls else 1883), parts.username, tls


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iiot-watch", description="Live terminal view of the telemetry on an MQTT broker."
    )
    parser.add_argument(
        "--mqtt-url", default=os.environ.get("IIOT_MQTT_URL", "mqtt://localhost:1883")
    )
    parser.add_argument(
        "--topic-prefix", default=os.environ.get("IIOT_TOPIC_PREFIX", "iiot"), help="default iiot"
    )
    parser.add_argument("--mqtt-password-file", help="file holding the MQTT password")
    parser.add_argument("--mqtt-ca-file", help="CA certificate for mqtts://")
    parser.add_argument(
        "--plain", action="store_true", help="one line per message even on a terminal"
    )
    parser.add_argument("--duration", type=float, default=0, help="exit after this many seconds")
    parser.add_argument(
        "--window", type=float, default=300, help="seconds of history in the sparklines"
    )
    return parser


def _password(args: argparse.Namespace) -> str | None:
    if args.mqtt_password_file:
        with open(args.mqtt_password_file, encoding="utf-8") as handle:
            return handle.read().strip()
    return os.environ.get("IIOT_MQTT_PASSWORD")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        host, port, user, tls = parse_mqtt_url(args.mqtt_url)
        password = _password(args)
    except (ValueError, OSError) as exc:
        print(f"iiot-watch: {exc}", file=sys.stderr)
        return 2
    state = WatchState(args.topic_prefix, window_s=args.window)
    plain = args.plain or not sys.stdout.isatty()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"iiot-watch-{os.getpid()}")
    if user:
        client.username_pw_set(user, password)
    if tls:
        client.tls_set(ca_certs=args.mqtt_ca_file)

    def on_connect(cl: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        state.connected = not getattr(reason, "is_failure", False)
        if state.connected:
            cl.subscribe(f"{state.prefix}/#", qos=1)
        elif plain:
            print(f"broker refused the connection: {reason}", flush=True)

    def on_disconnect(*_args: object) -> None:
        state.connected = False

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        node, name, text = state.apply(msg.topic, msg.payload)
        if plain and node:
            stamp = time.strftime("%H:%M:%S")
            print(f"{stamp} {node} {name} {text}", flush=True)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    client.reconnect_delay_set(1, 30)
    client.connect_async(host, port, keepalive=30)
    client.loop_start()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    deadline = time.monotonic() + args.duration if args.duration else None
    try:
        if plain:
            while not stop.wait(0.2):
                if deadline and time.monotonic() >= deadline:
                    break
        else:
            with Live(state.render(), console=Console(), refresh_per_second=2) as live:
                while not stop.wait(0.5):
                    live.update(state.render())
                    if deadline and time.monotonic() >= deadline:
                        break
    except KeyboardInterrupt:
        pass
    finally:
        client.loop_stop()
        client.disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
