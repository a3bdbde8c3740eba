"""Frames waiting for the shared duplicate decision, kept in the outbox while Redis is away.

With ``--dedup-url``, a new frame is stored only once its claim is won (``dedup``). When
Redis cannot be reached the frame is not dropped and node2 is not kept waiting: its
readings go to the outbox table ``pending`` under the frame's claim key and owner, in the
same transaction as the port's counters and line number, and node2 gets its ACK as usual.
When Redis answers again the intake claims the pending keys, oldest first: a won key's
readings move to the outbox proper (the sinks then deliver them, with the time they were
taken), a lost key's are deleted and counted as cross-gateway duplicates. Both happen in
one transaction per batch, so a crash in between repeats the claim, which an owner wins
again: nothing is lost and nothing stored twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from .dedup import Claims, DedupUnavailable, Transactor
from .model import Reading
from .stats import Stats

if TYPE_CHECKING:
    from .outbox import Outbox

PENDING_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    owner TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    node TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    kind INTEGER NOT NULL,
    sink TEXT
);
CREATE INDEX IF NOT EXISTS pending_key ON pending (key);
"""
_CHUNK = 500  # host parameters per statement
BATCH = 200  # pending frames claimed per transaction once the claims are back


class Waiting(NamedTuple):
    """One pending frame: who asks for its claim, and its readings."""

    owner: str
    readings: list[Reading]


class Pending:
    """The ``pending`` table of the outbox."""

    def __init__(self, outbox: Transactor) -> None:
        self.outbox = outbox
        outbox.transact(lambda db: db.executescript(PENDING_SCHEMA), write=False)
        self.count = self.outbox.transact(self._keys, write=False)

    @staticmethod
    def _keys(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT COUNT(DISTINCT key) FROM pending").fetchone()[0])

    def holding(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` wait already: another port's copy of a waiting frame is a
        duplicate (that copy's claim settles it), so a key waits with one owner only."""
        if not self.count or not keys:
            return set()

        def read(db: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for i in range(0, len(keys), _CHUNK):
                chunk = list(keys[i : i + _CHUNK])
                marks = ",".join("?" * len(chunk))
                found.update(
                    k
                    for (k,) in db.execute(
                        f"SELECT DISTINCT key FROM pending WHERE key IN ({marks})", chunk
                    )
                )
            return found

        return self.outbox.transact(read, write=False)

    @staticmethod
    def stage(db: sqlite3.Connection, frames: dict[str, Waiting]) -> None:
        """Inside the intake's transaction: keep these frames for a later claim."""
        db.executemany(
            "INSERT INTO pending (key, owner, ts_ns, node, metric, value, kind, sink)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (key, w.owner, r.ts_ns, r.node, r.metric, r.value, r.kind, r.sink)
                for key, w in frames.items()
                for r in w.readings
            ],
        )

    def oldest(self, limit: int) -> dict[str, Waiting]:
        """Up to ``limit`` pending frames, oldest first, each with all its readings."""

        def read(db: sqlite3.Connection) -> dict[str, Waiting]:
            keys = [
                k
                for (k,) in db.execute(
                    "SELECT key FROM pending GROUP BY key ORDER BY MIN(id) LIMIT ?", (limit,)
                )
            ]
            out: dict[str, Waiting] = {}
            if not keys:
                return out
            marks = ",".join("?" * len(keys))
            rows = db.execute(
                "SELECT key, owner, node, metric, value, ts_ns, kind, sink FROM pending"
                f" WHERE key IN ({marks}) ORDER BY id",
                keys,
            )
            for key, owner, node, metric, value, ts_ns, kind, sink in rows:
                waiting = out.get(key)
                if waiting is None:
                    waiting = out[key] = Waiting(owner, [])
                waiting.readings.append(Reading(node, metric, value, ts_ns, kind, sink))
            return out

        return self.outbox.transact(read, write=False)

    @staticmethod
    def drop(db: sqlite3.Connection, keys: Iterable[str]) -> None:
        """Inside the transaction that settles these frames: they wait no longer."""
        db.executemany("DELETE FROM pending WHERE key = ?", [(k,) for k in keys])

    def settled(self, staged: Sequence[str], dropped: Sequence[str]) -> None:
        """After a successful commit: keep the count of pending frames current."""
        self.count += len(set(staged)) - len(set(dropped))


def settle(
    pending: Pending, claims: Claims, outbox: Outbox, stats: Stats
) -> tuple[int, list[Reading]]:
    """Claim the oldest pending frames; store those won, drop the others, in one outbox
    transaction. (How many were settled, the readings stored); (0, []) while the claims
    are still unreachable. OutboxError when the outbox cannot be written."""
    batch = pending.oldest(BATCH)
    if not batch:
        return 0, []
    try:
        result = claims.claim({key: w.owner for key, w in batch.items()})
    except DedupUnavailable:
        return 0, []
    readings: list[Reading] = []
    won: dict[str, str] = {}
    for key, w in batch.items():
        if result[key] == w.owner:
            readings += w.readings
            won[key] = w.owner
        else:  # another bridge (or port) stored it meanwhile
            stats.gateway(w.owner.split("/", 1)[-1]).duplicates += 1
            stats.cross_duplicates += 1
    keys = list(batch)

    def write(db: sqlite3.Connection) -> None:
        claims.persist(db, won)
        Pending.drop(db, keys)

    outbox.commit(readings, {}, extra=write)
    pending.settled([], keys)
    stats.pending_frames = pending.count
    stats.readings += len(readings)
    return len(keys), readings
