"""Processors and outbox in process: parsing, MIC, duplicate rule, timestamps, limits."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from iiot_bridge.availability import OFFLINE, ONLINE, Availability
from iiot_bridge.model import Kind, Reading
from iiot_bridge.outbox import Outbox
from iiot_bridge.pipeline import Intake
from iiot_bridge.processors.keys import KeysError, parse_keys
from iiot_bridge.stats import Stats
from iiot_codec import encode_line, encode_readings, encode_stats, encode_telemetry

KEY = bytes(range(16))
PRAGMAS = ("page_count", "freelist_count", "page_size")
NS = 1_000_000_000


def make(tmp_path: Path, keys: dict[int, bytes] | None = None) -> tuple[Intake, Outbox, Stats]:
    outbox = Outbox(tmp_path / "outbox.sqlite3", ["mqtt", "influx"])
    stats = Stats()
    return Intake(outbox, stats, keys), outbox, stats


def line(frame: bytes, n: int | None = None, **kw: float) -> bytes:
    return encode_line(frame, n=n, **kw).encode()


def stored(outbox: Outbox) -> list[tuple[str, str, float, int]]:
    return [(r.node, r.metric, r.value, r.ts_ns) for r in outbox.fetch(0, 10000)]


def test_frames_become_readings_stamped_with_their_age(tmp_path: Path) -> None:
    intake, outbox, stats = make(tmp_path)
    t = 1_800_000_000 * NS
    f1 = encode_telemetry(1, 7, {"temperature": 21.5, "humidity": 40.25}, age_ms=30_000)
    f2 = encode_stats(2, 3, {"packets_received": 9})
    ack = intake.process([(line(f1, 1, rssi=-61, snr=-2.25), t), (line(f2, 2), t)])
    assert ack == 2
    rows = stored(outbox)
    assert ("node1", "temperature", 21.5, t - 30 * NS) in rows
    assert ("node1", "humidity", 40.25, t - 30 * NS) in rows
    assert ("node1", "rssi", -61.0, t) in rows and ("node1", "snr", -2.25, t) in rows
    assert [r[:3] for r in rows if r[0] == "node2"] == [("node2", "packets_received", 9.0)]
    # two lines received together still get distinct timestamps
    assert len({r[3] for r in rows if r[1] in ("rssi", "packets_received")}) == 2
    assert stats.frames == 2 and stats.readings == 5


def test_duplicates_and_resends_are_dropped_across_restarts(tmp_path: Path) -> None:
    intake, outbox, stats = make(tmp_path)
    t = 1_800_000_000 * NS
    frames = [encode_telemetry(1, c, {"temperature": c}) for c in (100, 101, 102)]
    intake.process([(line(f, i), t + i) for i, f in enumerate(frames, 1)])
    # node2 resends after a bridge restart: the new Intake reads the counters from disk.
    intake2 = Intake(outbox, stats)
    assert intake2.process([(line(frames[1], 2), t + 10), (line(frames[2], 3), t + 11)]) == 3
    assert stats.duplicates == 2
    assert [r[2] for r in stored(outbox)] == [100.0, 101.0, 102.0]
    # A STATS frame keeps its own counter window: counter 1 is new for node2/stats.
    intake2.process([(line(encode_stats(1, 1, {"uptime": 5})), t + 12)])
    assert stats.duplicates == 2 and stored(outbox)[-1][1] == "uptime"


def test_counter_reset_after_flash_wipe_is_accepted(tmp_path: Path) -> None:
    intake, outbox, stats = make(tmp_path)
    t = 1_800_000_000 * NS
    intake.process([(line(encode_telemetry(1, 5000, {"temperature": 1})), t)])
    wiped = encode_telemetry(1, 1, {"temperature": 2}, full_counter=True)
    intake.process([(line(wiped), t + 1)])
    assert [r[2] for r in stored(outbox)] == [1.0, 2.0] and stats.duplicates == 0


def test_mic_is_checked_for_nodes_with_a_key(tmp_path: Path) -> None:
    intake, outbox, stats = make(tmp_path, {1: KEY})
    t = 1_800_000_000 * NS
    good = encode_telemetry(1, 1, {"temperature": 20}, key=KEY, full_counter=True)
    unsigned = encode_telemetry(1, 2, {"temperature": 99})
    forged = encode_telemetry(1, 3, {"temperature": 98}, key=bytes(16))
    other_node = encode_telemetry(3, 1, {"temperature": 30})
    assert (
        intake.process(
            [(line(f, i), t + i) for i, f in enumerate((good, unsigned, forged, other_node))]
        )
        == 3
    )
    assert stats.mic_failures == 2
    assert [(r[0], r[2]) for r in stored(outbox)] == [("node1", 20.0), ("node3", 30.0)]


def test_garbage_console_and_corrupt_lines_are_counted(tmp_path: Path) -> None:
    intake, outbox, stats = make(tmp_path)
    t = 1_800_000_000 * NS
    good = encode_telemetry(1, 1, {"temperature": 20})
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    lines = [
        b"MicroPython v1.24 on 2024-01-01; NUCLEO-F446RE",
        b"",
        b'{"f": "zz"}',
        b'{"f": "0102"}',
        b"{not json",
        b'{"x": 1}',
        b"\xff\xfe garbage",
        line(bytes(bad_crc), 1),
        line(good, 2),
    ]
    assert intake.process([(raw, t) for raw in lines]) == 2
    # not UTF-8 counts as malformed, not as console output
    assert stats.console_lines == 2 and stats.bad_crc == 1
    assert stats.malformed == 5 and stats.readings == 1 and stats.lines == 9


def test_earlier_firmware_lines_map_onto_the_same_metrics(tmp_path: Path) -> None:
    intake, outbox, stats = make(tmp_path)
    t = 1_800_000_000 * NS
    old = (
        '{"ts":194500,"id":"N2","n1":{"t":28.3,"h":52.6,"g":461235},"n2":{"t":27.8,"h":48.8},'
        '"sig":{"rssi":-32,"snr":12},"sts":{"rx":1,"err":0}}\\n'
    )
    empty_n2 = json.dumps({"ts": 1, "id": "N2", "n1": {"t": 28.4}, "n2": {}})
    assert intake.process([(old.encode(), t), (empty_n2.encode(), t + NS)]) is None
    rows = {(n, m): v for n, m, v, _ in stored(outbox)[:9]}
    assert rows == {
        ("node1", "temperature"): 28.3,
        ("node1", "humidity"): 52.6,
        ("node1", "gas_resistance"): 461235.0,
        ("node2", "temperature"): 27.8,
        ("node2", "humidity"): 48.8,
        ("node1", "rssi"): -32.0,
        ("node1", "snr"): 12.0,
        ("node2", "packets_received"): 1.0,
        ("node2", "crc_errors"): 0.0,
    }
    assert stored(outbox)[-1][:3] == ("node1", "temperature", 28.4)
    assert stats.legacy_lines == 2 and stats.malformed == 0


def test_outbox_cursors_prune_and_size_limit(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3", ["mqtt", "influx"], max_bytes=400_000)
    rows = [Reading("node1", "temperature", float(i), i, Kind.READING) for i in range(2000)]
    outbox.commit(rows, {"node1": 2000})
    assert outbox.counters() == {"node1": 2000}
    batch = outbox.fetch(0, 100)
    assert [r.value for r in batch] == [float(i) for i in range(100)]
    outbox.set_cursor("mqtt", batch[-1].id)
    assert outbox.prune() == 0  # influx has not delivered them yet
    outbox.set_cursor("influx", batch[49].id)
    assert outbox.prune() == 50
    outbox.set_cursor("mqtt", 10)  # cursors never move back
    assert outbox.cursor("mqtt") == batch[-1].id
    # Over the size limit: the oldest go first, counted as undelivered.
    outbox.commit([Reading("node1", "humidity", 1.0, i, Kind.READING) for i in range(20000)], {})
    drops = outbox.enforce_limits()
    assert drops and sum(d.undelivered for d in drops) > 1000
    db = sqlite3.connect(tmp_path / "o.sqlite3")
    pages, free, size = (db.execute(f"PRAGMA {p}").fetchone()[0] for p in PRAGMAS)
    assert (pages - free) * size <= 400_000
    assert outbox.fetch(0, 1)[0].metric in ("temperature", "humidity")
    assert outbox.fetch(0, 100000)[-1].metric == "humidity"  # the newest survive


def test_outbox_age_limit(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3", ["influx"], max_age_s=60)
    outbox.commit([Reading("node1", "temperature", 1.0, 1, Kind.READING)], {})
    import time

    assert outbox.enforce_limits(time.time() + 10) == []
    drops = outbox.enforce_limits(time.time() + 61)
    assert [(d.undelivered, d.reason) for d in drops] == [(1, "age")]
    assert outbox.fetch(0, 10) == []


def test_availability_measures_the_interval() -> None:
    avail = Availability(default_interval_s=60, timeout_intervals=3, clock=lambda: 0.0)
    for i in range(5):
        avail.heard("node1", i * 10 * NS)
    # measured: a 10 s interval (not the 60 s default), so offline after 3 x 10 s of silence
    assert avail.statuses(now=70.0) == {"node1": ONLINE}
    assert avail.statuses(now=60.0) == {"node1": ONLINE}
    assert avail.statuses(now=71.0) == {"node1": OFFLINE}
    avail.heard("node1", 80 * NS)
    assert avail.statuses(now=80.5) == {"node1": ONLINE}


def test_keys_file_format() -> None:
    keys = parse_keys(f'node1 = "{KEY.hex()}"\n3 = "{KEY.hex()}"\n')
    assert keys == {1: KEY, 3: KEY}
    assert parse_keys(f'[keys]\nnode2 = "{KEY.hex()}"\n') == {2: KEY}
    for bad in ('gateway = "00"', 'node1 = "00"', 'node1 = "zz"', "node1 = 5", "= oops"):
        with pytest.raises(KeysError):
            parse_keys(bad)


def test_acks_cover_only_a_gap_free_run() -> None:
    from iiot_bridge.processors.acks import AckTracker

    now = [0.0]
    acks = AckTracker(4, gap_timeout_s=30, clock=lambda: now[0])
    for n in (5, 6, 7):
        acks.saw(n)
    assert acks.ack() == 7
    # 8..30 lost (cable pulled): hold the ack back and leave 31, 32 for the resend
    assert not acks.saw(31) and not acks.saw(32)
    assert acks.ack() == 7
    for n in range(8, 33):  # node2 resends from its oldest unacknowledged line
        acks.saw(n)
    assert acks.ack() == 32
    acks.saw(40)
    acks.saw(41)
    acks.saw(40)  # node2 resends after the gap only: it no longer has 33..39
    assert acks.ack() == 40
    acks.saw(1)  # node2 rebooted and numbers from 1 again
    assert acks.ack() == 1
    acks.saw(10)
    now[0] = 31.0
    acks.saw(11)  # a gap nobody fills for 30 s
    assert acks.ack() == 11


def test_batch_entries_are_stamped_receive_minus_hold_minus_their_own_age(tmp_path: Path) -> None:
    intake, outbox, stats = make(tmp_path)
    t = 1_800_000_000 * NS
    entries = [
        (70_000, {"temperature": 20.0}),
        (40_000, {"temperature": 21.0}),
        (10_000, {"temperature": 22.0, "humidity": 50.0}),
    ]
    batch = encode_readings(1, 9, entries, full_counter=True)
    assert intake.process([(line(batch, 1, hold_ms=2500, rssi=-70), t)]) == 1
    rows = stored(outbox)
    hold = 2_500 * 1_000_000
    assert [(m, v, ts) for _, m, v, ts in rows if m != "rssi"] == [
        ("temperature", 20.0, t - hold - 70 * NS),
        ("temperature", 21.0, t - hold - 40 * NS),
        ("temperature", 22.0, t - hold - 10 * NS),
        ("humidity", 50.0, t - hold - 10 * NS),  # one entry: one instant
    ]
    # Link quality belongs to the reception, not to the readings' times.
    assert [ts for _, m, _, ts in rows if m == "rssi"] == [t]
    assert stats.readings == 5 and stats.frames == 1


def test_two_readings_of_a_node_never_share_a_timestamp(tmp_path: Path) -> None:
    """A live frame and a queued one that works out to the same instant: both are kept,
    a nanosecond apart (InfluxDB would overwrite one with the other)."""
    intake, outbox, _ = make(tmp_path)
    t = 1_800_000_000 * NS
    live = encode_telemetry(1, 1, {"temperature": 20.0}, full_counter=True)
    queued = encode_telemetry(1, 2, {"temperature": 21.0}, age_ms=10_000)
    intake.process([(line(live, 1), t)])
    intake.process([(line(queued, 2), t + 10 * NS)])  # taken at t as well
    stamps = [ts for _, m, _, ts in stored(outbox) if m == "temperature"]
    assert stamps == [t, t + 1]
