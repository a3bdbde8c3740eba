"""InfluxDB sink: batches from the outbox, written with influxdb-client's synchronous API.

Not the client's batching writer (it drops a batch after its retries and grows without
bound during an outage): this loop reads at most ``batch_size`` rows after its cursor,
writes them, and moves the cursor only after a 2xx. Points are idempotent (same measurement,
tags and timestamp overwrite), so rewriting after a crash or an ambiguous timeout stores
each reading exactly once.

Errors as Telegraf handles them: 413 splits the batch; 400/422 split it down to the
offending points, which are dropped, counted and logged; 401/403 keep everything buffered
and say the token is wrong; 429, 5xx and connection errors retry with backoff, honouring
Retry-After.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from iiot_codec import BY_NAME, CodecError, format_value

from ..logs import RateLimited
from ..model import TO_INFLUX, unit_of
from ..outbox import Outbox, Row
from ..stats import Stats
from .backoff import Backoff
from .wake import Wake

log = logging.getLogger("iiot_bridge.influx")

NAME = "influx"


@dataclass(frozen=True)
class InfluxConfig:
    url: str
    org: str
    bucket: str
    token: str | None
    batch_size: int = 5000
    flush_ms: int = 500
    timeout_s: float = 10.0
    retry_max_s: float = 60.0


class RetryLater(Exception):
    """The batch must stay buffered; try again after ``delay`` seconds (None: backoff)."""

    def __init__(self, message: str, delay: float | None = None, state: str = "") -> None:
        super().__init__(message)
        self.delay = delay
        self.state = state or message


_HEADS: dict[tuple[str, str, str | None], str] = {}  # (metric, node, sink) -> line start
_HEADS_MAX = 4096  # node ids are one byte, so real series stay far below this


def line_of(row: Row) -> str:
    """InfluxDB line protocol: measurement=metric, tags node, [sink,] unit; field value."""
    key = (row.metric, row.node, row.sink)
    head = _HEADS.get(key)
    if head is None:
        # Built once per series: this runs for every reading the sink writes.
        if len(_HEADS) >= _HEADS_MAX:
            _HEADS.clear()
        sink = f",sink={row.sink}" if row.sink else ""
        head = _HEADS[key] = f"{row.metric},node={row.node}{sink},unit={unit_of(row.metric)} value="
    if row.metric in BY_NAME:
        try:
            value = format_value(row.metric, row.value)
        except CodecError:
            value = repr(float(row.value))
    else:
        value = repr(float(row.value))
    return f"{head}{value} {row.ts_ns}"


def _retry_after(err: ApiException) -> float | None:
    headers = err.headers or {}
    raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def _body(err: ApiException) -> str:
    body = err.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return str(body or err.reason or "").strip()[:300]


class InfluxSink(threading.Thread):
    def __init__(
        self,
        config: InfluxConfig,
        outbox: Outbox,
        stats: Stats,
        wake: Wake,
        stop: threading.Event,
    ) -> None:
        super().__init__(name="influx-sink", daemon=True)
        self.config = config
        self.outbox = outbox
        self.stats = stats.sink(NAME)
        self.wake = wake
        self.stop = stop
        self.backoff = Backoff(1.0, config.retry_max_s)
        self.noisy = RateLimited(log, 30.0)
        self._state = ""
        self.client = InfluxDBClient(
            url=config.url,
            token=config.token or "",
            org=config.org,
            timeout=int(config.timeout_s * 1000),
        )
        self.write_api = self.client.write_api(write_options=SYNCHRONOUS)

    def _announce(self, state: str, level: int, msg: str, *args: object) -> None:
        if state != self._state:
            self._state = state
            log.log(level, msg, *args)

    def run(self) -> None:
        try:
            self.outbox.bookkeeping()
            self._loop()
        except Exception:  # the bridge must not lose a sink silently
            log.exception("InfluxDB sink stopped by an unexpected error")
            raise
        finally:
            self.client.close()
            self.outbox.close()

    def _loop(self) -> None:
        cursor = self.outbox.cursor(NAME)
        rows: list[Row] = []
        while not self.stop.is_set():
            if not rows:
                rows = self.outbox.fetch(cursor, self.config.batch_size)
                if not rows:
                    self.wake.wait(1.0)
                    self.wake.clear()
                    continue
                if len(rows) < self.config.batch_size:
                    # A partial batch: give it flush_ms to fill up (many lines arriving
                    # together become one request), then write whatever there is.
                    if self.stop.wait(self.config.flush_ms / 1000):
                        break
                    rows += self.outbox.fetch(rows[-1].id, self.config.batch_size - len(rows))
            if self._write_rows(rows):
                cursor = rows[-1].id
                self.outbox.set_cursor(NAME, cursor)
                rows = []
        # Shutdown: one last attempt for what is waiting (no retries).
        self._final_flush(cursor)

    def _final_flush(self, cursor: int) -> None:
        for _ in range(20):
            rows = self.outbox.fetch(cursor, self.config.batch_size)
            if not rows:
                return
            try:
                self._deliver([line_of(r) for r in rows if r.route & TO_INFLUX])
            except RetryLater:
                return
            cursor = rows[-1].id
            self.outbox.set_cursor(NAME, cursor)

    def _write_rows(self, rows: Sequence[Row]) -> bool:
        """Deliver one batch; True when done, False after waiting to retry."""
        lines = [line_of(r) for r in rows if r.route & TO_INFLUX]
        try:
            self._deliver(lines)
        except RetryLater as err:
            self.stats.connected = False
            self.stats.last_error = str(err)
            self.stats.retries += 1
            delay = err.delay if err.delay is not None else self.backoff.next()
            self._announce(
                err.state, logging.WARNING, "InfluxDB: %s; retrying (%.1f s)", err, delay
            )
            self.stop.wait(delay)
            return False
        if self._state != "ok":
            self._announce("ok", logging.INFO, "InfluxDB %s: writing", self.config.url)
        self.backoff.reset()
        self.stats.connected = True
        self.stats.last_error = ""
        return True

    def _deliver(self, lines: list[str]) -> None:
        """Write ``lines``, splitting on 413/400/422; raise RetryLater to keep them."""
        if not lines:
            return
        try:
            self.write_api.write(
                bucket=self.config.bucket,
                org=self.config.org,
                record="\n".join(lines).encode(),
                write_precision=WritePrecision.NS,
            )
        except ApiException as err:
            status = int(err.status or 0)
            if status in (413, 400, 422):
                if len(lines) == 1:
                    if status == 413:
                        detail = "a single point is larger than the server accepts"
                    else:
                        detail = _body(err)
                    self.stats.rejected += 1
                    self.noisy.warning(
                        f"reject{status}",
                        "InfluxDB refused a point (%d %s), dropped: %s",
                        status,
                        detail,
                        lines[0],
                    )
                    return
                # Halve until the bad points are isolated; rewriting good ones is harmless.
                half = len(lines) // 2
                self._deliver(lines[:half])
                self._deliver(lines[half:])
                return
            if status in (401, 403):
                raise RetryLater(
                    f"the InfluxDB token is wrong or lacks write access to bucket "
                    f"{self.config.bucket!r} (HTTP {status}); readings stay buffered, fix "
                    f"IIOT_INFLUX_TOKEN / --influx-token-file and restart",
                    state=f"auth{status}",
                ) from err
            if status == 429 or status >= 500:
                raise RetryLater(
                    f"server busy or failing (HTTP {status}: {_body(err)})",
                    _retry_after(err),
                    state=f"http{status}",
                ) from err
            raise RetryLater(
                f"unexpected HTTP {status}: {_body(err)}", state=f"http{status}"
            ) from err
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise RetryLater(
                f"cannot reach {self.config.url} ({type(err).__name__})", state="down"
            ) from err
        self.stats.delivered += len(lines)
