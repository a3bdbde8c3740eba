"""Webhook sink: batches of readings as JSON, POSTed to a URL (``--webhook-url``).

Each request carries up to ``--webhook-batch-size`` readings, after waiting up to
``--webhook-flush-ms`` for a partial batch to fill::

    {"readings": [{"node": "node1", "metric": "temperature", "value": 21.5,
                   "unit": "celsius", "kind": "reading", "ts_ns": 1764590000000000000,
                   "time": "2025-12-01T12:33:20.000Z"}, ...]}

``kind`` is "reading" (a node's measurement or counter) or "link" (rssi/snr of one
reception). Delivery is at-least-once: a batch is sent again after a timeout or a restart,
so a receiver that must not count twice keys on (node, metric, ts_ns), which is unique.

Answers: 2xx delivered; 413 splits the batch until it fits (a single reading still too
large is dropped); 408, 429 and 5xx are retried with backoff, honouring ``Retry-After``;
any other 4xx drops the batch, counted as rejected and logged; 3xx and connection errors
keep the batch and retry. Standard library only (http.client, one kept-alive connection).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from iiot_codec import CodecError, format_value

from ..catalog import unit_of
from ..logs import RateLimited
from ..model import Kind
from ..outbox import Row
from ..settings import Group, setting
from .base import Done, RetryLater, SinkPlugin, SyncSink, http_url
from .mqtt_config import read_secret

log = logging.getLogger("iiot_bridge.webhook")

# What a kept-alive connection the server has closed meanwhile looks like: try once more at
# once (anything else is retried after the runner's backoff).
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
KIND_NAMES = {int(Kind.READING): "reading", int(Kind.LINK): "link", int(Kind.SELF): "self"}


def _url(value: str) -> str:
    if not value:
        return value
    parts = http_url(value, "http[s]://host[:port]/path")
    if parts.password is not None:
        raise ValueError("do not put a password in the URL; use IIOT_WEBHOOK_TOKEN")
    return value


@dataclass
class WebhookSettings(Group):
    title = "Webhook"

    webhook_url: str = setting(
        "", "URL the readings are POSTed to as JSON (empty: the webhook sink is off)", check=_url
    )
    webhook_token: str | None = setting(
        None,
        "token sent in the header Authorization: Bearer <token> (environment only)",
        kind="secret",
        flag=False,
    )
    webhook_token_file: Path | None = setting(None, "file holding the webhook token", kind="path")
    webhook_batch_size: int = setting(500, "readings per request at most", low=1, high=100000)
    webhook_flush_ms: int = setting(1000, "longest wait, ms, before a partial batch is sent", low=1)
    webhook_timeout: float = setting(10.0, "webhook request timeout", kind="duration", low=0.1)
    parts: Any = field(init=False, repr=False, default=None)

    def check(self) -> None:
        if self.webhook_token_file is not None:
            self.webhook_token = read_secret(self.webhook_token_file, "webhook token")
        self.parts = urlsplit(self.webhook_url) if self.webhook_url else None


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def reading_json(row: Row) -> dict[str, Any]:
    try:
        value: float | int = float(format_value(row.metric, row.value))
    except CodecError:
        value = row.value
    if value == int(value) and abs(value) < 2**53:
        value = int(value)
    when = datetime.fromtimestamp(row.ts_ns / 1e9, UTC)
    return {
        "node": row.node,
        "metric": row.metric,
        "value": value,
        "unit": unit_of(row.metric),
        "kind": KIND_NAMES.get(row.kind, "reading"),
        "ts_ns": row.ts_ns,
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


class WebhookSink(SyncSink):
    name = "webhook"
    title = "Webhook"
    accepts = frozenset({Kind.READING, Kind.LINK})

    def __init__(self, cfg: WebhookSettings) -> None:
        self.cfg = cfg
        self.target = cfg.webhook_url
        self.batch_size = cfg.webhook_batch_size
        self.linger_s = cfg.webhook_flush_ms / 1000
        self.noisy = RateLimited(log, 30.0)
        parts = cfg.parts
        self.host = parts.hostname
        self.port = parts.port
        self.https = parts.scheme == "https"
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = {"Content-Type": "application/json", "User-Agent": "iiot-bridge"}
        if cfg.webhook_token:
            self.headers["Authorization"] = f"Bearer {cfg.webhook_token}"
        self.conn: http.client.HTTPConnection | None = None
        self._rejected = 0

    def connect(self) -> None:
        timeout = self.cfg.webhook_timeout
        if self.https:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.connect()  # reachable now; requests reuse the connection
        except OSError as err:
            conn.close()
            raise RetryLater(f"cannot reach {self.target} ({err})", state="down") from err
        self.conn = conn

    def close(self, final: bool) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    def write(self, rows: Sequence[Row]) -> Done:
        if not rows:
            return Done()
        self._rejected = 0
        self._post(rows)
        return Done(rows[-1].id, len(rows) - self._rejected, self._rejected)

    def _request(self, body: bytes) -> tuple[int, str | None, bytes]:
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more
            if self.conn is None:
                self.connect()
            assert self.conn is not None
            try:
                self.conn.request("POST", self.path, body, self.headers)
                resp = self.conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as err:
                self.close(False)
                if attempt == 2 or not isinstance(err, _STALE):
                    raise RetryLater(
                        f"cannot reach {self.target} ({type(err).__name__}: {err})", state="down"
                    ) from err
                continue
            if resp.will_close:
                self.close(False)
            return resp.status, resp.getheader("Retry-After"), data
        raise AssertionError("unreachable")

    def _post(self, rows: Sequence[Row]) -> None:
        body = json.dumps({"readings": [reading_json(r) for r in rows]}).encode()
        status, after, data = self._request(body)
        if 200 <= status < 300:
            return
        detail = data[:200].decode("utf-8", "replace").strip()
        if status == 413 and len(rows) > 1:
            half = len(rows) // 2
            self._post(rows[:half])
            self._post(rows[half:])
            return
        if status in (408, 429) or status >= 500:
            raise RetryLater(
                f"answered HTTP {status} {detail}".rstrip(), retry_after(after), f"http{status}"
            )
        if 400 <= status < 500:
            self._rejected += len(rows)
            self.noisy.warning(
                f"reject{status}",
                "webhook refused %d readings (HTTP %d %s), dropped",
                len(rows),
                status,
                detail,
            )
            return
        raise RetryLater(f"answered HTTP {status} (not a 2xx); check --webhook-url",
                         state=f"http{status}")  # fmt: skip


PLUGIN = SinkPlugin(
    name=WebhookSink.name,
    settings=WebhookSettings,
    enabled=lambda cfg: bool(cfg.webhook_url),
    build=lambda cfg, ctx: WebhookSink(cfg),
    off="no --webhook-url",
)
