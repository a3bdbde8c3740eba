"""Property tests of the codec on CPython: every message type against a reference encoder
written from the specification, round trips, BATCH ordering, ACK options, peek, values at
the metrics' resolution (including board float32 inputs) and forward compatibility."""

from __future__ import annotations

from typing import Any

import pytest
from codec_strategies import (
    CODEC_SETTINGS,
    KEY,
    KEYS,
    MAX_AGE_MS,
    NODE1_METRICS,
    ROWS_BY_NAME,
    TYPICAL_NODE1,
    U8,
    U32,
    UP,
    BoardFloat,
    ages_oldest_first,
    as_values,
    check_readings,
    f32,
    on_air_age_ms,
    reference_ack,
    reference_mic,
    reference_uplink,
    scaled_readings,
    uvarint,
    with_crc,
)
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st

import iiot_codec as codec
from iiot_codec import settings as board_settings

# --- TELEMETRY and STATS -----------------------------------------------------------------


@given(
    src=U8,
    dst=U8,
    seq=U32,
    scaled=scaled_readings(),
    age_ms=st.integers(0, MAX_AGE_MS),
    key=KEYS,
    ack_req=st.booleans(),
    full_counter=st.booleans(),
    data=st.data(),
)
@settings(CODEC_SETTINGS, max_examples=300)
def test_telemetry_round_trip(
    src: int,
    dst: int,
    seq: int,
    scaled: dict[str, int],
    age_ms: int,
    key: bytes | None,
    ack_req: bool,
    full_counter: bool,
    data: st.DataObject,
) -> None:
    frame = codec.encode_telemetry(
        src,
        seq,
        as_values(scaled, data),
        dst=dst,
        age_ms=age_ms,
        key=key,
        ack_req=ack_req,
        full_counter=full_counter,
    )
    entry = [(age_ms, scaled)]
    assert frame == reference_uplink(src, dst, seq, entry, key, ack_req, full_counter)
    # The receiver's last counter for this node is close to the new one (here: equal).
    got = codec.decode(frame, key=key, last_fcnt=seq)
    assert (got.kind, got.src, got.dst, got.seq, got.fcnt) == (
        "telemetry",
        src,
        dst,
        seq & 0xFFFF,
        seq,
    )
    assert got.fcnt_hi == (seq >> 16 if full_counter else None)
    assert (got.age_ms, got.ack_req, got.skipped) == (on_air_age_ms(age_ms), ack_req, 0)
    assert [age for age, _ in got.entries] == [on_air_age_ms(age_ms)]
    assert got.entries[0][1] is got.readings
    assert got.has_mic == got.authenticated == (key is not None)
    assert (got.options, got.resync, got.hold) == ({}, False, False)
    check_readings(got.readings, scaled)
    # A receiver without the key still reads the frame; the MIC is reported, not checked.
    keyless = codec.decode(frame, last_fcnt=seq)
    assert keyless.has_mic == (key is not None)
    assert not keyless.authenticated
    assert keyless.entries == got.entries


@CODEC_SETTINGS
@given(
    src=U8,
    seq=U32,
    scaled=scaled_readings(),
    key=KEYS,
    full_counter=st.booleans(),
    ack_req=st.booleans(),
)
def test_stats_round_trip(
    src: int,
    seq: int,
    scaled: dict[str, int],
    key: bytes | None,
    full_counter: bool,
    ack_req: bool,
) -> None:
    counters = as_values(scaled)
    frame = codec.encode_stats(
        src, seq, counters, key=key, ack_req=ack_req, full_counter=full_counter
    )
    assert frame == reference_uplink(
        src, 0, seq, [(0, scaled)], key, ack_req, full_counter, stats=True
    )
    got = codec.decode(frame, key=key, last_fcnt=seq)
    assert (got.kind, got.src, got.dst, got.fcnt, got.age_ms, got.ack_req) == (
        "stats",
        src,
        0,
        seq,
        0,
        ack_req,
    )
    assert len(got.entries) == 1 and got.entries[0][0] == 0
    assert got.authenticated == (key is not None)
    check_readings(got.readings, scaled)


def test_node1_health_metrics_travel_in_a_stats_frame() -> None:
    health = {
        "queue_depth": 12,
        "retransmissions": 40,
        "failed_rounds": 2,
        "radio_errors": 1,
        "sensor_errors": 0,
        "free_heap": 41230,
        "memory_errors": 0,
        "acks_rejected": 3,
        "holds": 5,
        "interval_s": 600,
        "uptime": 86400,
    }
    got = codec.decode(codec.encode_stats(1, 500, health, key=KEY), key=KEY)
    assert got.kind == "stats" and got.authenticated
    assert got.readings == {name: float(value) for name, value in health.items()}
    assert codec.metric("free_heap").unit == "bytes"


