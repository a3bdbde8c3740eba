"""Who stores a frame that several gateways heard: one claim per (source, frame counter).

Copies of one air frame forwarded by two gateways carry the same source and frame counter
(``iiot_codec``), so "store it once" is a set-if-absent on that pair. The first bridge or
port to claim a key stores and publishes the frame; every other copy is acknowledged to its
gateway and counted as a cross-gateway duplicate. A claim names its **owner**,
``<bridge id>/<gateway>``: asking again for a key one already owns wins again, which is how
a bridge that claimed a frame and then died before storing it stores it after its restart
(its gateway sends the line again; that port's own counters say it was never stored).

Two implementations behind :class:`Claims`:

* :class:`LocalClaims`, for one bridge reading several ports: the claims live in the
  outbox (SQLite), written in the same transaction as the readings they decide, so a
  crash can never leave one without the other.
* :class:`RedisClaims`, for bridges on several hosts (``--dedup-url redis://...``): an
  atomic ``SET key owner NX EX ttl`` per key in Redis or Valkey. When the server cannot be
  reached, :meth:`Claims.claim` raises :class:`DedupUnavailable` at once (retrying with
  backoff in the background of later calls): the caller keeps the frame pending in its
  outbox, acknowledged to node2, and claims it when the server is back (``pipeline``).

A claim lives :func:`claim_ttl_s` seconds: longer than the longest a copy of a frame can
trail the first one. That is node1's queue horizon, ``queue_len`` readings at the report
interval ``interval_s`` (the firmware's defaults, ``iiot_codec.settings``): a reading a
gateway heard can still be on its way through another gateway's node2 and host until the
node has moved past it. Twice that horizon, as a margin for a host that was away.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

from iiot_codec.settings import SETTINGS

log = logging.getLogger("iiot_bridge.dedup")

_T = TypeVar("_T")
_FW: dict[str, Any] = {row[0]: row[1] for row in SETTINGS}

REDIS_TIMEOUT_S = 2.0
RETRY_FIRST_S = 1.0


def queue_horizon_s() -> float:
    """How long node1 keeps a reading queued at most with its default settings: a full
    queue (``queue_len``) at the default report interval (``interval_s``)."""
    return float(_FW["queue_len"]) * float(_FW["interval_s"])


def claim_ttl_s() -> float:
    """The default lifetime of a claim (see the module docstring)."""
    return 2.0 * queue_horizon_s()


def claim_key(source: str, fcnt: int) -> str:
    """The key of one frame: its source ("node4", "node4/stats") and 32-bit counter."""
    return f"{source}:{fcnt}"


class DedupUnavailable(Exception):
    """The shared claims cannot be reached now; nothing was decided."""


class Claims(Protocol):
    """The cross-gateway decision. ``wanted`` maps keys to the owner asking for each; the
    answer maps each key to its owner after the attempt (the asker: it stores the frame)."""

    name: str

    def claim(self, wanted: Mapping[str, str]) -> dict[str, str]: ...

    def persist(self, db: sqlite3.Connection, won: Mapping[str, str]) -> None:
        """Inside the outbox transaction that stores the frames ``won`` (key -> owner)."""

    def prune(self, now: float | None = None) -> int:
        """Forget expired claims; how many (housekeeping)."""

    def close(self) -> None: ...


class Transactor(Protocol):
    """What LocalClaims needs of the outbox: a function run with its connection."""

    def transact(self, fn: Callable[[sqlite3.Connection], _T], write: bool = True) -> _T: ...


# -- in the outbox: one bridge, several ports ----------------------------------------------

CLAIMS_SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL
) WITHOUT ROWID;
"""
_LOOKUP_CHUNK = 500  # SQLite's host parameters per statement stay well under its limit


class LocalClaims:
    """Claims in the outbox file (table ``claims``)."""

    name = "local"

    def __init__(self, outbox: Transactor, ttl_s: float) -> None:
        self.outbox = outbox
        self.ttl_s = ttl_s
        outbox.transact(lambda db: db.executescript(CLAIMS_SCHEMA), write=False)

    def claim(self, wanted: Mapping[str, str]) -> dict[str, str]:
        keys = list(wanted)
        now = time.time()

        def lookup(db: sqlite3.Connection) -> dict[str, str]:
            found: dict[str, str] = {}
            for i in range(0, len(keys), _LOOKUP_CHUNK):
                chunk = keys[i : i + _LOOKUP_CHUNK]
                marks = ",".join("?" * len(chunk))
                found.update(
                    db.execute(
                        f"SELECT key, owner FROM claims WHERE expires > ? AND key IN ({marks})",
                        [now, *chunk],
                    ).fetchall()
                )
            return found

        held = self.outbox.transact(lookup, write=False) if keys else {}
        return {key: held.get(key, owner) for key, owner in wanted.items()}

    def persist(self, db: sqlite3.Connection, won: Mapping[str, str]) -> None:
        expires = time.time() + self.ttl_s
        db.executemany(
            "INSERT INTO claims VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE"
            " SET owner = excluded.owner, expires = excluded.expires",
            [(key, owner, expires) for key, owner in won.items()],
        )

    def prune(self, now: float | None = None) -> int:
        when = time.time() if now is None else now
        return self.outbox.transact(
            lambda db: db.execute("DELETE FROM claims WHERE expires <= ?", (when,)).rowcount
        )

    def close(self) -> None:
        """Nothing of its own to close (the outbox's connections)."""


