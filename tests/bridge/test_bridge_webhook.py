"""The webhook sink against a real HTTP server (http.server in a thread, scripted answers):
batched JSON POSTs, retries honouring Retry-After, 4xx counted and dropped, 413 split; and
the whole bridge delivering to it with MQTT and InfluxDB off."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from bridge_kit import Gateway, Node1, send_series, wait_for

from iiot_bridge.model import BACKLOG, BRIDGE_NODE, Kind, Reading
from iiot_bridge.outbox import Outbox
from iiot_bridge.outputs.base import SinkRunner
from iiot_bridge.outputs.wake import Wake
from iiot_bridge.outputs.webhook import WebhookSettings, WebhookSink, retry_after
from iiot_bridge.settings import build
from iiot_bridge.stats import Stats

# (request index, readings in the body) -> (status, headers)
Policy = Callable[[int, list[dict[str, Any]]], tuple[int, dict[str, str]]]


class Receiver:
    """An HTTP server that records every POST and answers as ``policy`` says."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.accepted: list[dict[str, Any]] = []
        self.requests: list[tuple[float, int, int, str]] = []  # time, readings, status, auth
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the sink expects

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.headers["Content-Type"] == "application/json"
                readings = body["readings"]
                status, headers = receiver.policy(len(receiver.requests), readings)
                auth = self.headers.get("Authorization", "")
                receiver.requests.append((time.monotonic(), len(readings), status, auth))
                if 200 <= status < 300:
                    receiver.accepted.extend(readings)
                payload = b"" if status == 204 else b"{}" if status < 300 else b'{"error":"x"}'
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/ingest?site=a"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


T0 = 1_800_000_000_000_000_000


@pytest.fixture
def run_sink(tmp_path: Path) -> Iterator[Callable[..., tuple[Receiver, Stats]]]:
    started: list[tuple[Receiver, SinkRunner, threading.Event]] = []

    def run(policy: Policy, n: int = 40, batch: int = 40) -> tuple[Receiver, Stats]:
        receiver = Receiver(policy)
        outbox = Outbox(tmp_path / "o.sqlite3", ["webhook"])
        rows = [Reading("node1", "temperature", 20 + i / 100, T0 + i * 10**9) for i in range(n)]
        rows.append(Reading("node1", "rssi", -71.0, T0, Kind.LINK))
        rows.append(Reading(BRIDGE_NODE, BACKLOG, 3.0, T0, Kind.SELF, "influx"))  # not for it
        outbox.commit(rows, {})
        cfg = build(
            WebhookSettings,
            {"webhook_url": receiver.url, "webhook_batch_size": batch, "webhook_flush_ms": 10},
        )
        cfg.webhook_token = "tok-123"
        stats, wake, stop = Stats(), Wake(), threading.Event()
        runner = SinkRunner(WebhookSink(cfg), outbox, stats.sink("webhook"), wake, stop, 2.0)
        runner.start()
        started.append((receiver, runner, stop))
        return receiver, stats

    yield run
    for receiver, runner, stop in started:
        stop.set()
        runner.join(10)
        receiver.close()


def temperatures(receiver: Receiver) -> list[float]:
    return sorted(r["value"] for r in receiver.accepted if r["metric"] == "temperature")


def test_batches_arrive_as_json_with_every_reading_once(run_sink) -> None:
    receiver, stats = run_sink(lambda i, readings: (200, {}), n=95, batch=40)
    wait_for(lambda: stats.sink("webhook").delivered == 96, 10, "every reading delivered")
    assert temperatures(receiver) == [round(20 + i / 100, 2) for i in range(95)]
    assert [n for _, n, _, _ in receiver.requests] == [40, 40, 16]  # batches of at most 40
    first = receiver.accepted[0]
    assert first == {
        "node": "node1",
        "metric": "temperature",
        "value": 20,
        "unit": "celsius",
        "kind": "reading",
        "ts_ns": T0,
        "time": "2027-01-15T08:00:00.000Z",
    }
    (rssi,) = [r for r in receiver.accepted if r["metric"] == "rssi"]
    assert rssi["kind"] == "link" and rssi["value"] == -71 and rssi["unit"] == "dBm"
    # The bridge's own backlog rows are not for the webhook.
    assert not [r for r in receiver.accepted if r["node"] == BRIDGE_NODE]
    assert {auth for *_, auth in receiver.requests} == {"Bearer tok-123"}