@CODEC_SETTINGS
@given(scaled=scaled_readings(min_size=2))
def test_encoding_does_not_depend_on_reading_order(scaled: dict[str, int]) -> None:
    values = as_values(scaled)
    backwards = dict(reversed(list(values.items())))
    assert codec.encode_telemetry(1, 9, values) == codec.encode_telemetry(1, 9, backwards)


@pytest.mark.parametrize(
    ("age_ms", "ds"),
    [(0, 0), (49, 0), (50, 1), (149, 1), (150, 2), (300_000, 3000), (MAX_AGE_MS, 0xFFFFFFFF)],
)
def test_ages_travel_in_deciseconds_rounded_to_nearest(age_ms: int, ds: int) -> None:
    frame = codec.encode_telemetry(1, 5, {"humidity": 50}, age_ms=age_ms)
    if ds == 0:  # age 0 is sent by leaving the flag clear
        assert not frame[0] & codec.F_AGE and frame[5] == 1 << 1  # the bitmap comes first
    else:
        assert frame[0] & codec.F_AGE and frame[5:].startswith(uvarint(ds))
    assert codec.decode(frame).age_ms == ds * 100


# --- BATCH ---------------------------------------------------------------------------------


def batch_entries(max_size: int = 16) -> st.SearchStrategy[list[tuple[int, dict[str, int]]]]:
    """2..max_size entries, oldest first: any ages, readings from node1's metrics."""
    return ages_oldest_first(2, max_size).flatmap(
        lambda ages: st.tuples(*(scaled_readings(NODE1_METRICS, limit=2**21) for _ in ages)).map(
            lambda readings: list(zip(ages, readings, strict=True))
        )
    )


@given(
    src=U8,
    dst=U8,
    seq=U32,
    entries=batch_entries(),
    key=KEYS,
    ack_req=st.booleans(),
    full_counter=st.booleans(),
)
@settings(CODEC_SETTINGS, max_examples=300)
def test_batch_round_trip(
    src: int,
    dst: int,
    seq: int,
    entries: list[tuple[int, dict[str, int]]],
    key: bytes | None,
    ack_req: bool,
    full_counter: bool,
) -> None:
    want = reference_uplink(src, dst, seq, entries, key, ack_req, full_counter)
    values = [(age, as_values(scaled)) for age, scaled in entries]
    event("more than 255 bytes" if len(want) > 255 else "fits one packet")
    if len(want) > 255:  # more than one LoRa packet: the encoder refuses, it never truncates
        with pytest.raises(codec.CodecError) as info:
            codec.encode_readings(src, seq, values, dst, key, ack_req, full_counter)
        assert info.value.reason == "format"
        return
    frame = codec.encode_readings(src, seq, values, dst, key, ack_req, full_counter)
    assert frame == want
    got = codec.decode(frame, key=key, last_fcnt=seq)
    assert (got.kind, got.src, got.dst, got.fcnt, got.ack_req) == ("batch", src, dst, seq, ack_req)
    assert got.has_mic == got.authenticated == (key is not None)
    assert [age for age, _ in got.entries] == [on_air_age_ms(age) for age, _ in entries]
    for (_, readings), (_, scaled) in zip(got.entries, entries, strict=True):
        check_readings(readings, scaled)
    # .readings and .age_ms are the newest entry's (the last one)
    assert got.readings is got.entries[-1][1]
    assert got.age_ms == on_air_age_ms(entries[-1][0])
    assert codec.peek(frame) == ("batch", src)


@CODEC_SETTINGS
@given(ages=ages_oldest_first(2, 16, max_age_ms=3_600_000), data=st.data())
def test_a_batch_out_of_order_is_refused(ages: list[int], data: st.DataObject) -> None:
    # Swap two entries whose ages differ at the frame's resolution (deciseconds).
    assume(len({on_air_age_ms(a) for a in ages}) > 1)
    i = data.draw(st.integers(0, len(ages) - 2), label="i")
    assume(on_air_age_ms(ages[i]) != on_air_age_ms(ages[-1]))
    ages[i], ages[-1] = ages[-1], ages[i]
    with pytest.raises(codec.CodecError) as info:
        codec.encode_readings(1, 7, [(age, {"humidity": 40}) for age in ages])
    assert info.value.reason == "format"


