"""The cross-gateway claims (issue 15): in the outbox file and in a real redis-server."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from iiot_bridge.dedup import (
    DedupUnavailable,
    LocalClaims,
    RedisClaims,
    check_redis_url,
    claim_key,
    claim_ttl_s,
    queue_horizon_s,
)
from iiot_bridge.model import LINK, Reading
from iiot_bridge.pending import Pending, Waiting
from iiot_codec.settings import SETTINGS
from iiot_sim.localservers import Redis

T = TypeVar("T")


class Db:
    """A SQLite file with the outbox's transact() contract."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)

    def transact(self, fn: Callable[[sqlite3.Connection], T], write: bool = True) -> T:
        if not write:
            return fn(self.conn)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(self.conn)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return result


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    with Redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


def test_the_claim_outlives_node1s_queue_horizon() -> None:
    fw = {row[0]: row[1] for row in SETTINGS}
    horizon = fw["queue_len"] * fw["interval_s"]
    assert queue_horizon_s() == horizon
    assert claim_ttl_s() > horizon


def test_redis_urls_are_checked() -> None:
    assert check_redis_url("redis://cache:6380/2") == "redis://cache:6380/2"
    for bad in ("http://x", "redis://:secret@x", "redis://x:port", "redis:///0", "redis://x/a"):
        with pytest.raises(ValueError):
            check_redis_url(bad)


def test_local_claims_first_owner_wins_until_expiry(tmp_path: Path) -> None:
    db = Db(tmp_path / "outbox.sqlite3")
    claims = LocalClaims(db, ttl_s=60)
    k1, k2 = claim_key("node4", 10), claim_key("node4", 11)
    first = claims.claim({k1: "b/gw2", k2: "b/gw2"})
    assert first == {k1: "b/gw2", k2: "b/gw2"}
    db.transact(lambda c: claims.persist(c, {k1: "b/gw2"}))  # only k1 was stored
    assert claims.claim({k1: "b/gw100", k2: "b/gw100"}) == {k1: "b/gw2", k2: "b/gw100"}
    assert claims.prune(time.time() + 30) == 0
    assert claims.prune(time.time() + 61) == 1
    assert claims.claim({k1: "b/gw100"}) == {k1: "b/gw100"}


def test_local_claims_are_written_with_the_transaction_or_not_at_all(tmp_path: Path) -> None:
    db = Db(tmp_path / "outbox.sqlite3")
    claims = LocalClaims(db, ttl_s=60)
    key = claim_key("node1", 5)

    def fails(c: sqlite3.Connection) -> None:
        claims.persist(c, {key: "b/gw2"})
        raise OSError("disk full")

    with pytest.raises(OSError):
        db.transact(fails)
    assert claims.claim({key: "b/gw100"}) == {key: "b/gw100"}


def test_redis_claims_set_if_absent_with_a_ttl(redis_server: Redis) -> None:
    a = RedisClaims(redis_server.url, ttl_s=120, namespace="t1")
    b = RedisClaims(redis_server.url, ttl_s=120, namespace="t1")
    keys = [claim_key("node4", n) for n in range(3)]
    assert a.claim(dict.fromkeys(keys[:2], "A/gw2")) == dict.fromkeys(keys[:2], "A/gw2")
    assert b.claim(dict.fromkeys(keys, "B/gw100")) == {
        keys[0]: "A/gw2",
        keys[1]: "A/gw2",
        keys[2]: "B/gw100",
    }
    assert a.claim({keys[0]: "A/gw2"}) == {keys[0]: "A/gw2"}  # an owner asking again wins
    ttl = a.client.ttl(f"t1:dedup:{keys[0]}")
    assert 100 < int(ttl) <= 120  # type: ignore[arg-type]
    other = RedisClaims(redis_server.url, ttl_s=120, namespace="t2")  # another site
    assert other.claim({keys[0]: "C/gw7"}) == {keys[0]: "C/gw7"}
    for c in (a, b, other):
        c.close()


def test_redis_away_is_reported_at_once_and_claims_survive_a_kill(tmp_path: Path) -> None:
    now = [0.0]
    with Redis(tmp_path / "redis") as server:
        claims = RedisClaims(server.url, ttl_s=600, namespace="k", clock=lambda: now[0])
        key = claim_key("node3", 77)
        assert claims.claim({key: "A/gw2"}) == {key: "A/gw2"}
        server.kill()
        with pytest.raises(DedupUnavailable):
            claims.claim({key: "A/gw2"})
        assert not claims.available
        server.start()
        # Within the retry delay it does not even try: the intake is never held up.
        with pytest.raises(DedupUnavailable, match="retrying"):
            claims.claim({key: "B/gw100"})
        now[0] += 60
        assert claims.claim({key: "B/gw100"}) == {key: "A/gw2"}  # the append-only file kept it
        assert claims.available
        claims.close()


def test_a_redis_without_persistence_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Redis(tmp_path / "redis", appendonly=False) as server:
        claims = RedisClaims(server.url, ttl_s=60)
        with caplog.at_level(logging.WARNING, logger="iiot_bridge.dedup"):
            claims.claim({claim_key("node1", 1): "A/gw2"})
        claims.close()
    assert "appendonly" in caplog.text


def _readings(node: str, n: int) -> list[Reading]:
    return [
        Reading(node, "temperature", 20.0 + n, 1_000 + n),
        Reading(node, "rssi", -50.0, 9, LINK),
    ]


def test_pending_frames_wait_with_one_owner_and_come_back_oldest_first(tmp_path: Path) -> None:
    db = Db(tmp_path / "outbox.sqlite3")
    pending = Pending(db)
    frames = {
        claim_key("node1", 2): Waiting("A/gw2", _readings("node1", 2)),
        claim_key("node1", 1): Waiting("A/gw100", _readings("node1", 1)),
    }
    db.transact(lambda c: Pending.stage(c, frames))
    pending.settled(list(frames), [])
    assert pending.count == 2
    assert pending.holding([claim_key("node1", 1), claim_key("node1", 3)]) == {
        claim_key("node1", 1)
    }
    oldest = pending.oldest(1)
    assert oldest == {claim_key("node1", 2): frames[claim_key("node1", 2)]}
    assert Pending(db).count == 2  # counted again from the file
    db.transact(lambda c: Pending.drop(c, list(oldest)))
    pending.settled([], list(oldest))
    assert pending.oldest(10) == {claim_key("node1", 1): frames[claim_key("node1", 1)]}
    assert pending.count == 1
