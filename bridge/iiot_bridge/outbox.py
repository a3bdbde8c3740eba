"""The durable outbox: every accepted reading on disk before node2 gets its ACK.

SQLite in WAL mode (standard library). One transaction stores a batch of readings *and* the
per-source last frame counters (the duplicate filter's state), so after a SIGKILL either
both are on disk or neither is: a line is never half-accepted. Each sink owns a cursor (the
highest id it has delivered without a gap); rows every active sink has passed are pruned.
Sinks read bounded batches from here, so memory stays flat however long an outage lasts;
disk use is bounded by size and age, dropping the oldest rows (counted) when over.

Every method raises :class:`OutboxError` and nothing else when SQLite fails (disk full, a
read-only file system, an I/O error): callers handle one exception type, and a failed call
drops this thread's connection so the next call starts on a fresh one.

Each thread gets its own connection (sqlite3 connections are not shared across threads);
WAL lets the sinks read while the intake writes.

Schema 2 stores each row's kind (reading, link, self) instead of schema 1's per-row sink
bitmask; a schema 1 file is migrated in place, in one transaction, when it is opened.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

from .model import Kind, Reading

log = logging.getLogger("iiot_bridge.outbox")
_T = TypeVar("_T")

SCHEMA_VERSION = 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- AUTOINCREMENT: ids never go back even when every row was pruned, so cursors stay valid.
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ns INTEGER NOT NULL,
    node TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    kind INTEGER NOT NULL,
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
-- Settings sent down to a node (node id, downlink tag) that it has not confirmed yet.
-- since_ns: when the bridge took the request, so "pending since" survives a restart.
CREATE TABLE IF NOT EXISTS downlinks (node INTEGER, tag INTEGER, value INTEGER NOT NULL,
    since_ns INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (node, tag));
"""
# Schema 1 kept a bitmask per row: 1 MQTT, 2 InfluxDB, 4 retained.
_MIGRATE_1_TO_2 = (
    "ALTER TABLE readings RENAME COLUMN route TO kind",
    f"UPDATE readings SET kind = CASE WHEN kind & 4 THEN {Kind.READING}"
    f" WHEN kind & 1 THEN {Kind.LINK} ELSE {Kind.SELF} END",
    "UPDATE meta SET value = 2 WHERE key = 'schema'",
)
_COLUMNS = "id, ts_ns, node, metric, value, kind, sink"


class OutboxError(RuntimeError):
    """The outbox file cannot be opened, read or written (disk full, read-only, corrupt)."""


class Row(NamedTuple):
    """A stored reading with its outbox id (a NamedTuple, like Reading: made per reading)."""

    id: int
    ts_ns: int
    node: str
    metric: str
    value: float
    kind: int
    sink: str | None


@dataclass(frozen=True, slots=True)
class Dropped:
    """What a limit enforcement removed: rows some active sink had not delivered yet."""

    undelivered: int
    reason: str


