"""The durable outbox: every accepted reading on disk before node2 gets its ACK.

SQLite in WAL mode (standard library). One transaction stores a batch of readings *and* the
per-source last frame counters (the duplicate filter's state), so after a SIGKILL either
both are on disk or neither is: a line is never half-accepted. Each sink owns a cursor (the
highest id it has delivered without a gap); rows every active sink has passed are pruned.
Sinks read bounded batches from here, so memory stays flat however long an outage lasts;
disk use is bounded by size and age, dropping the oldest rows (counted) when over.

Each thread gets its own connection (sqlite3 connections are not shared across threads);
WAL lets the sinks read while the intake writes.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from .model import Reading

log = logging.getLogger("iiot_bridge.outbox")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- AUTOINCREMENT: ids never go back even when every row was pruned, so cursors stay valid.
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ns INTEGER NOT NULL,
    node TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    route INTEGER NOT NULL,
    sink TEXT,
    added REAL NOT NULL
);
-- Last accepted frame counter per source ("node1", "node2/stats"): the duplicate filter.
CREATE TABLE IF NOT EXISTS counters (source TEXT PRIMARY KEY, fcnt INTEGER NOT NULL);
-- When each node was last heard (availability survives a restart).
CREATE TABLE IF NOT EXISTS nodes (node TEXT PRIMARY KEY, last_seen_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, id INTEGER NOT NULL);
-- Every (node, metric) ever published: Home Assistant discovery can remove them all.
CREATE TABLE IF NOT EXISTS entities (node TEXT, metric TEXT, PRIMARY KEY (node, metric));
"""
_COLUMNS = "id, ts_ns, node, metric, value, route, sink"


class OutboxError(RuntimeError):
    """The outbox file cannot be opened or written (disk full, permissions, corruption)."""


class Row(NamedTuple):
    """A stored reading with its outbox id (a NamedTuple, like Reading: made per reading)."""

    id: int
    ts_ns: int
    node: str
    metric: str
    value: float
    route: int
    sink: str | None


@dataclass(frozen=True, slots=True)
class Dropped:
    """What a limit enforcement removed: rows some active sink had not delivered yet."""

    undelivered: int
    reason: str


