"""Property tests of the MIC, the 32-bit frame counter and its duplicate/replay rule, and the
size budget."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from codec_strategies import (
    CODEC_SETTINGS,
    KEY,
    KEYS,
    TYPICAL_NODE1,
    U32,
    as_values,
    reference_mic,
    scaled_readings,
    with_crc,
)
from hypothesis import assume, given
from hypothesis import strategies as st

import iiot_codec as codec

# --- MIC --------------------------------------------------------------------------------------


@CODEC_SETTINGS
@given(key=st.binary(max_size=100), msg=st.binary(max_size=300))
def test_hmac_matches_cpython_hmac(key: bytes, msg: bytes) -> None:
    assert codec.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


@CODEC_SETTINGS
@given(
    seq=U32,
    scaled=scaled_readings(),
    key=st.binary(min_size=16, max_size=16),
    full_counter=st.booleans(),
    kind=st.sampled_from(["telemetry", "stats"]),
)
def test_mic_is_truncated_hmac_over_counter_high_half_and_frame(
    seq: int, scaled: dict[str, int], key: bytes, full_counter: bool, kind: str
) -> None:
    encode = codec.encode_telemetry if kind == "telemetry" else codec.encode_stats
    frame = encode(1, seq, as_values(scaled), key=key, full_counter=full_counter)
    assert frame[-6:-2] == reference_mic(key, seq >> 16, frame[:-6])


@CODEC_SETTINGS
@given(seq=U32, key=st.binary(min_size=16, max_size=16), data=st.data())
def test_any_change_to_a_mic_frame_fails_the_mic(seq: int, key: bytes, data: st.DataObject) -> None:
    frame = bytearray(codec.encode_telemetry(1, seq, TYPICAL_NODE1, key=key))
    # Byte 0 is left out: version/type changes fail earlier with their own reasons.
    pos = data.draw(st.integers(1, len(frame) - 3), label="byte")
    frame[pos] ^= data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(codec.CodecError) as info:
        codec.decode(with_crc(bytes(frame[:-2])), key=key, last_fcnt=seq)
    assert info.value.reason == "mic"


def test_missing_mic_with_key_is_refused() -> None:
    frame = codec.encode_telemetry(1, 5, TYPICAL_NODE1)
    with pytest.raises(codec.CodecError) as info:
        codec.decode(frame, key=KEY)
    assert info.value.reason == "mic"


def test_wrong_key_is_refused() -> None:
    frame = codec.encode_telemetry(1, 5, TYPICAL_NODE1, key=KEY)
    with pytest.raises(codec.CodecError) as info:
        codec.decode(frame, key=bytes(16))
    assert info.value.reason == "mic"


def test_mic_binds_the_counter_high_half() -> None:
    # Counter 0x00010005 sent with only its low half: a receiver that places it at 0x0005
    # (it believes the counter is still low) cannot verify it; one that knows the node's
    # recent counter can. This is why the gateway asks for RESYNC after a reboot.
    frame = codec.encode_telemetry(1, 0x00010005, TYPICAL_NODE1, key=KEY)
    with pytest.raises(codec.CodecError) as info:
        codec.decode(frame, key=KEY)
    assert info.value.reason == "mic"
    assert codec.decode(frame, key=KEY, last_fcnt=0x0000FFF0).fcnt == 0x00010005
    resent = codec.encode_telemetry(1, 0x00010005, TYPICAL_NODE1, key=KEY, full_counter=True)
    assert codec.decode(resent, key=KEY).fcnt == 0x00010005


@pytest.mark.parametrize("bad_key", [b"", bytes(15), bytes(17), "0" * 16, 1234])
def test_bad_keys_raise_reason_key(bad_key: Any) -> None:
    with pytest.raises(codec.CodecError) as info:
        codec.encode_telemetry(1, 1, {}, key=bad_key)
    assert info.value.reason == "key"
    frame = codec.encode_telemetry(1, 1, {}, key=KEY)
    with pytest.raises(codec.CodecError) as info:
        codec.decode(frame, key=bad_key)
    assert info.value.reason == "key"


# --- the 32-bit counter and classify ----------------------------------------------------------


@CODEC_SETTINGS
@given(last=U32, delta=st.integers(-0x7FFF, 0x7FFF), key=KEYS)
def test_counter_is_rebuilt_within_half_a_window(last: int, delta: int, key: bytes | None) -> None:
    fcnt = last + delta
    assume(0 <= fcnt <= 0xFFFFFFFF)
    frame = codec.encode_telemetry(1, fcnt, {"temperature": 20}, key=key)
    got = codec.decode(frame, key=key, last_fcnt=last)
    assert got.fcnt == fcnt
    assert got.fcnt_hi is None


def _frame(fcnt: int, full_counter: bool = False, key: bytes | None = None) -> codec.Frame:
    data = codec.encode_telemetry(1, fcnt, {"temperature": 20}, key=key, full_counter=full_counter)
    return codec.decode(data, key=key, last_fcnt=None if full_counter else fcnt)


@pytest.mark.parametrize(
    ("fcnt", "full_counter", "key", "last", "expected"),
    [
        (1, False, None, None, codec.NEW),  # first frame ever heard from this node
        (1001, False, None, 1000, codec.NEW),
        (70000, True, KEY, 1000, codec.NEW),  # a jump forward (e.g. flash reservation block)
        (1000, False, None, 1000, codec.DUPLICATE),  # a retransmission: re-ACK only
        (1000, True, KEY, 1000, codec.DUPLICATE),
        (999, False, None, 1000, codec.STALE),  # an old frame resent or replayed
        (999, False, KEY, 1000, codec.STALE),
        (5, True, None, 100000, codec.RESET),  # flash wiped: announced, unauthenticated
        (5, True, KEY, 100000, codec.STALE),  # with a MIC: a replay, never a reset
        (5, False, None, 100000, codec.STALE),  # low half only: cannot claim a reset
        (1000 - 256, True, None, 1000, codec.STALE),  # within RESET_GAP: a late resend
        (1000 - 257, True, None, 1000, codec.RESET),
    ],
)
def test_classify(
    fcnt: int, full_counter: bool, key: bytes | None, last: int | None, expected: str
) -> None:
    assert codec.classify(_frame(fcnt, full_counter, key), last) == expected


@CODEC_SETTINGS
@given(last=st.none() | U32, fcnt=U32, full_counter=st.booleans(), key=KEYS)
def test_classify_invariants(
    last: int | None, fcnt: int, full_counter: bool, key: bytes | None
) -> None:
    frame = _frame(fcnt, full_counter, key)
    got = codec.classify(frame, last)
    if last is None or fcnt > last:
        assert got == codec.NEW
    elif fcnt == last:
        assert got == codec.DUPLICATE
    else:
        assert got in (codec.STALE, codec.RESET)
        if key is not None or not full_counter:
            assert got == codec.STALE  # a counter that goes back is never trusted otherwise


# --- budget -----------------------------------------------------------------------------------


def test_node1_full_telemetry_sizes() -> None:
    assert len(codec.encode_telemetry(1, 1234, TYPICAL_NODE1)) == 20
    assert len(codec.encode_telemetry(1, 1234, TYPICAL_NODE1, key=KEY)) == 24


@CODEC_SETTINGS
@given(
    seq=U32,
    temperature=st.integers(-4000, 8191),  # -40.00 .. 81.91 C
    humidity=st.integers(0, 10000),
    pressure=st.integers(30000, 110000),  # 300 .. 1100 hPa
    gas=st.integers(0, 2_097_151),  # up to 2.1 MOhm
    voltage=st.integers(0, 16383),  # up to 16.383 V
)
def test_node1_full_telemetry_with_mic_fits_24_bytes(
    seq: int, temperature: int, humidity: int, pressure: int, gas: int, voltage: int
) -> None:
    readings = {
        "temperature": temperature / 100,
        "humidity": humidity / 100,
        "pressure": pressure / 100,
        "gas_resistance": gas,
        "voltage": voltage / 1000,
    }
    assert len(codec.encode_telemetry(1, seq, readings, key=KEY)) <= 24


@CODEC_SETTINGS
@given(seq=U32, interval_s=st.none() | st.integers(1, 16383), resync=st.booleans())
def test_ack_fits_10_bytes(seq: int, interval_s: int | None, resync: bool) -> None:
    frame = codec.encode_ack(2, 1, seq, interval_s=interval_s, resync=resync)
    assert len(frame) <= 10
    if interval_s is None:
        assert len(frame) == 7