def _describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    if "disk is full" in text or "database or disk is full" in text:
        return f"{text} (the disk holding the outbox is full)"
    if "readonly" in text or "read-only" in text:
        return f"{text} (the outbox's directory or file system is read-only)"
    return text


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
        self._open()

    # -- connections ---------------------------------------------------------------------

    def _open(self) -> None:
        if not self.path.parent.is_dir():
            raise OutboxError(f"cannot open the outbox {self.path}: its directory is missing")
        existed = self.path.exists() and self.path.stat().st_size > 0
        try:
            db = self._db()
            if existed:
                self._check(db)
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
            if version == 1:
                self._migrate(db)
            elif version != SCHEMA_VERSION:
                raise OutboxError(
                    f"outbox {self.path} has schema {version}, this bridge reads schema "
                    f"{SCHEMA_VERSION} (written by a newer bridge?); refusing to start"
                )
            self._init_cursors()
        except sqlite3.OperationalError as err:  # disk full, read-only, locked, I/O
            self._drop()
            raise OutboxError(f"cannot open the outbox {self.path}: {_describe(err)}") from err
        except sqlite3.DatabaseError as err:  # not a database, or damaged
            self._drop()
            raise OutboxError(
                f"the outbox {self.path} is not a usable SQLite database ({err}); refusing "
                "to start rather than begin an empty one: restore it from a backup, or move "
                "it aside to start empty (its undelivered readings are then lost)"
            ) from err
        except (sqlite3.Error, OSError) as err:
            self._drop()
            raise OutboxError(f"cannot open the outbox {self.path}: {_describe(err)}") from err

    def _check(self, db: sqlite3.Connection) -> None:
        """Refuse a damaged file: a quick structural check of every page."""
        result = db.execute("PRAGMA quick_check(1)").fetchone()
        if result is None or result[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {result and result[0]}")

    def _migrate(self, db: sqlite3.Connection) -> None:
        log.info("outbox %s: migrating schema 1 to %d", self.path, SCHEMA_VERSION)
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _MIGRATE_1_TO_2:
                db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            self._rollback(db)
            raise

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                # FULL: a commit survives power loss; NORMAL: survives a process crash.
                db.execute(f"PRAGMA synchronous={self._sync_mode()}")
                db.execute("PRAGMA busy_timeout=30000")
            except BaseException:
                db.close()
                raise
            self._local.db = db
        return db

    def _sync_mode(self) -> str:
        bookkeeping = getattr(self._local, "bookkeeping", False)
        if bookkeeping and self.synchronous.upper() in ("FULL", "EXTRA"):
            return "NORMAL"
        return self.synchronous

    def _drop(self) -> None:
        db = getattr(self._local, "db", None)
        self._local.db = None
        if db is not None:
            with contextlib.suppress(sqlite3.Error):
                db.close()

    @staticmethod
    def _rollback(db: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):
            if db.in_transaction:
                db.execute("ROLLBACK")

    def _failed(self, what: str, err: BaseException) -> OutboxError:
        """The OutboxError for a failed call; drops this thread's connection (after a
        failed write it may be in a state best not reused)."""
        self._drop()
        return OutboxError(f"outbox {what} failed: {_describe(err)}")

    def bookkeeping(self) -> None:
        """Mark the calling thread as one that only keeps books: sink cursors, pruning,
        limits, gauges. A write of such a thread that a power cut takes away only makes
        work be repeated (readings published or written again, rows pruned again), so its
        commits skip the fsync (``synchronous=NORMAL``: in WAL mode still safe against a
        crash, and the intake's next FULL commit syncs them too). Keeping these commits
        short also keeps the intake from waiting on their write lock (SQLite's busy
        handler sleeps in steps of milliseconds). The intake's own commits, the readings
        node2 is acknowledged for, keep the configured ``--outbox-sync``."""
        self._local.bookkeeping = True
        self._drop()  # reopened with the relaxed setting on the next call

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop()

    def _init_cursors(self) -> None:
        db = self._db()
        first = db.execute("SELECT MIN(id) FROM readings").fetchone()[0]
        start = (first - 1) if first is not None else self._max_id(db)
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
        extra: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Store readings, the sources' last counters, nodes' last-seen times and the intake's
        meta values (node2's acknowledged line number) in one transaction; ``extra`` writes
        other modules' rows in it too (the cross-gateway claims, pending frames)."""
        now = time.time()
        rows = [(r.ts_ns, r.node, r.metric, r.value, r.kind, r.sink, now) for r in readings]
        try:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO readings (ts_ns, node, metric, value, kind, sink, added)"
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
                if extra is not None:
                    extra(db)
                db.execute("COMMIT")
            except BaseException:
                self._rollback(db)
                raise
        except (sqlite3.Error, OSError) as err:
            raise self._failed("write", err) from err

    def transact(self, fn: Callable[[sqlite3.Connection], _T], write: bool = True) -> _T:
        """``fn`` with this thread's connection (in one transaction when ``write``), for the
        tables other modules keep in this file (``dedup``, ``pending``); OutboxError as
        every other call."""
        try:
            db = self._db()
            if not write:
                return fn(db)
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
                db.execute("COMMIT")
            except BaseException:
                self._rollback(db)
                raise
            return result
        except (sqlite3.Error, OSError) as err:
            raise self._failed("write" if write else "read", err) from err

    def meta(self, key: str) -> int | None:
        try:
            db = self._db()
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except (sqlite3.Error, OSError) as err:
            raise self._failed("read", err) from err
        return int(row[0]) if row else None

    def counters(self) -> dict[str, int]:
        try:
            db = self._db()
            return dict(db.execute("SELECT source, fcnt FROM counters").fetchall())
        except (sqlite3.Error, OSError) as err:
            raise self._failed("read", err) from err

    def nodes_seen(self) -> dict[str, int]:
        try:
            db = self._db()
            return dict(db.execute("SELECT node, last_seen_ns FROM nodes").fetchall())
        except (sqlite3.Error, OSError) as err:
            raise self._failed("read", err) from err

    # -- sinks ---------------------------------------------------------------------------

    def fetch(self, after_id: int, limit: int) -> list[Row]:
        """Up to ``limit`` rows with id > ``after_id``, oldest first."""
        try:
            db = self._db()
            cur = db.execute(
                f"SELECT {_COLUMNS} FROM readings WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            )
            return list(map(Row._make, cur.fetchall()))
        except (sqlite3.Error, OSError) as err:
            raise self._failed("read", err) from err

    def cursor(self, sink: str) -> int:
        try:
            db = self._db()
            row = db.execute("SELECT id FROM cursors WHERE sink = ?", (sink,)).fetchone()
        except (sqlite3.Error, OSError) as err:
            raise self._failed("read", err) from err
        return int(row[0]) if row else 0

    def set_cursor(self, sink: str, row_id: int) -> None:
        try:
            db = self._db()
            db.execute(
                "INSERT INTO cursors VALUES (?, ?) ON CONFLICT(sink) DO UPDATE"
                " SET id = excluded.id WHERE excluded.id > cursors.id",
                (sink, row_id),
            )
        except (sqlite3.Error, OSError) as err:
            raise self._failed("cursor write", err) from err

    @staticmethod
    def _max_id(db: sqlite3.Connection) -> int:
        found = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'readings'").fetchone()
        return int(found[0]) if found else 0

    def backlog(self, sink: str, kinds: Iterable[int]) -> int:
        """Rows waiting for ``sink``: after its cursor and of a kind it accepts."""
        wanted = sorted(int(k) for k in kinds)
        marks = ",".join("?" * len(wanted))
        try:
            db = self._db()
            found = db.execute("SELECT id FROM cursors WHERE sink = ?", (sink,)).fetchone()
            row = db.execute(
                f"SELECT COUNT(*) FROM readings WHERE id > ? AND kind IN ({marks})",
                (int(found[0]) if found else 0, *wanted),
            ).fetchone()
        except (sqlite3.Error, OSError) as err:
            raise self._failed("read", err) from err
        return int(row[0])

    def add_entities(self, pairs: Iterable[tuple[str, str]]) -> None:
        try:
            db = self._db()
            db.executemany("INSERT OR IGNORE INTO entities VALUES (?, ?)", pairs)
        except (sqlite3.Error, OSError) as err:
            raise self._failed("write", err) from err

    def entities(self) -> list[tuple[str, str]]:
        try:
            db = self._db()
            cur = db.execute("SELECT node, metric FROM entities ORDER BY node, metric")
            return [(str(n), str(m)) for n, m in cur.fetchall()]
        except (sqlite3.Error, OSError) as err:
            raise self._failed("read", err) from err

    def downlinks(self) -> dict[tuple[int, int], tuple[int, int]]:
        """Pending settings: (node id, tag) -> (value, since_ns: when it was requested)."""
        try:
            db = self._db()
            rows = db.execute("SELECT node, tag, value, since_ns FROM downlinks").fetchall()
        except (sqlite3.Error, OSError) as err:
            raise self._failed("read", err) from err
        return {(int(n), int(t)): (int(v), int(s)) for n, t, v, s in rows}

    def set_downlink(self, node: int, tag: int, value: int | None, since_ns: int = 0) -> None:
        """Keep (or, with ``value`` None, forget) a setting until the node confirms it."""
        try:
            db = self._db()
            if value is None:
                db.execute("DELETE FROM downlinks WHERE node = ? AND tag = ?", (node, tag))
            else:
                db.execute(
                    "INSERT INTO downlinks VALUES (?, ?, ?, ?) ON CONFLICT(node, tag)"
                    " DO UPDATE SET value = excluded.value, since_ns = excluded.since_ns",
                    (node, tag, value, since_ns),
                )
        except (sqlite3.Error, OSError) as err:
            raise self._failed("write", err) from err

    # -- housekeeping --------------------------------------------------------------------

    def _min_cursor(self, db: sqlite3.Connection) -> int:
        if not self.sinks:
            return self._max_id(db)
        marks = ",".join("?" * len(self.sinks))
        row = db.execute(
            f"SELECT MIN(id) FROM cursors WHERE sink IN ({marks})", self.sinks
        ).fetchone()
        return int(row[0]) if row[0] is not None else 0

    def prune(self) -> int:
        """Delete rows every active sink has delivered; return how many."""
        try:
            db = self._db()
            cur = db.execute("DELETE FROM readings WHERE id <= ?", (self._min_cursor(db),))
            return cur.rowcount
        except (sqlite3.Error, OSError) as err:
            raise self._failed("prune", err) from err

    @staticmethod
    def _used_bytes(db: sqlite3.Connection) -> int:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def enforce_limits(self, now: float | None = None) -> list[Dropped]:
        """Drop the oldest rows beyond the age and size limits; report undelivered losses."""
        now = time.time() if now is None else now
        dropped: list[Dropped] = []
        try:
            db = self._db()
            delivered_to_all = self._min_cursor(db)
            cutoff = now - self.max_age_s
            oldest = db.execute("SELECT added FROM readings ORDER BY id LIMIT 1").fetchone()
            # Rows are appended in time order: when the first is young enough, all are (and
            # the scan below, which has no index on `added`, is skipped on every normal round).
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
            while self._used_bytes(db) > self.max_bytes:
                count = db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
                if not count:
                    break
                chunk = max(1000, count // 20)
                last = db.execute(
                    "SELECT MAX(id) FROM (SELECT id FROM readings ORDER BY id LIMIT ?)", (chunk,)
                ).fetchone()[0]
                n = db.execute(
                    "SELECT COUNT(*) FROM readings WHERE id <= ? AND id > ?",
                    (last, delivered_to_all),
                ).fetchone()[0]
                db.execute("DELETE FROM readings WHERE id <= ?", (last,))
                if n:
                    dropped.append(Dropped(int(n), "size"))
        except (sqlite3.Error, OSError) as err:
            raise self._failed("limit enforcement", err) from err
        return dropped

    def checkpoint(self) -> None:
        """Fold the WAL back into the database file so the WAL does not grow without end."""
        try:
            db = self._db()
            db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except (sqlite3.Error, OSError) as err:
            raise self._failed("checkpoint", err) from err