# -- Redis / Valkey: bridges on several hosts ------------------------------------------------


def check_redis_url(url: str) -> str:
    """``redis://host[:port][/db]`` or ``rediss://`` (TLS); ValueError saying what is wrong.
    A password belongs in IIOT_DEDUP_PASSWORD or --dedup-password-file, never the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise ValueError(f"scheme must be redis:// or rediss://, got {url!r}")
    if parts.password is not None:
        raise ValueError(
            "do not put the password in the URL; use IIOT_DEDUP_PASSWORD or --dedup-password-file"
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as err:
        raise ValueError(f"bad port in {url!r}") from err
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the path of {url!r} must be a database number")
    return url


class RedisClaims:
    """Claims in Redis or Valkey: ``<namespace>:dedup:<source>:<fcnt>`` = owner, with a TTL."""

    name = "redis"

    def __init__(
        self,
        url: str,
        ttl_s: float,
        namespace: str = "iiot",
        password: str | None = None,
        client_name: str = "iiot-bridge",
        retry_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            import redis
        except ImportError as err:  # a dependency of the package: a broken install
            raise ImportError(
                "--dedup-url needs the Python package redis (a dependency of "
                "iiot-lora-telemetry: reinstall it, e.g. make install)"
            ) from err
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.url = url
        self.ttl = max(1, int(round(ttl_s)))
        self.prefix = f"{namespace}:dedup:"
        self.client = redis.Redis.from_url(
            url,
            password=password,
            decode_responses=True,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            client_name=client_name,
        )
        self.retry_max_s = retry_max_s
        self.clock = clock
        self._retry_s = RETRY_FIRST_S
        self._down_until = 0.0
        self._down_since: float | None = None
        self._checked = False
        self.last_error = ""

    @property
    def available(self) -> bool:
        """False while the server is known to be away (between retries)."""
        return self._down_since is None

    def _failed(self, err: BaseException) -> DedupUnavailable:
        now = self.clock()
        if self._down_since is None:
            self._down_since = now
            log.warning(
                "dedup: Redis %s unreachable (%s); keeping undecided frames pending in the "
                "outbox, retrying",
                self.url,
                err,
            )
        else:
            self._retry_s = min(self._retry_s * 2, self.retry_max_s)
        self._down_until = now + self._retry_s
        self.last_error = str(err)
        return DedupUnavailable(f"Redis {self.url}: {err}")

    def _back(self) -> None:
        if self._down_since is not None:
            log.warning(
                "dedup: Redis %s reachable again after %.0f s",
                self.url,
                self.clock() - self._down_since,
            )
        self._down_since = None
        self._retry_s = RETRY_FIRST_S
        self.last_error = ""
        if not self._checked:
            self._checked = True
            self._check_persistence()

    def _check_persistence(self) -> None:
        # A Redis that keeps its keys in memory only forgets every claim when it restarts:
        # a copy arriving after that would be stored a second time. Say so once.
        try:
            config = self.client.config_get("appendonly")
        except self._errors:
            return  # CONFIG may be renamed or refused (managed services): cannot tell
        if config.get("appendonly") == "no":
            log.warning(
                "dedup: Redis %s runs without its append-only file (appendonly no): a Redis "
                "restart forgets the claims, and copies of frames arriving after it may be "
                "stored twice; set appendonly yes (docs/gateways.md)",
                self.url,
            )

    def claim(self, wanted: Mapping[str, str]) -> dict[str, str]:
        if not wanted:
            return {}
        if self._down_since is not None and self.clock() < self._down_until:
            raise DedupUnavailable(f"Redis {self.url}: {self.last_error} (retrying)")
        keys: Sequence[str] = list(wanted)
        try:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                # SET NX decides atomically; the GET after it reads the winner either way.
                pipe.set(self.prefix + key, wanted[key], nx=True, ex=self.ttl)
                pipe.get(self.prefix + key)
            replies = pipe.execute()
        except self._errors as err:
            raise self._failed(err) from err
        self._back()
        owners: dict[str, str] = {}
        for i, key in enumerate(keys):
            owner = replies[2 * i + 1]
            # None: the key expired between the two commands (a TTL of seconds): ours.
            owners[key] = wanted[key] if owner is None else str(owner)
        return owners

    def persist(self, db: sqlite3.Connection, won: Mapping[str, str]) -> None:
        """Nothing to write locally: the claim is in Redis already."""

    def prune(self, now: float | None = None) -> int:
        return 0  # Redis expires its keys itself

    def close(self) -> None:
        with contextlib.suppress(*self._errors):
            self.client.close()