class Outbox:
    """The outbox file at ``path``; ``sinks`` are the active sinks' names ("mqtt", "influx")."""

    def __init__(
        self,
        path: Path,
        sinks: Sequence[str],
        max_bytes: int = 256 * 1024 * 1024,
        max_age_s: float = 30 * 86400.0,
        synchronous: str = "FULL",
    ) -> None:
        self.path = Path(path)
        self.sinks = tuple(sinks)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.synchronous = synchronous
        self._local = threading.local()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._db()
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
        except (sqlite3.Error, OSError) as err:
            raise OutboxError(f"cannot open the outbox {self.path}: {err}") from err
        if version != SCHEMA_VERSION:
            raise OutboxError(f"outbox {self.path} has schema {version}, expected {SCHEMA_VERSION}")
        self._init_cursors()

    # -- connections ---------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit survives power loss; NORMAL: survives a process crash (SIGKILL).
            db.execute(f"PRAGMA synchronous={self.synchronous}")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def bookkeeping(self) -> None:
        """Mark the calling thread as one that only keeps books: sink cursors, pruning,
        limits, gauges. A write of such a thread that a power cut takes away only makes
        work be repeated (readings published or written again, rows pruned again), so its
        commits skip the fsync (``synchronous=NORMAL``: in WAL mode still safe against a
        crash, and the intake's next FULL commit syncs them too). Keeping these commits
        short also keeps the intake from waiting on their write lock (SQLite's busy
        handler sleeps in steps of milliseconds). The intake's own commits, the readings
        node2 is acknowledged for, keep the configured ``--outbox-sync``."""
        if self.synchronous.upper() in ("FULL", "EXTRA"):
            try:
                self._db().execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as err:  # only a speed-up: stay on the safe setting
                log.debug("outbox: cannot relax synchronous for bookkeeping: %s", err)

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _init_cursors(self) -> None:
        db = self._db()
        first = db.execute("SELECT MIN(id) FROM readings").fetchone()[0]
        start = (first - 1) if first is not None else self.max_id()
        for sink in self.sinks:
            # A sink seen for the first time delivers what is still in the outbox.
            db.execute("INSERT OR IGNORE INTO cursors VALUES (?, ?)", (sink, start))

    # -- intake --------------------------------------------------------------------------

    def commit(
        self,
        readings: Iterable[Reading],
        counters: dict[str, int],
        seen: dict[str, int] | None = None,
        meta: dict[str, int] | None = None,
    ) -> None:
        """Store readings, the sources' last counters, nodes' last-seen times and the intake's
        meta values (node2's acknowledged line number) in one transaction."""
        now = time.time()
        rows = [(r.ts_ns, r.node, r.metric, r.value, r.route, r.sink, now) for r in readings]
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO readings (ts_ns, node, metric, value, route, sink, added)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                if counters:
                    db.executemany(
                        "INSERT INTO counters VALUES (?, ?)"
                        " ON CONFLICT(source) DO UPDATE SET fcnt = excluded.fcnt",
                        counters.items(),
                    )
                if seen:
                    db.executemany(
                        "INSERT INTO nodes VALUES (?, ?)"
                        " ON CONFLICT(node) DO UPDATE SET last_seen_ns = excluded.last_seen_ns",
                        seen.items(),
                    )
                if meta:
                    db.executemany(
                        "INSERT INTO meta VALUES (?, ?)"
                        " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        meta.items(),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as err:
            raise OutboxError(f"outbox write failed: {err}") from err

    def meta(self, key: str) -> int | None:
        row = self._db().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else None

    def counters(self) -> dict[str, int]:
        return dict(self._db().execute("SELECT source, fcnt FROM counters").fetchall())

    def nodes_seen(self) -> dict[str, int]:
        return dict(self._db().execute("SELECT node, last_seen_ns FROM nodes").fetchall())

    # -- sinks ---------------------------------------------------------------------------

    def fetch(self, after_id: int, limit: int) -> list[Row]:
        """Up to ``limit`` rows with id > ``after_id``, oldest first."""
        cur = self._db().execute(
            f"SELECT {_COLUMNS} FROM readings WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return list(map(Row._make, cur.fetchall()))

    def cursor(self, sink: str) -> int:
        row = self._db().execute("SELECT id FROM cursors WHERE sink = ?", (sink,)).fetchone()
        return int(row[0]) if row else 0

    def set_cursor(self, sink: str, row_id: int) -> None:
        self._db().execute(
            "INSERT INTO cursors VALUES (?, ?) ON CONFLICT(sink) DO UPDATE SET id = excluded.id"
            " WHERE excluded.id > cursors.id",
            (sink, row_id),
        )

    def max_id(self) -> int:
        row = self._db().execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'")
        found = row.fetchone()
        return int(found[0]) if found else 0

    def backlog(self, sink: str, route_bit: int) -> int:
        """Rows waiting for ``sink``: after its cursor and routed to it."""
        row = (
            self._db()
            .execute(
                "SELECT COUNT(*) FROM readings WHERE id > ? AND (route & ?) != 0",
                (self.cursor(sink), route_bit),
            )
            .fetchone()
        )
        return int(row[0])

    def add_entities(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._db().executemany("INSERT OR IGNORE INTO entities VALUES (?, ?)", pairs)

    def entities(self) -> list[tuple[str, str]]:
        cur = self._db().execute("SELECT node, metric FROM entities ORDER BY node, metric")
        return [(str(n), str(m)) for n, m in cur.fetchall()]

    # -- housekeeping --------------------------------------------------------------------

    def _min_cursor(self) -> int:
        if not self.sinks:
            return self.max_id()
        marks = ",".join("?" * len(self.sinks))
        row = (
            self._db()
            .execute(f"SELECT MIN(id) FROM cursors WHERE sink IN ({marks})", self.sinks)
            .fetchone()
        )
        return int(row[0]) if row[0] is not None else 0

    def prune(self) -> int:
        """Delete rows every active sink has delivered; return how many."""
        cur = self._db().execute("DELETE FROM readings WHERE id <= ?", (self._min_cursor(),))
        return cur.rowcount

    def used_bytes(self) -> int:
        db = self._db()
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def enforce_limits(self, now: float | None = None) -> list[Dropped]:
        """Drop the oldest rows beyond the age and size limits; report undelivered losses."""
        now = time.time() if now is None else now
        dropped: list[Dropped] = []
        db = self._db()
        delivered_to_all = self._min_cursor()
        cutoff = now - self.max_age_s
        oldest = db.execute("SELECT added FROM readings ORDER BY id LIMIT 1").fetchone()
        # Rows are appended in time order: when the first is young enough, all are (and the
        # scan below, which has no index on `added`, is skipped on every normal round).
        while oldest is not None and oldest[0] < cutoff:
            rows = db.execute(
                "SELECT id FROM readings WHERE added < ? ORDER BY id LIMIT 5000", (cutoff,)
            ).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            n = db.execute(
                "DELETE FROM readings WHERE id <= ? AND added < ? AND id > ?",
                (last, cutoff, delivered_to_all),
            ).rowcount
            db.execute("DELETE FROM readings WHERE id <= ? AND added < ?", (last, cutoff))
            if n:
                dropped.append(Dropped(n, "age"))
        while self.used_bytes() > self.max_bytes:
            count = db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
            if not count:
                break
            chunk = max(1000, count // 20)
            last = db.execute(
                "SELECT MAX(id) FROM (SELECT id FROM readings ORDER BY id LIMIT ?)", (chunk,)
            ).fetchone()[0]
            n = db.execute(
                "SELECT COUNT(*) FROM readings WHERE id <= ? AND id > ?", (last, delivered_to_all)
            ).fetchone()[0]
            db.execute("DELETE FROM readings WHERE id <= ?", (last,))
            if n:
                dropped.append(Dropped(int(n), "size"))
        return dropped

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file so the WAL does not grow without end."""
        self._db().execute("PRAGMA wal_checkpoint(PASSIVE)")
