"""InfluxDB sink error handling (Telegraf's rules) against an HTTP server that answers with
the status codes InfluxDB 2 uses. VictoriaMetrics never sends these, so this server is
scripted; the sink talks real HTTP to it through influxdb-client."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from bridge_kit import wait_for

from iiot_bridge.model import Kind, Reading
from iiot_bridge.outbox import Outbox
from iiot_bridge.outputs.base import SinkRunner
from iiot_bridge.outputs.influx import InfluxSettings, InfluxSink
from iiot_bridge.outputs.wake import Wake
from iiot_bridge.settings import build
from iiot_bridge.stats import Stats

Policy = Callable[[int, list[str]], tuple[int, dict[str, str]]]


class FakeInflux:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.accepted: list[str] = []
        self.requests: list[tuple[float, int, int]] = []  # (time, lines, status)
        self.auth: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - InfluxDB's /ping: up, no body
                self.send_response(204 if self.path.startswith("/ping") else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                lines = [ln for ln in body.split("\n") if ln]
                fake.auth.append(self.headers.get("Authorization", ""))
                status, headers = fake.policy(len(fake.requests), lines)
                fake.requests.append((time.monotonic(), len(lines), status))
                if status == 204:
                    fake.accepted.extend(lines)
                payload = (
                    b'{"code":"invalid","message":"unable to parse points"}'
                    if status != 204
                    else b""
                )
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def run_sink(tmp_path: Path) -> Iterator[Callable[..., tuple[FakeInflux, Stats]]]:
    started: list[tuple[FakeInflux, SinkRunner, threading.Event]] = []

    def run(policy: Policy, n: int = 40, batch: int = 40) -> tuple[FakeInflux, Stats]:
        fake = FakeInflux(policy)
        outbox = Outbox(tmp_path / "o.sqlite3", ["influx"])
        t0 = 1_800_000_000_000_000_000
        outbox.commit(
            [Reading("node1", "temperature", float(i), t0 + i, Kind.READING) for i in range(n)], {}
        )
        stats, wake, stop = Stats(), Wake(), threading.Event()
        cfg = build(
            InfluxSettings,
            {
                "influx_url": fake.url,
                "influx_org": "org",
                "influx_bucket": "bucket",
                "influx_token": "tok",
                "influx_batch_size": batch,
                "influx_flush_ms": 10,
            },
        )
        runner = SinkRunner(InfluxSink(cfg), outbox, stats.sink("influx"), wake, stop, 2.0)
        runner.start()
        started.append((fake, runner, stop))
        return fake, stats

    yield run
    for fake, runner, stop in started:
        stop.set()
        runner.join(10)
        fake.close()


def values(fake: FakeInflux) -> list[float]:
    return sorted(float(ln.split("value=")[1].split()[0]) for ln in fake.accepted)


def test_413_splits_the_batch(run_sink) -> None:
    fake, stats = run_sink(lambda i, lines: (413 if len(lines) > 8 else 204, {}))
    wait_for(lambda: stats.sink("influx").delivered == 40, 10, "every point written")
    assert values(fake) == [float(i) for i in range(40)]
    assert all(n <= 8 for _, n, status in fake.requests if status == 204)
    assert fake.auth[0] == "Token tok"


def test_400_drops_only_the_offending_point(run_sink) -> None:
    def policy(i: int, lines: list[str]) -> tuple[int, dict[str, str]]:
        return (400 if any("value=13.00 " in ln for ln in lines) else 204, {})

    fake, stats = run_sink(policy)
    wait_for(lambda: stats.sink("influx").delivered == 39, 10, "the good points")
    assert values(fake) == [float(i) for i in range(40) if i != 13]
    assert stats.sink("influx").rejected == 1


def test_401_keeps_buffering_and_says_the_token_is_wrong(run_sink) -> None:
    fake, stats = run_sink(lambda i, lines: (401 if i < 3 else 204, {}))
    wait_for(lambda: stats.sink("influx").last_error, 10, "an error")
    assert "token" in stats.sink("influx").last_error
    wait_for(lambda: stats.sink("influx").delivered == 40, 20, "delivery once accepted")
    assert values(fake) == [float(i) for i in range(40)]


def test_429_and_5xx_retry_honouring_retry_after(run_sink) -> None:
    def policy(i: int, lines: list[str]) -> tuple[int, dict[str, str]]:
        if i == 0:
            return 429, {"Retry-After": "1"}
        if i == 1:
            return 503, {}
        return 204, {}

    fake, stats = run_sink(policy)
    wait_for(lambda: stats.sink("influx").delivered == 40, 20, "delivery after the retries")
    (t0, _, s0), (t1, _, s1) = fake.requests[:2]
    assert (s0, s1) == (429, 503)
    assert t1 - t0 >= 0.9  # waited as the server asked
    assert stats.sink("influx").retries == 2
    assert values(fake) == [float(i) for i in range(40)]