def test_node1_batches_share_one_header_and_one_mic() -> None:
    # A backlog of 8 readings taken 10 s apart, the newest 2 s old.
    entries = [(2000 + 10_000 * (7 - i), TYPICAL_NODE1) for i in range(8)]
    frame = codec.encode_readings(1, 900, entries, key=KEY)
    single = codec.encode_telemetry(1, 900, TYPICAL_NODE1, key=KEY)
    # per reading: one age byte (100 ds between readings) + the 13 bytes of bitmap and values
    assert len(frame) == len(single) + 7 * 14 + 2
    got = codec.decode(frame, key=KEY, last_fcnt=899)
    assert [age for age, _ in got.entries] == [age for age, _ in entries]


def _batch(*entries: tuple[int, int]) -> bytes:
    """A BATCH by hand: (age varint, humidity in hundredths) per entry."""
    body = bytes([0xB8, 1, 0, 0, 9])
    for age, humidity in entries:
        body += uvarint(age) + uvarint(1 << 1) + uvarint(humidity)
    return with_crc(body)


def test_batch_ages_are_deltas_older_by() -> None:
    # first age 600 ds; the next reading is 100 ds newer, then 500 ds newer (age 0)
    got = codec.decode(_batch((600, 4000), (100, 4100), (500, 4200)))
    assert [(age, r["humidity"]) for age, r in got.entries] == [
        (60_000, 40.0),
        (50_000, 41.0),
        (0, 42.0),
    ]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (_batch((100, 4000), (101, 4100)), "format"),  # an age below zero
        (with_crc(_batch((10, 1), (0, 2))[:-2] + b"\x00"), "truncated"),  # a dangling entry
        (with_crc(bytes([0xBA]) + _batch((10, 1), (0, 2))[1:-2]), "format"),  # flag 0x02
        (with_crc(bytes([0xB8, 1, 0, 0, 9])), "truncated"),  # no entry at all
    ],
)
def test_malformed_batches_are_refused(frame: bytes, reason: str) -> None:
    with pytest.raises(codec.CodecError) as info:
        codec.decode(frame)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "call",
    [
        lambda: codec.encode_readings(1, 1, []),
        lambda: codec.encode_readings(1, 1, [(0, {}), (0, {})], stats=True),
        lambda: codec.encode_readings(1, 1, [(0, {}), (-1, {})]),
        lambda: codec.encode_readings(1, 1, [(100, {}), (200, {})]),
    ],
)
def test_bad_batches_raise_codec_error_format(call: Any) -> None:
    with pytest.raises(codec.CodecError) as info:
        call()
    assert info.value.reason == "format"


# --- ACK -------------------------------------------------------------------------------------

OPTIONS = st.dictionaries(U8, U32, max_size=6)


@given(
    src=U8,
    dst=U8,
    fcnt=U32,
    options=st.none() | OPTIONS,
    resync=st.booleans(),
    hold=st.booleans(),
    key=KEYS,
)
@settings(CODEC_SETTINGS, max_examples=300)
def test_ack_round_trip(
    src: int,
    dst: int,
    fcnt: int,
    options: dict[int, int] | None,
    resync: bool,
    hold: bool,
    key: bytes | None,
) -> None:
    frame = codec.encode_ack(src, dst, fcnt, options=options, resync=resync, hold=hold, key=key)
    assert frame == reference_ack(src, dst, fcnt, options, resync, hold, key)
    for got in (codec.decode_ack(frame, key=key, fcnt=fcnt), codec.decode(frame)):
        assert (got.kind, got.src, got.dst, got.seq) == ("ack", src, dst, fcnt & 0xFFFF)
        assert (got.options, got.resync, got.hold) == (options or {}, resync, hold)
        assert (got.readings, got.entries, got.ack_req, got.age_ms) == ({}, [], False, 0)
        assert got.has_mic == (key is not None)
    # decode() reads an ACK but never checks its MIC: that is decode_ack's job.
    assert not codec.decode(frame, key=key).authenticated
    assert codec.decode_ack(frame, key=key, fcnt=fcnt).authenticated == (key is not None)
    assert codec.peek(frame) == ("ack", src)


def test_hold_ack_carries_the_retry_hint() -> None:
    frame = codec.encode_ack(2, 1, 70_000, options={codec.OPT_RETRY_S: 20}, hold=True, key=KEY)
    got = codec.decode_ack(frame, key=KEY, fcnt=70_000)
    assert (got.hold, got.resync, got.options, got.authenticated) == (True, False, {64: 20}, True)
    assert frame[0] == 0x96  # version 2, ACK, flags HOLD | MIC
    assert len(frame) == 7 + 2 + 4  # option tag and a 1-byte varint, the MIC


