"""Property tests of the MIC (uplink and ACK, direction byte, full 32-bit counter), the
frame counter and its duplicate/replay rule, and the size budget."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from codec_strategies import (
    CODEC_SETTINGS,
    DOWN,
    KEY,
    KEYS,
    TYPICAL_NODE1,
    U8,
    U32,
    UP,
    as_values,
    reference_mic,
    scaled_readings,
    uvarint,
    with_crc,
)
from hypothesis import assume, given
from hypothesis import strategies as st

import iiot_codec as codec

KEY16 = st.binary(min_size=16, max_size=16)

# --- MIC --------------------------------------------------------------------------------------


@CODEC_SETTINGS
@given(key=st.binary(max_size=100), msg=st.binary(max_size=300))
def test_hmac_matches_cpython_hmac(key: bytes, msg: bytes) -> None:
    assert codec.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


@CODEC_SETTINGS
@given(
    seq=U32,
    scaled=scaled_readings(max_size=8),
    key=KEY16,
    full_counter=st.booleans(),
    kind=st.sampled_from(["telemetry", "stats", "batch"]),
)
def test_uplink_mic_is_hmac_over_direction_full_counter_and_frame(
    seq: int, scaled: dict[str, int], key: bytes, full_counter: bool, kind: str
) -> None:
    entries = [(5000, as_values(scaled))] * (3 if kind == "batch" else 1)
    frame = codec.encode_readings(
        1, seq, entries, key=key, full_counter=full_counter, stats=kind == "stats"
    )
    assert frame[-6:-2] == reference_mic(key, UP, seq, frame[:-6])


@CODEC_SETTINGS
@given(fcnt=U32, key=KEY16, hold=st.booleans(), retry=st.none() | st.integers(1, 3600))
def test_ack_mic_is_hmac_over_direction_acknowledged_counter_and_frame(
    fcnt: int, key: bytes, hold: bool, retry: int | None
) -> None:
    options = None if retry is None else {codec.OPT_RETRY_S: retry}
    frame = codec.encode_ack(2, 1, fcnt, options=options, hold=hold, key=key)
    assert frame[-6:-2] == reference_mic(key, DOWN, fcnt, frame[:-6])


@CODEC_SETTINGS
@given(fcnt=U32, other=U32, key=KEY16, same_low_half=st.booleans())
def test_an_ack_mic_verifies_only_for_the_counter_it_acknowledges(
    fcnt: int, other: int, key: bytes, same_low_half: bool
) -> None:
    if same_low_half:  # the case a 16-bit seq cannot tell apart: another epoch of the counter
        other = (other & 0xFFFF0000) | (fcnt & 0xFFFF)
    assume(other != fcnt)
    frame = codec.encode_ack(2, 1, fcnt, key=key)
    got = codec.decode_ack(frame, key=key, fcnt=fcnt)
    assert got.authenticated and got.fcnt == fcnt
    with pytest.raises(codec.CodecError) as info:
        codec.decode_ack(frame, key=key, fcnt=other)
    assert info.value.reason == "mic"


def test_an_ack_mic_needs_the_counter_it_acknowledges() -> None:
    frame = codec.encode_ack(2, 1, 70_000, key=KEY)
    with pytest.raises(codec.CodecError) as info:
        codec.decode_ack(frame, key=KEY)
    assert info.value.reason == "mic"


@pytest.mark.parametrize("fcnt", ["70000", 70_000.0, -1, 2**32 + 70_000, True, b"\x01"])
def test_decode_ack_refuses_a_counter_that_is_not_a_32_bit_integer(fcnt: Any) -> None:
    # The caller's bug, not a forged ACK: "format", never a TypeError from the bit masks.
    frame = codec.encode_ack(2, 1, 70_000, key=KEY)
    with pytest.raises(codec.CodecError) as info:
        codec.decode_ack(frame, key=KEY, fcnt=fcnt)
    assert info.value.reason == "format"
    assert "fcnt" in str(info.value)


@CODEC_SETTINGS
@given(fcnt=U32, key=KEY16, src=U8)
def test_an_uplink_mic_never_verifies_as_an_ack_mic(fcnt: int, key: bytes, src: int) -> None:
    # An ACK whose MIC was computed the uplink way (direction 0x00) over the same bytes: what
    # an attacker gets by replaying a node's own MIC computation into the downlink.
    body = bytes([0x94, src, 1]) + (fcnt & 0xFFFF).to_bytes(2, "big")
    forged = with_crc(body + reference_mic(key, UP, fcnt, body))
    with pytest.raises(codec.CodecError) as info:
        codec.decode_ack(forged, key=key, fcnt=fcnt)
    assert info.value.reason == "mic"
    genuine = with_crc(body + reference_mic(key, DOWN, fcnt, body))
    assert codec.decode_ack(genuine, key=key, fcnt=fcnt).authenticated


@CODEC_SETTINGS
@given(fcnt=U32, key=KEY16, kind=st.sampled_from([0x0C, 0x2C, 0x3C]))
def test_an_ack_mic_never_verifies_as_an_uplink_mic(fcnt: int, key: bytes, kind: int) -> None:
    # TELEMETRY, STATS or BATCH with the MIC computed the ACK way (direction 0x01).
    body = bytes([0x80 | kind, 1, 0]) + (fcnt & 0xFFFF).to_bytes(2, "big")
    body += (uvarint(10) if kind == 0x3C else b"") + uvarint(2) + uvarint(4000)
    forged = with_crc(body + reference_mic(key, DOWN, fcnt, body))
    with pytest.raises(codec.CodecError) as info:
        codec.decode(forged, key=key, last_fcnt=fcnt)
    assert info.value.reason == "mic"
    genuine = with_crc(body + reference_mic(key, UP, fcnt, body))
    assert codec.decode(genuine, key=key, last_fcnt=fcnt).authenticated


@CODEC_SETTINGS
@given(
    fcnt=U32,
    key=KEY16,
    hold=st.booleans(),
    options=st.dictionaries(U8, U32, max_size=3),
    data=st.data(),
)
def test_a_forged_ack_with_a_valid_crc_is_refused_for_its_mic(
    fcnt: int, key: bytes, hold: bool, options: dict[int, int], data: st.DataObject
) -> None:
    # The forger knows the layout and the CRC but not the key: any MIC it writes is refused
    # as "mic", not "crc" (the CRC is right).
    genuine = codec.encode_ack(2, 1, fcnt, options=options, hold=hold, key=key)
    mic = data.draw(st.binary(min_size=4, max_size=4).filter(lambda m: m != genuine[-6:-2]))
    forged = with_crc(genuine[:-6] + mic)
    with pytest.raises(codec.CodecError) as info:
        codec.decode_ack(forged, key=key, fcnt=fcnt)
    assert info.value.reason == "mic"
    # A receiver without the key reads it, reports the MIC, and does not vouch for it.
    keyless = codec.decode_ack(forged)
    assert keyless.has_mic and not keyless.authenticated


@CODEC_SETTINGS
@given(fcnt=U32, key=KEY16, data=st.data())
def test_any_change_to_an_ack_with_a_mic_fails_the_mic(
    fcnt: int, key: bytes, data: st.DataObject
) -> None:
    frame = bytearray(codec.encode_ack(2, 1, fcnt, options={1: 600}, key=key))
    # Bytes 1.. (byte 0's version/type/flag changes fail earlier with their own reasons);
    # the seq bytes 3-4 are left out too: they fail as "an ACK for another frame" (mic).
    pos = data.draw(st.sampled_from([1, 2, *range(5, len(frame) - 2)]), label="byte")
    frame[pos] ^= data.draw(st.integers(1, 255), label="xor")
    with pytest.raises(codec.CodecError) as info:
        codec.decode_ack(with_crc(bytes(frame[:-2])), key=key, fcnt=fcnt)
    if pos in (6, 7):  # the option's varint: may now run past the body or on too long
        assert info.value.reason in ("mic", "truncated", "format")
    else:  # src, dst, the option tag, the MIC itself: everything decodes but the MIC
        assert info.value.reason == "mic"


@pytest.mark.parametrize(
    "frame",
    [
        codec.encode_ack(2, 1, 1234),
        codec.encode_ack(2, 1, 1234, options={codec.OPT_RETRY_S: 20}, hold=True),
        codec.encode_ack(2, 1, 1234, resync=True),
    ],
    ids=["plain", "hold", "resync"],
)
def test_an_ack_without_a_mic_is_refused_with_a_key(frame: bytes) -> None:
    # A keyed node accepts no ACK without a MIC. A RESYNC ACK never has one (the gateway does
    # not know the counter's high half yet), so a node reads it without its key and only
    # acts on .resync; see docs/protocol.md, "Why RESYNC ACKs carry no MIC".
    with pytest.raises(codec.CodecError) as info:
        codec.decode_ack(frame, key=KEY, fcnt=1234)
    assert info.value.reason == "mic"
    assert codec.decode_ack(frame).has_mic is False


@CODEC_SETTINGS
@given(seq=U32, key=KEY16, data=st.data())
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
    ack = codec.encode_ack(2, 1, 5, key=KEY)
    with pytest.raises(codec.CodecError) as info:
        codec.decode_ack(ack, key=bytes(16), fcnt=5)
    assert info.value.reason == "mic"


def test_mic_binds_the_whole_counter() -> None:
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
    for encode in (
        lambda: codec.encode_telemetry(1, 1, {}, key=bad_key),
        lambda: codec.encode_ack(2, 1, 1, key=bad_key),
    ):
        with pytest.raises(codec.CodecError) as info:
            encode()
        assert info.value.reason == "key"
    frame = codec.encode_telemetry(1, 1, {}, key=KEY)
    with pytest.raises(codec.CodecError) as info:
        codec.decode(frame, key=bad_key)
    assert info.value.reason == "key"
    with pytest.raises(codec.CodecError) as info:
        codec.decode_ack(codec.encode_ack(2, 1, 1, key=KEY), key=bad_key, fcnt=1)
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


def test_a_batch_is_classified_by_its_one_counter() -> None:
    entries = [(20_000, {"humidity": 40}), (10_000, {"humidity": 41}), (0, {"humidity": 42})]
    frame = codec.decode(codec.encode_readings(1, 1001, entries, key=KEY), key=KEY, last_fcnt=1000)
    assert codec.classify(frame, 1000) == codec.NEW
    assert codec.classify(frame, 1001) == codec.DUPLICATE  # the whole batch, again


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
@given(
    fcnt=U32,
    interval_s=st.none() | st.integers(1, 16383),
    resync=st.booleans(),
    hold=st.booleans(),
    key=KEYS,
)
def test_ack_sizes(
    fcnt: int, interval_s: int | None, resync: bool, hold: bool, key: bytes | None
) -> None:
    options = None if interval_s is None else {1: interval_s}
    frame = codec.encode_ack(2, 1, fcnt, options=options, resync=resync, hold=hold, key=key)
    # 7 bytes, + 4 for the MIC, + 2 or 3 for an interval option up to 16383 s
    option = 0 if interval_s is None else (2 if interval_s < 128 else 3)
    assert len(frame) == 7 + (4 if key else 0) + option


@CODEC_SETTINGS
@given(
    gaps_ds=st.lists(st.integers(0, 16383), min_size=15, max_size=15),
    newest_ms=st.integers(0, 10**10),
    gas=st.integers(0, 2**21 - 1),
    fast=st.booleans(),
    seq=U32,
)
def test_a_batch_of_16_node1_readings_fits_one_packet(
    gaps_ds: list[int], newest_ms: int, gas: int, fast: bool, seq: int
) -> None:
    # batch_max's highest value, with MIC and the full counter (docs/protocol.md, section
    # 7): fits while readings are less than 16384 ds (27.3 min) apart and the gas resistance
    # stays below 2**21 ohms (the oldest up to 2**28 ds, 310 days, old); with a gas resistance
    # up to 2**28 - 1 ohms, while they are less than 12.8 s apart and the oldest is less than
    # 2**21 ds (58 hours) old.
    if fast:
        gaps_ds = [g % 128 for g in gaps_ds]
        gas = 2**28 - 1 - gas
        newest_ms %= (2**21 - 1 - sum(gaps_ds)) * 100
    ages = [newest_ms]
    for gap in reversed(gaps_ds):
        ages.insert(0, ages[0] + gap * 100)
    readings = {**TYPICAL_NODE1, "gas_resistance": gas}
    frame = codec.encode_readings(
        1, seq, [(age, readings) for age in ages], key=KEY, full_counter=True
    )
    assert len(frame) <= 255


def test_a_batch_of_16_node1_readings_outside_those_bounds_is_refused() -> None:
    # ... and the bounds are tight: one step beyond them, the encoder refuses the frame.
    slow = [(i * 1_638_400, TYPICAL_NODE1) for i in range(15, -1, -1)]  # 27.3 min apart
    gassy = {**TYPICAL_NODE1, "gas_resistance": 2**21}
    fast = [(i * 12_800, gassy) for i in range(15, -1, -1)]  # 12.8 s apart
    for entries in (slow, fast):
        with pytest.raises(codec.CodecError) as info:
            codec.encode_readings(1, 5, entries, key=KEY, full_counter=True)
        assert info.value.reason == "format"
