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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from iiot_codec import BY_NAME, CodecError, format_value

from ..catalog import BRIDGE_TAG, self_tag, unit_of
from ..logs import RateLimited
from ..model import ALL_KINDS, SELF
from ..outbox import Row
from ..settings import Group, setting
from .base import Done, RetryLater, SinkPlugin, SyncSink, http_url
from .mqtt_config import read_secret

log = logging.getLogger("iiot_bridge.influx")


def _url(value: str) -> str:
    http_url(value, "http[s]://host[:port]")
    return value.rstrip("/")


@dataclass
class InfluxSettings(Group):
    title = "InfluxDB"

    no_influx: bool = setting(False, "disable the InfluxDB sink")
    influx_url: str = setting("http://localhost:8086", "InfluxDB 2 URL", check=_url)
    influx_org: str = setting("iiot", "InfluxDB organisation")
    influx_bucket: str = setting("telemetry", "InfluxDB bucket")
    influx_token: str | None = setting(
        None, "InfluxDB token (prefer IIOT_INFLUX_TOKEN: a flag shows in the process list)",
        kind="secret",
    )  # fmt: skip
    influx_token_file: Path | None = setting(None, "file holding the InfluxDB token", kind="path")
    influx_batch_size: int = setting(5000, "points per InfluxDB write at most", low=1)
    influx_flush_ms: int = setting(
        200, "longest wait, ms, before a partial batch is written", low=1
    )
    influx_timeout: float = setting(10.0, "InfluxDB request timeout", kind="duration", low=0.1)

    def check(self) -> None:
        if self.influx_token_file:
            self.influx_token = read_secret(self.influx_token_file, "InfluxDB token")


_HEADS: dict[tuple[str, str, str | None, str], str] = {}  # (metric, node, sink, bridge) -> start
_HEADS_MAX = 4096  # node ids are one byte, so real series stay far below this


def line_of(row: Row, bridge: str = "") -> str:
    """InfluxDB line protocol: measurement=metric, tags node, unit and, for the bridge's
    own rows, ``bridge`` (its id) and their extra tag (``sink``, ``gateway``); field value."""
    own = row.kind == SELF
    key = (row.metric, row.node, row.sink, bridge if own else "")
    head = _HEADS.get(key)
    if head is None:
        # Built once per series: this runs for every reading the sink writes.
        if len(_HEADS) >= _HEADS_MAX:
            _HEADS.clear()
        tags = ""
        if own:
            tags += f",{BRIDGE_TAG}={bridge}" if bridge else ""
            tags += f",{self_tag(row.metric)}={row.sink}" if row.sink else ""
        elif row.sink:
            tags = f",sink={row.sink}"
        head = _HEADS[key] = f"{row.metric},node={row.node}{tags},unit={unit_of(row.metric)} value="
    if row.metric in BY_NAME:
        try:
            value = format_value(row.metric, row.value)
        except CodecError:
            value = repr(float(row.value))
    else:
        value = repr(float(row.value))
    return f"{head}{value} {row.ts_ns}"


def _retry_after(err: ApiException) -> float | None:
    headers = err.headers
    raw = headers.get("Retry-After") if headers is not None and hasattr(headers, "get") else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def _body(err: ApiException) -> str:
    body = err.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    return str(body or err.reason or "").strip()[:300]


class InfluxSink(SyncSink):
    name = "influx"
    title = "InfluxDB"
    accepts = ALL_KINDS

    def __init__(self, config: InfluxSettings, bridge_id: str = "") -> None:
        self.config = config
        self.bridge_id = bridge_id  # the `bridge` tag of the bridge's own rows
        self.target = config.influx_url
        self.batch_size = config.influx_batch_size
        self.linger_s = config.influx_flush_ms / 1000
        self.noisy = RateLimited(log, 30.0)
        self.client: InfluxDBClient | None = None
        if not config.influx_token:
            log.warning("no InfluxDB token set (IIOT_INFLUX_TOKEN or --influx-token-file)")

    def connect(self) -> None:
        cfg = self.config
        client = InfluxDBClient(
            url=cfg.influx_url,
            token=cfg.influx_token or "",
            org=cfg.influx_org,
            timeout=int(cfg.influx_timeout * 1000),
        )
        # /ping needs no token: "connected" means the server answers, whatever the token.
        if not client.ping():
            client.close()  # type: ignore[no-untyped-call]
            raise RetryLater(f"cannot reach {cfg.influx_url} (no answer to /ping)", state="down")
        self.write_api = client.write_api(write_options=SYNCHRONOUS)
        self.client = client

    def close(self, final: bool) -> None:
        client, self.client = self.client, None
        if client is not None:
            client.close()  # type: ignore[no-untyped-call]

    def write(self, rows: Sequence[Row]) -> Done:
        """Deliver one batch: every row is done (written or rejected) or RetryLater."""
        if not rows:
            return Done()
        self._rejected = 0
        bridge = self.bridge_id
        self._deliver([line_of(r, bridge) for r in rows])
        return Done(rows[-1].id, len(rows) - self._rejected, self._rejected)

    def _deliver(self, lines: list[str]) -> None:
        """Write ``lines``, splitting on 413/400/422; raise RetryLater to keep them."""
        if not lines:
            return
        try:
            self.write_api.write(
                bucket=self.config.influx_bucket,
                org=self.config.influx_org,
                record="\n".join(lines).encode(),
                # The client's annotation says WritePrecision; its values are the strings.
                write_precision=cast(WritePrecision, WritePrecision.NS),
            )
        except ApiException as err:
            status = int(err.status or 0)
            if status in (413, 400, 422):
                if len(lines) == 1:
                    if status == 413:
                        detail = "a single point is larger than the server accepts"
                    else:
                        detail = _body(err)
                    self._rejected += 1
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
                    f"token is wrong or lacks write access to bucket "
                    f"{self.config.influx_bucket!r} (HTTP {status}); readings stay buffered, fix "
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
                f"cannot reach {self.config.influx_url} ({type(err).__name__})", state="down"
            ) from err


PLUGIN = SinkPlugin(
    name=InfluxSink.name,
    settings=InfluxSettings,
    enabled=lambda cfg: not cfg.no_influx,
    build=lambda cfg, ctx: InfluxSink(cfg, ctx.bridge_id),
    off="--no-influx",
)