def test_settings_downlink_rides_in_an_ack_option() -> None:
    tag = dict((name, t) for t, name in board_settings.DOWNLINK)["interval_s"]
    frame = codec.encode_ack(2, 1, 1234, options={tag: 600}, key=KEY)
    assert codec.decode_ack(frame, key=KEY, fcnt=1234).options == {tag: 600}


def test_downlink_tags_are_settings_below_the_link_control_range() -> None:
    tags = [tag for tag, _ in board_settings.DOWNLINK]
    assert len(tags) == len(set(tags))
    assert all(1 <= tag < codec.OPT_RETRY_S for tag in tags)
    names = {row[0] for row in board_settings.SETTINGS}
    assert {name for _, name in board_settings.DOWNLINK} <= names


@CODEC_SETTINGS
@given(unknown=st.dictionaries(st.integers(65, 255), U32, min_size=1, max_size=4), key=KEYS)
def test_unknown_ack_option_tags_are_kept(unknown: dict[int, int], key: bytes | None) -> None:
    # A later gateway's options, written by hand in a non-sorted order, between known ones.
    body = bytes([0x90 | (0x04 if key else 0), 2, 1, 0, 5]) + bytes([1]) + uvarint(60)
    for tag in sorted(unknown, reverse=True):
        body += bytes([tag]) + uvarint(unknown[tag])
    body += bytes([codec.OPT_RETRY_S]) + uvarint(9)
    if key:
        body += reference_mic(key, 0x01, 5, body)
    got = codec.decode_ack(with_crc(body), key=key, fcnt=5)
    assert got.options == {1: 60, codec.OPT_RETRY_S: 9, **unknown}


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (with_crc(bytes([0x98, 2, 1, 0, 5])), "format"),  # reserved ACK flag 0x08
        (with_crc(bytes([0x90, 2, 1, 0, 5, 1])), "truncated"),  # an option tag, no value
        (with_crc(bytes([0x90, 2, 1, 0, 5, 1]) + b"\x80" * 5 + b"\x01"), "format"),
        (with_crc(bytes([0x94, 2, 1, 0, 5, 1])), "truncated"),  # no room for the MIC
        (codec.encode_telemetry(1, 5, {}), "type"),  # decode_ack of an uplink frame
    ],
)
def test_malformed_acks_are_refused(frame: bytes, reason: str) -> None:
    with pytest.raises(codec.CodecError) as info:
        codec.decode_ack(frame)
    assert info.value.reason == reason


# --- peek ---------------------------------------------------------------------------------------


@CODEC_SETTINGS
@given(src=U8, seq=U32, kind=st.sampled_from(["telemetry", "stats", "batch", "ack"]))
def test_peek_gives_kind_and_source(src: int, seq: int, kind: str) -> None:
    if kind == "ack":
        frame = codec.encode_ack(src, 1, seq)
    else:
        entries = [(0, {"humidity": 1})] * (2 if kind == "batch" else 1)
        frame = codec.encode_readings(src, seq, entries, stats=kind == "stats")
    assert codec.peek(frame) == codec.peek(bytearray(frame)) == (kind, src)
    assert codec.peek(memoryview(frame)) == (kind, src)
    assert codec.decode(frame).kind == kind
    # peek reads the header only: it does not check the CRC (decode does)
    assert codec.peek(frame[:-2] + bytes(2)) == (kind, src)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (bytes([0x80, 1, 0, 0, 1, 0]), "truncated"),
        (bytes([0x48, 1, 0, 0, 1, 0, 0]), "version"),  # a version 1 frame
        (bytes([0xC8, 1, 0, 0, 1, 0, 0]), "version"),
        ("8801000001", "format"),
        (None, "format"),
    ],
)
def test_peek_refuses_what_is_not_a_v2_frame(data: Any, reason: str) -> None:
    with pytest.raises(codec.CodecError) as info:
        codec.peek(data)
    assert info.value.reason == reason


# --- the serial line and the host's lines --------------------------------------------------


@CODEC_SETTINGS
@given(
    frame=st.binary(max_size=255),
    rssi=st.none() | st.integers(-200, 50),
    snr=st.none()
    | st.integers(-40, 40)
    | st.floats(-40, 40, allow_nan=False)
    | st.integers(-160, 160).map(lambda q: q / 4),  # the SX1276 reports quarter dB
    n=st.none() | st.integers(0, 2**53),
    hold_ms=st.integers(0, 2**40),
    suffix=st.sampled_from(["", "\n", "\r\n", "\\n\n", "  \n"]),
    as_bytes=st.booleans(),
)
def test_line_round_trip(
    frame: bytes,
    rssi: int | None,
    snr: float | None,
    n: int | None,
    hold_ms: int,
    suffix: str,
    as_bytes: bool,
) -> None:
    text = codec.encode_line(frame, rssi=rssi, snr=snr, n=n, hold_ms=hold_ms)
    assert "\n" not in text
    assert text.startswith('{"f":"' + frame.hex() + '"')
    assert ('"h":' in text) == (hold_ms > 0)  # absent on a line's first write
    received: str | bytes = text + suffix
    if as_bytes:
        received = received.encode()
    got = codec.decode_line(received)
    assert got is not None
    assert (got.frame, got.rssi, got.n, got.hold_ms) == (frame, rssi, n, hold_ms)
    # snr travels at 0.01 dB.
    assert got.snr == (None if snr is None else round(snr, 2))


