"""Property tests of the codec on CPython: round trips of every message type, values at the
metrics' resolution (including board float32 inputs) and forward compatibility."""

from __future__ import annotations

from typing import Any

import pytest
from codec_strategies import (
    CODEC_SETTINGS,
    KEY,
    KEYS,
    ROWS_BY_NAME,
    U8,
    U32,
    BoardFloat,
    as_values,
    check_readings,
    f32,
    reference_mic,
    scaled_readings,
    uvarint,
    with_crc,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import iiot_codec as codec
from iiot_codec import line as codec_line

# --- round trips -----------------------------------------------------------------------------


@given(
    src=U8,
    dst=U8,
    seq=U32,
    scaled=scaled_readings(),
    age_s=st.integers(0, 0xFFFFFFFF),
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
    age_s: int,
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
        age_s=age_s,
        key=key,
        ack_req=ack_req,
        full_counter=full_counter,
    )
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
    assert (got.age_s, got.ack_req, got.skipped) == (age_s, ack_req, 0)
    assert got.has_mic == got.authenticated == (key is not None)
    assert (got.interval_s, got.resync) == (None, False)
    check_readings(got, scaled)
    # A receiver without the key still reads the frame; the MIC is reported, not checked.
    keyless = codec.decode(frame, last_fcnt=seq)
    assert keyless.has_mic == (key is not None)
    assert not keyless.authenticated
    assert keyless.readings == got.readings


@CODEC_SETTINGS
@given(src=U8, seq=U32, scaled=scaled_readings(), key=KEYS, full_counter=st.booleans())
def test_stats_round_trip(
    src: int, seq: int, scaled: dict[str, int], key: bytes | None, full_counter: bool
) -> None:
    frame = codec.encode_stats(src, seq, as_values(scaled), key=key, full_counter=full_counter)
    got = codec.decode(frame, key=key, last_fcnt=seq)
    assert (got.kind, got.src, got.dst, got.fcnt, got.age_s, got.ack_req) == (
        "stats",
        src,
        0,
        seq,
        0,
        False,
    )
    assert got.authenticated == (key is not None)
    check_readings(got, scaled)


@CODEC_SETTINGS
@given(scaled=scaled_readings(min_size=2))
def test_encoding_does_not_depend_on_reading_order(scaled: dict[str, int]) -> None:
    values = as_values(scaled)
    backwards = dict(reversed(list(values.items())))
    assert codec.encode_telemetry(1, 9, values) == codec.encode_telemetry(1, 9, backwards)


@CODEC_SETTINGS
@given(
    src=U8,
    dst=U8,
    seq=U32,
    interval_s=st.none() | st.integers(1, 0xFFFFFFFF),
    resync=st.booleans(),
)
def test_ack_round_trip(src: int, dst: int, seq: int, interval_s: int | None, resync: bool) -> None:
    frame = codec.encode_ack(src, dst, seq, interval_s=interval_s, resync=resync)
    got = codec.decode(frame)
    assert (got.kind, got.src, got.dst, got.seq) == ("ack", src, dst, seq & 0xFFFF)
    assert (got.interval_s, got.resync, got.readings, got.ack_req) == (
        interval_s,
        resync,
        {},
        False,
    )
    # Keys are for TELEMETRY/STATS; an ACK decodes the same with one.
    assert codec.decode(frame, key=KEY).interval_s == interval_s


@CODEC_SETTINGS
@given(
    frame=st.binary(max_size=255),
    rssi=st.none() | st.integers(-200, 50),
    snr=st.none()
    | st.integers(-40, 40)
    | st.floats(-40, 40, allow_nan=False)
    | st.integers(-160, 160).map(lambda q: q / 4),  # the SX1276 reports quarter dB
    n=st.none() | st.integers(0, 2**53),
    suffix=st.sampled_from(["", "\n", "\r\n", "\\n\n", "  \n"]),
    as_bytes=st.booleans(),
)
def test_line_round_trip(
    frame: bytes,
    rssi: int | None,
    snr: float | None,
    n: int | None,
    suffix: str,
    as_bytes: bool,
) -> None:
    text = codec_line.encode_line(frame, rssi=rssi, snr=snr, n=n)
    assert "\n" not in text
    assert text.startswith('{"f":"' + frame.hex() + '"')
    received: str | bytes = text + suffix
    if as_bytes:
        received = received.encode()
    got = codec_line.decode_line(received)
    assert got is not None
    assert (got.frame, got.rssi, got.n) == (frame, rssi, n)
    # snr travels at 0.01 dB.
    assert got.snr == (None if snr is None else round(snr, 2))


@CODEC_SETTINGS
@given(n=st.integers(0, 2**63))
def test_host_ack_round_trip(n: int) -> None:
    assert codec_line.decode_host_ack(codec_line.encode_host_ack(n) + "\n") == n


@pytest.mark.parametrize(
    "text",
    [
        "",
        "boot.py done",
        "Traceback (most recent call last):",
        '{"ack": -1}',
        '{"ack": true}',
        '{"ack": 1.5}',
        '{"f": "00"}',
        "{not json",
        "[1]",
    ],
)
def test_decode_host_ack_rejects_everything_else(text: str) -> None:
    assert codec_line.decode_host_ack(text) is None


# --- values at the metric's resolution --------------------------------------------------------


@CODEC_SETTINGS
@given(scaled=scaled_readings(limit=2**23 - 1, min_size=1))
def test_float32_values_decode_to_the_same_decimal(scaled: dict[str, int]) -> None:
    # A value that went through a board float (single precision) before reaching the
    # encoder still lands on the decimal it stood for.
    values = {name: f32(v) for name, v in as_values(scaled).items()}
    check_readings(codec.decode(codec.encode_telemetry(1, 1, values)), scaled)


@CODEC_SETTINGS
@given(scaled=scaled_readings(limit=2**22 - 1, min_size=1))
def test_board_float32_arithmetic_keeps_the_decimal(scaled: dict[str, int]) -> None:
    # The codec's own scaling code run with float32 arithmetic, as on the STM32.
    values = {name: BoardFloat(v) for name, v in as_values(scaled).items()}
    check_readings(codec.decode(codec.encode_telemetry(1, 1, values)), scaled)


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
    with pytest.raises(codec.CodecError) as info:
        codec.encode_telemetry(1, 1, readings)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "call",
    [
        lambda: codec.encode_telemetry(256, 1, {}),
        lambda: codec.encode_telemetry(1, -1, {}),
        lambda: codec.encode_telemetry(1, 2**32, {}),
        lambda: codec.encode_telemetry(1, 1, {}, dst=-1),
        lambda: codec.encode_telemetry(1, 1, {}, age_s=-1),
        lambda: codec.encode_telemetry(1, 1, {}, age_s=2**32),
        lambda: codec.encode_ack(1, 2, 3, interval_s=0),
        lambda: codec.encode_ack(1, 2, 2**32),
        lambda: codec.encode_line("00"),
        lambda: codec.decode("48010004d2"),
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
    ids = [row[0] for row in codec.ROWS]
    assert ids == list(range(len(ids)))  # on-air ids: dense, never renumbered


# --- forward compatibility ---------------------------------------------------------------------


@CODEC_SETTINGS
@given(
    future=st.dictionaries(st.integers(11, 34), st.integers(0, 2**32), min_size=1),
    scaled=scaled_readings(),
    key=KEYS,
)
def test_unknown_metric_ids_are_skipped_and_the_rest_kept(
    future: dict[int, int], scaled: dict[str, int], key: bytes | None
) -> None:
    # A newer node's frame, built by hand: known metrics plus ids this decoder lacks.
    values: dict[int, int] = dict(future)
    for name, k in scaled.items():
        row = ROWS_BY_NAME[name]
        values[row[0]] = (k * 2 if k >= 0 else -k * 2 - 1) if row[4] else k
    bitmap = sum(1 << i for i in values)
    body = bytes([0x48 | (0x04 if key else 0), 1, 0, 0x12, 0x34]) + uvarint(bitmap)
    body += b"".join(uvarint(values[i]) for i in sorted(values))
    if key:
        body += reference_mic(key, 0, body)
    got = codec.decode(with_crc(body), key=key)
    assert got.skipped == len(future)
    assert got.authenticated == (key is not None)
    check_readings(got, scaled)


def test_a_bitmap_wider_than_35_ids_is_a_format_error() -> None:
    body = bytes([0x40, 1, 0, 0, 1]) + uvarint(1 << 35) + uvarint(5)
    with pytest.raises(codec.CodecError) as info:
        codec.decode(with_crc(body))
    assert info.value.reason == "format"


def test_unknown_ack_options_are_skipped() -> None:
    # tag 7 (a later version's option), then the interval option
    frame = with_crc(bytes([0x50, 2, 1, 0, 5, 7]) + uvarint(99) + bytes([1]) + uvarint(60))
    assert codec.decode(frame).interval_s == 60
