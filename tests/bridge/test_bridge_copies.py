"""One bridge, several ports (issue 15), in process: the intake with the real outbox, and
Redis claims against a real redis-server: merged copies, late copies, out-of-order ports,
restarts, frames pending while Redis is away."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from iiot_bridge.dedup import LocalClaims, RedisClaims
from iiot_bridge.outbox import Outbox
from iiot_bridge.pending import Pending
from iiot_bridge.pipeline import Intake
from iiot_bridge.processors.copies import Decider
from iiot_bridge.stats import Stats
from iiot_codec import encode_line, encode_telemetry
from iiot_sim.localservers import Redis

NS = 1_000_000_000
T0 = 1_800_000_000 * NS


def line(fcnt: int, n: int, rssi: int = -70, snr: float = 5.0, node: int = 4) -> bytes:
    frame = encode_telemetry(node, fcnt, {"temperature": 20.0 + fcnt / 100}, full_counter=True)
    return encode_line(frame, rssi=rssi, snr=snr, n=n).encode()


def local(tmp_path: Path) -> tuple[Intake, Outbox, Stats]:
    outbox = Outbox(tmp_path / "outbox.sqlite3", ["mqtt"])
    stats = Stats()
    decider = Decider(LocalClaims(outbox, 3600), "b")
    return Intake(outbox, stats, decider=decider, single=None), outbox, stats


def rows(outbox: Outbox, metric: str) -> list[float]:
    return [r.value for r in outbox.fetch(0, 10000) if r.metric == metric]


def test_copies_that_arrive_together_are_one_record_with_the_best_link(tmp_path: Path) -> None:
    intake, outbox, stats = local(tmp_path)
    a, b = intake.inlet("gwA"), intake.inlet("gwB")
    acks = intake.process_ports(
        [(a, [(line(10, 1, rssi=-90, snr=1.0), T0)]), (b, [(line(10, 1, rssi=-60, snr=3.5), T0)])]
    )
    assert acks == [1, 1]  # each node2 is released, the copy's one too
    assert rows(outbox, "temperature") == [20.1]
    assert rows(outbox, "rssi") == [-60.0] and rows(outbox, "snr") == [3.5]
    assert rows(outbox, "gateways") == [2.0]
    assert stats.gateway("gwA").frames == stats.gateway("gwB").frames == 1
    assert stats.cross_duplicates == 1


def test_a_later_copy_is_a_duplicate_and_a_port_behind_loses_nothing(tmp_path: Path) -> None:
    intake, outbox, stats = local(tmp_path)
    a, b = intake.inlet("gwA"), intake.inlet("gwB")
    intake.process_ports([(a, [(line(10, 1), T0), (line(11, 2), T0 + NS)])])
    # gwB's lines come late (its node2 held them): one copy, and a frame gwA never heard.
    assert intake.process_ports([(b, [(line(9, 1), T0 + 2 * NS), (line(11, 2), T0 + 2 * NS)])]) == [
        2
    ]
    assert sorted(rows(outbox, "temperature")) == [20.09, 20.1, 20.11]
    assert stats.gateway("gwB").duplicates == 1 and stats.duplicates == 0


def test_after_a_restart_neither_resends_nor_copies_are_stored_again(tmp_path: Path) -> None:
    intake, outbox, _ = local(tmp_path)
    intake.process_ports([(intake.inlet("gwA"), [(line(10, 1), T0)])])
    outbox.close()
    again, outbox2, stats = local(tmp_path)
    a, b = again.inlet("gwA"), again.inlet("gwB")
    again.process_ports([(a, [(line(10, 1), T0 + NS)]), (b, [(line(10, 1), T0 + NS)])])
    assert rows(outbox2, "temperature") == [20.1]
    assert stats.duplicates == 1  # gwA's resend, by its own counter
    assert stats.gateway("gwB").duplicates == 1  # gwB's copy, by the claim in the outbox


def test_a_port_starts_from_the_counter_of_a_one_port_bridge(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3", ["mqtt"])
    Intake(outbox, Stats()).process([(line(10, 1), T0)])  # the plain path, key "node4"
    outbox.close()
    intake, outbox2, stats = local(tmp_path)
    intake.process_ports([(intake.inlet("gwA"), [(line(10, 1), T0 + NS)])])
    assert rows(outbox2, "temperature") == [20.1] and stats.duplicates == 1


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[Redis]:
    with Redis(tmp_path / "redis") as server:
        yield server


def test_frames_wait_while_redis_is_away_and_are_stored_once_after(
    tmp_path: Path, redis_server: Redis
) -> None:
    now = [0.0]

    def bridge(name: str) -> tuple[Intake, Outbox, Stats, Pending]:
        outbox = Outbox(tmp_path / f"{name}.sqlite3", ["mqtt"])
        claims = RedisClaims(redis_server.url, 3600, clock=lambda: now[0])
        pending = Pending(outbox)
        stats = Stats()
        decider = Decider(claims, name, pending)
        return (
            Intake(outbox, stats, decider=decider, pending=pending, single=None),
            outbox,
            stats,
            pending,
        )

    x, x_box, x_stats, x_pending = bridge("x")
    y, y_box, y_stats, _ = bridge("y")
    x.process_ports([(x.inlet("gw2"), [(line(1, 1), T0)])])
    y.process_ports([(y.inlet("gw100"), [(line(1, 1), T0)])])  # lost: x has it
    redis_server.kill()
    gw2, gw9 = x.inlet("gw2"), x.inlet("gw9")
    acks = x.process_ports([(gw2, [(line(2, 2), T0 + NS)]), (gw9, [(line(2, 1), T0 + NS)])])
    assert acks == [2, 1]  # acknowledged although undecided: node2 is not held up
    assert x.process_ports([(gw9, [(line(3, 2), T0 + 2 * NS)])]) == [2]
    assert x_pending.count == 2 and x_stats.pending_frames == 2
    assert x.process_ports([(gw2, [(line(3, 3), T0 + 2 * NS)])]) == [3]  # a waiting frame's copy
    assert x_stats.gateway("gw2").duplicates == 1
    assert rows(x_box, "temperature") == [20.01]  # nothing stored undecided
    redis_server.start()
    y.process_ports([(y.inlet("gw100"), [(line(3, 2), T0 + 3 * NS)])])  # y claims 3 first
    now[0] += 100
    assert x.settle_pending() == 2 and x_pending.count == 0
    assert rows(x_box, "temperature") == [20.01, 20.02]
    assert rows(y_box, "temperature") == [20.03]
    # gw9: its copy of 2 merged into gw2's, its 3 lost to y; y: its copy of 1 lost to x
    assert x_stats.gateway("gw9").duplicates == 2 and y_stats.gateway("gw100").duplicates == 1


def test_a_claim_won_before_a_crash_is_won_again_by_its_owner(
    tmp_path: Path, redis_server: Redis
) -> None:
    outbox = Outbox(tmp_path / "x.sqlite3", ["mqtt"])
    claims = RedisClaims(redis_server.url, 3600)
    # The bridge claimed frame 5 through gw2, then died before its commit (nothing stored).
    assert claims.claim({"node4:5": "x/gw2"}) == {"node4:5": "x/gw2"}
    stats = Stats()
    intake = Intake(outbox, stats, decider=Decider(claims, "x"), single="gw2")
    assert intake.process([(line(5, 1), T0)]) == 1  # node2 resends it after the restart
    assert rows(outbox, "temperature") == [20.05] and stats.cross_duplicates == 0
    other = Intake(Outbox(tmp_path / "y.sqlite3", ["mqtt"]), Stats(), decider=Decider(claims, "y"))
    other.process([(line(5, 1), T0)])  # another bridge's copy: lost
    assert other.stats.cross_duplicates == 1