@pytest.mark.parametrize(
    ("text", "hold_ms"),
    [('{"f":"00"}', 0), ('{"f":"00","h":0}', 0), ('{"f":"00","h":3100}', 3100)],
)
def test_line_hold_field(text: str, hold_ms: int) -> None:
    got = codec.decode_line(text)
    assert got is not None and got.hold_ms == hold_ms


@pytest.mark.parametrize("text", ['{"f":"00","h":-1}', '{"f":"00","h":1.5}', '{"f":"00","h":"1"}'])
def test_line_with_a_bad_hold_field_is_a_format_error(text: str) -> None:
    with pytest.raises(codec.CodecError) as info:
        codec.decode_line(text)
    assert info.value.reason == "format"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"f":"0"}', "format"),  # odd length
        ('{"f":"0g"}', "format"),
        ('{"f":"ab  "}', "format"),  # blanks (MicroPython's unhexlify skips them)
        ('{"f":" ab "}', "format"),
        ('{"f":12}', "format"),
        ('{"f":["00"]}', "format"),
        ('{"f":"00","n":-1}', "format"),
        ('{"f":"00","n":1.0}', "format"),
        ('{"f":"00","snr":NaN}', "format"),
        ('{"f":"00","snr":-Infinity}', "format"),
        ('{"f":"00","rssi":true}', "format"),
        ('{"n":1}', "no_frame"),
        ('{"f":null}', "no_frame"),
    ],
)
def test_malformed_frame_lines(text: str, reason: str) -> None:
    with pytest.raises(codec.CodecError) as info:
        codec.decode_line(text)
    assert info.value.reason == reason and str(info.value)


@CODEC_SETTINGS
@given(n=U32, boot=st.none() | U32)
def test_host_ack_round_trip(n: int, boot: int | None) -> None:
    text = codec.encode_host_ack(n, boot)
    assert codec.decode_host_ack(text + "\n") == n
    assert codec.decode_host_line(text + "\r\n") == ("ack", n, boot)
    assert text == (f'{{"ack":{n}}}' if boot is None else f'{{"ack":{n},"boot":{boot}}}')


@CODEC_SETTINGS
@given(nonce=U32)
def test_hello_round_trip(nonce: int) -> None:
    text = codec.encode_hello(nonce)
    assert text == f'{{"hello":{nonce}}}'
    assert codec.decode_host_line(text.encode() + b"\n") == ("hello", nonce)
    assert codec.decode_host_ack(text) is None
    # The host's own hello is not node2's answer to it (it has no boot).
    assert codec.session_from_object(codec.parse_object(text) or {}) is None


@CODEC_SETTINGS
@given(boot=U32, nonce=st.none() | U32, suffix=st.sampled_from(["", "\n", "\r\n"]))
def test_session_round_trip(boot: int, nonce: int | None, suffix: str) -> None:
    text = codec.encode_session(boot, nonce)
    assert "\n" not in text
    obj = codec.parse_object(text + suffix)
    assert obj is not None
    session = codec.session_from_object(obj)
    assert isinstance(session, codec.Session)
    assert (session.boot, session.nonce) == (boot, nonce)
    assert repr(session) == f"Session(boot={boot} nonce={nonce!r})"
    # A session line has no frame: a reader without the session check counts "no_frame".
    with pytest.raises(codec.CodecError) as info:
        codec.line_from_object(obj)
    assert info.value.reason == "no_frame"


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"f": "00"},
        {"f": "00", "boot": 5},  # a frame line is never a session line
        {"hello": 5},  # the host's hello
        {"boot": -1},
        {"boot": 2**32},
        {"boot": 1.0},
        {"boot": True},
        {"boot": "5"},
        {"boot": None, "hello": 5},
    ],
)
def test_objects_that_are_not_session_lines(obj: dict[str, Any]) -> None:
    assert codec.session_from_object(obj) is None