def test_429_and_5xx_are_retried_honouring_retry_after(run_sink) -> None:
    def policy(i: int, readings: list[dict[str, Any]]) -> tuple[int, dict[str, str]]:
        return {0: (429, {"Retry-After": "1"}), 1: (503, {})}.get(i, (200, {}))

    receiver, stats = run_sink(policy)
    wait_for(lambda: stats.sink("webhook").delivered == 41, 20, "delivery after the retries")
    (t0, _, s0, _), (t1, _, s1, _) = receiver.requests[:2]
    assert (s0, s1) == (429, 503)
    assert t1 - t0 >= 0.9  # waited as the server asked
    assert stats.sink("webhook").retries == 2
    assert temperatures(receiver) == [round(20 + i / 100, 2) for i in range(40)]


def test_4xx_is_counted_and_dropped_and_413_splits(run_sink) -> None:
    def policy(i: int, readings: list[dict[str, Any]]) -> tuple[int, dict[str, str]]:
        if len(readings) > 10:
            return 413, {}
        if any(r["metric"] == "rssi" for r in readings):
            return 422, {}  # the receiver refuses this batch (not retried)
        return 204, {}

    receiver, stats = run_sink(policy)
    sink = stats.sink("webhook")
    wait_for(lambda: sink.delivered + sink.rejected == 41, 20, "every reading done")
    refused = [n for _, n, status, _ in receiver.requests if status == 422]
    assert sink.rejected == sum(refused) and sink.rejected >= 1
    assert all(n <= 10 for _, n, status, _ in receiver.requests if status != 413)
    assert len(temperatures(receiver)) == 41 - sink.rejected
    assert sink.retries == 0  # a 4xx is final


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) is None and retry_after("soon") is None
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    got = retry_after(later)
    assert got is not None and 25 <= got <= 31


def test_the_bridge_delivers_to_a_webhook(tmp_path: Path, gateway: Gateway, start_bridge) -> None:
    receiver = Receiver(lambda i, readings: (200, {}))
    try:
        bridge = start_bridge(
            "--no-mqtt", "--no-influx", "--webhook-url", receiver.url, "--webhook-flush-ms", "50",
            env={"IIOT_WEBHOOK_TOKEN": "s3cret"},
        )  # fmt: skip
        bridge.wait_log("open at")
        node = Node1()
        sent = send_series(gateway, node, 30, rssi=True)
        gateway.wait_acked()
        wait_for(lambda: len(receiver.accepted) >= 30 * 7, 20, "30 frames of 7 readings")
        got = {(r["metric"], r["value"]) for r in receiver.accepted if r["kind"] == "reading"}
        want = {(m, v) for s in sent for m, v in s.readings.items()}
        assert got == want and len(receiver.accepted) == 30 * 7
        assert {auth for *_, auth in receiver.requests} == {"Bearer s3cret"}
        assert "s3cret" not in bridge.log()
        assert bridge.terminate() == 0
    finally:
        receiver.close()


def test_outbox_errors_are_survived(run_sink, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first reads of the outbox fail (as on a failing disk): the sink logs it, backs
    off and delivers everything from its cursor once reads work again."""
    from iiot_bridge.outbox import OutboxError

    fetch = Outbox.fetch
    failures = [0]

    def failing_fetch(self: Outbox, after_id: int, limit: int) -> list[Any]:
        if failures[0] < 2:
            failures[0] += 1
            raise OutboxError("outbox read failed: disk I/O error")
        return fetch(self, after_id, limit)

    monkeypatch.setattr(Outbox, "fetch", failing_fetch)
    receiver, stats = run_sink(lambda i, readings: (200, {}))
    sink = stats.sink("webhook")
    wait_for(lambda: sink.delivered == 41, 20, "delivery after the outbox errors")
    assert failures[0] == 2 and sink.outbox_errors == 2 and sink.running
    assert temperatures(receiver) == [round(20 + i / 100, 2) for i in range(40)]