# Anything a caller might pass as a host line's number: in and out of range, other types.
ANY_NUMBER = (
    st.integers(-(2**40), 2**40)
    | st.sampled_from([0, 255, 256, 2**32 - 1, 2**32, -1])
    | st.floats(allow_nan=True)
    | st.booleans()
    | st.none()
    | st.text(max_size=3)
)


def _refused(call: Any) -> bool:
    try:
        call()
    except codec.CodecError as e:
        assert e.reason == "format" and str(e)
        return True
    return False


@CODEC_SETTINGS
@given(node=ANY_NUMBER, tag=ANY_NUMBER, value=ANY_NUMBER)
def test_downlink_encoder_writes_only_what_node2_reads(node: Any, tag: Any, value: Any) -> None:
    # The encoder either refuses ("format") or writes a line node2 reads back to exactly its
    # arguments: never one node2 would ignore, or read as another value.
    valid = all(type(x) is int and 0 <= x <= 255 for x in (node, tag)) and (
        value is None or (type(value) is int and 0 <= value <= 0xFFFFFFFF)
    )
    if _refused(lambda: codec.encode_downlink(node, tag, value)):
        assert not valid
    else:
        assert valid
        got = codec.decode_host_line(codec.encode_downlink(node, tag, value))
        assert got == ("dl", node, tag, value)


def _u32(x: Any) -> bool:
    return type(x) is int and 0 <= x <= 0xFFFFFFFF


@CODEC_SETTINGS
@given(n=ANY_NUMBER, boot=ANY_NUMBER)
def test_ack_and_session_encoders_write_only_what_the_readers_read(n: Any, boot: Any) -> None:
    # host -> node2: ack n of boot (None: no boot) and hello n; node2 -> host: boot, hello.
    if _refused(lambda: codec.encode_host_ack(n, boot)):
        assert not (_u32(n) and (boot is None or _u32(boot)))
    else:
        assert codec.decode_host_line(codec.encode_host_ack(n, boot)) == ("ack", n, boot)
    if _refused(lambda: codec.encode_hello(n)):
        assert not _u32(n)
    else:
        assert codec.decode_host_line(codec.encode_hello(n)) == ("hello", n)
    if _refused(lambda: codec.encode_session(boot, n)):
        assert not (_u32(boot) and (n is None or _u32(n)))
    else:
        obj = codec.parse_object(codec.encode_session(boot, n))
        session = codec.session_from_object(obj or {})
        assert session is not None and (session.boot, session.nonce) == (boot, n)


@CODEC_SETTINGS
@given(node=U8, tag=U8, value=st.none() | U32)
def test_downlink_line_round_trip(node: int, tag: int, value: int | None) -> None:
    text = codec.encode_downlink(node, tag, value)
    assert "\n" not in text
    assert codec.decode_host_line(text + "\n") == ("dl", node, tag, value)
    assert codec.decode_host_ack(text) is None


def test_downlink_line_shape() -> None:
    assert codec.encode_downlink(1, 1, 600) == '{"dl":1,"t":1,"v":600}'
    assert codec.encode_downlink(1, 1) == '{"dl":1,"t":1}'  # withdraw the pending request


@pytest.mark.parametrize(
    "text",
    [
        "",
        "boot.py done",
        '{"boot": 5}',  # node2's own session line
        '{"hello": -1}',
        '{"hello": 1.5}',
        '{"hello": true}',
        '{"hello": "5"}',
        '{"hello": 4294967296}',
        '{"hello": null}',
        "Traceback (most recent call last):",
        '{"ack": -1}',
        '{"ack": true}',
        '{"ack": 1.5}',
        '{"ack": 4294967296}',
        '{"f": "00"}',
        '{"dl": 1}',
        '{"dl": 256, "t": 1, "v": 5}',
        '{"dl": 1, "t": -1, "v": 5}',
        '{"dl": 1, "t": 1, "v": -5}',
        '{"dl": 1, "t": 1, "v": 5.5}',
        '{"dl": true, "t": 1}',
        '{"dl": "1", "t": 1}',
        "{not json",
        "[1]",
        b"\xff\xfe{",
        None,
        12,
    ],
)
def test_host_lines_other_than_ack_hello_and_downlink_are_none(text: Any) -> None:
    assert codec.decode_host_line(text) is None
    assert codec.decode_host_ack(text) is None


# --- values at the metric's resolution --------------------------------------------------------


@CODEC_SETTINGS
@given(scaled=scaled_readings(limit=2**23 - 1, min_size=1))
def test_float32_values_decode_to_the_same_decimal(scaled: dict[str, int]) -> None:
    # A value that went through a board float (single precision) before reaching the
    # encoder still lands on the decimal it stood for.
    values = {name: f32(v) for name, v in as_values(scaled).items()}
    check_readings(codec.decode(codec.encode_telemetry(1, 1, values)).readings, scaled)


@CODEC_SETTINGS
@given(scaled=scaled_readings(limit=2**22 - 1, min_size=1))
def test_board_float32_arithmetic_keeps_the_decimal(scaled: dict[str, int]) -> None:
    # The codec's own scaling code run with float32 arithmetic, as on the STM32.
    values = {name: BoardFloat(v) for name, v in as_values(scaled).items()}
    check_readings(codec.decode(codec.encode_telemetry(1, 1, values)).readings, scaled)


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("temperature", 27.6, "27.60"),
        ("temperature", -0.05, "-0.05"),
        ("temperature", 0.125, "0.13"),  # exact halves round away from zero ...
        ("temperature", -0.125, "-0.13"),  # ... on both sides (round() would give 0.12)
        ("humidity", 52.6, "52.60"),
        ("pressure", 1013.25, "1013.25"),
        ("gas_resistance", 461235.4, "461235"),
        ("voltage", 3.3, "3.300"),
        ("uptime", 86400, "86400"),
        ("free_heap", 41230, "41230"),
    ],
)
def test_values_at_resolution_on_cpython_and_board(name: str, value: float, text: str) -> None:
    for given_value in (value, f32(value), BoardFloat(value)):
        frame = codec.encode_telemetry(1, 1, {name: given_value})
        decoded = codec.decode(frame).readings[name]
        assert codec.format_value(name, decoded) == text, given_value


@pytest.mark.parametrize(
    ("readings", "reason"),
    [
        ({"colour": 1}, "metric"),
        ({"rssi": -40}, "metric"),  # link metadata, not an air metric
        ({"humidity": -0.01}, "value"),
        ({"temperature": float("nan")}, "value"),
        ({"temperature": float("inf")}, "value"),
        ({"temperature": "27.6"}, "value"),
        ({"temperature": None}, "value"),
        ({"uptime": 2**31}, "value"),
        ({"temperature": 21474836.48}, "value"),
    ],
)
def test_encoder_rejects_bad_readings(readings: dict[str, Any], reason: str) -> None:
    for call in (
        lambda: codec.encode_telemetry(1, 1, readings),
        lambda: codec.encode_readings(1, 1, [(100, {}), (0, readings)]),
    ):
        with pytest.raises(codec.CodecError) as info:
            call()
        assert info.value.reason == reason


@pytest.mark.parametrize(
    "call",
    [
        lambda: codec.encode_telemetry(256, 1, {}),
        lambda: codec.encode_telemetry(1, -1, {}),
        lambda: codec.encode_telemetry(1, 2**32, {}),
        lambda: codec.encode_telemetry(1, 1, {}, dst=-1),
        lambda: codec.encode_telemetry(1, 1, {}, age_ms=-1),
        lambda: codec.encode_telemetry(1, 1, {}, age_ms=MAX_AGE_MS + 1),
        lambda: codec.encode_telemetry(1, 1, {}, age_ms=1.5),
        lambda: codec.encode_ack(1, 2, 2**32),
        lambda: codec.encode_ack(1, 2, 3, options={256: 1}),
        lambda: codec.encode_ack(1, 2, 3, options={1: -1}),
        lambda: codec.encode_ack(1, 2, 3, options={1: 2**32}),
        lambda: codec.encode_ack(1, 2, 3, options={1: True}),
        lambda: codec.encode_line("00"),
        lambda: codec.encode_line(b"\x01", hold_ms=-5),
        lambda: codec.encode_line(b"\x01", n=3, hold_ms=-1),
        lambda: codec.encode_downlink(1, 300, 5),
        lambda: codec.encode_downlink(256, 1, 5),
        lambda: codec.encode_downlink(-1, 1),
        lambda: codec.encode_downlink(1, 1, -5),
        lambda: codec.encode_downlink(1, 1, 5.7),
        lambda: codec.encode_downlink(1, 1, True),
        lambda: codec.encode_downlink(1, 1, 2**32),
        lambda: codec.encode_downlink("1", 1, 5),
        lambda: codec.encode_host_ack(2**32),
        lambda: codec.encode_host_ack(-1),
        lambda: codec.encode_host_ack(1.0),
        lambda: codec.encode_host_ack(5, boot=2**32),
        lambda: codec.encode_host_ack(5, boot="2048"),
        lambda: codec.encode_hello(None),
        lambda: codec.encode_hello(2**32),
        lambda: codec.encode_session(-1),
        lambda: codec.encode_session(2048, nonce=2**32),
        lambda: codec.encode_session(None),
        lambda: codec.decode("88010004d2"),
        lambda: codec.decode_ack(None),
    ],
)
def test_bad_arguments_raise_codec_error_format(call: Any) -> None:
    with pytest.raises(codec.CodecError) as info:
        call()
    assert info.value.reason == "format"


def test_metric_table_api() -> None:
    temperature = codec.metric("temperature")
    assert (temperature.unit, temperature.decimals, temperature.scale) == ("celsius", 2, 100)
    assert (codec.metric("rssi").unit, codec.metric("snr").unit) == ("dBm", "dB")
    assert codec.format_value("snr", 7.5) == "7.50"
    with pytest.raises(codec.CodecError) as info:
        codec.metric("colour")
    assert info.value.reason == "metric"
    # On-air ids are dense and each row sits at its id (the decoder indexes ROWS by id),
    # never renumbered; the presence bitmap holds ids 0..34.
    assert [row[0] for row in codec.ROWS] == list(range(len(codec.ROWS)))
    assert all(codec.ROWS[row[0]] is row for row in codec.ROWS)
    assert len(codec.ROWS) <= 35
    assert all(codec.BY_ID[row[0]] is row for row in codec.ROWS)


def test_node_health_metric_ids() -> None:
    # On-air identifiers of protocol version 2: a node and a bridge must agree on them.
    health = [(row[0], row[1], row[2]) for row in codec.ROWS if row[0] >= 11]
    assert health == [
        (11, "queue_depth", "count"),
        (12, "retransmissions", "count"),
        (13, "failed_rounds", "count"),
        (14, "radio_errors", "count"),
        (15, "sensor_errors", "count"),
        (16, "free_heap", "bytes"),
        (17, "memory_errors", "count"),
        (18, "acks_rejected", "count"),
        (19, "holds", "count"),
        (20, "interval_s", "seconds"),
    ]


# --- forward compatibility ---------------------------------------------------------------------

FIRST_UNKNOWN_ID = max(row[0] for row in codec.ROWS) + 1


@CODEC_SETTINGS
@given(
    future=st.dictionaries(st.integers(FIRST_UNKNOWN_ID, 34), st.integers(0, 2**32), min_size=1),
    scaled=scaled_readings(),
    key=KEYS,
    batch=st.booleans(),
)
def test_unknown_metric_ids_are_skipped_and_the_rest_kept(
    future: dict[int, int], scaled: dict[str, int], key: bytes | None, batch: bool
) -> None:
    # A newer node's frame, built by hand: known metrics plus ids this decoder lacks.
    values: dict[int, int] = dict(future)
    for name, k in scaled.items():
        row = ROWS_BY_NAME[name]
        values[row[0]] = (k * 2 if k >= 0 else -k * 2 - 1) if row[4] else k
    readings = uvarint(sum(1 << i for i in values))
    readings += b"".join(uvarint(values[i]) for i in sorted(values))
    byte0 = (0xB8 if batch else 0x88) | (0x04 if key else 0)
    body = bytes([byte0, 1, 0, 0x12, 0x34])
    body += (uvarint(30) + readings + uvarint(30) + readings) if batch else readings
    if key:
        body += reference_mic(key, UP, 0x1234, body)
    got = codec.decode(with_crc(body), key=key)
    assert got.skipped == len(future) * len(got.entries)
    assert got.authenticated == (key is not None)
    for _, entry in got.entries:
        check_readings(entry, scaled)


def test_a_bitmap_wider_than_35_ids_is_a_format_error() -> None:
    body = bytes([0x80, 1, 0, 0, 1]) + uvarint(1 << 35) + uvarint(5)
    with pytest.raises(codec.CodecError) as info:
        codec.decode(with_crc(body))
    assert info.value.reason == "format"


@pytest.mark.parametrize(
    "text",
    [
        '{"ack":5,"boot":-1}',
        '{"ack":5,"boot":"x"}',
        '{"ack":5,"boot":true}',
        '{"ack":5,"boot":4294967296}',
    ],
)
def test_an_ack_whose_boot_is_not_one_is_ignored(text: str) -> None:
    # node2 must not apply it to its current boot: no telling which lines it means
    assert codec.decode_host_line(text) is None


@pytest.mark.parametrize(
    "obj",
    [{"ack": 5, "boot": 2048}, {"dl": 1, "t": 1, "v": 5, "boot": 2048}, {"boot": 7, "hello": -1}],
)
def test_the_hosts_own_lines_echoed_back_are_not_sessions(obj: dict[str, object]) -> None:
    # a board at its REPL echoes what the host writes
    assert codec.session_from_object(obj) is None
