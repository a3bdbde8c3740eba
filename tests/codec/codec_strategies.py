"""Hypothesis strategies and helpers of the codec property tests: values at each metric's
resolution, board float32 arithmetic, and a reference encoder written from the
specification (docs/protocol.md) with CPython's ``hmac``, independent of the codec."""

from __future__ import annotations

import hashlib
import hmac
import struct
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import iiot_codec as codec
from iiot_codec.metrics import MAX_SCALED

# Applied per test, not as a global profile: other areas' hypothesis tests keep theirs.
# No deadline: a loaded CI machine must not turn a slow example into a failure.
CODEC_SETTINGS = settings(
    deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=150
)

U8 = st.integers(0, 255)
U32 = st.integers(0, 0xFFFFFFFF)
KEYS = st.none() | st.binary(min_size=16, max_size=16)
ROWS_BY_NAME = {row[1]: row for row in codec.ROWS}
ROWS_BY_ID = {row[0]: row for row in codec.ROWS}
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
TYPICAL_NODE1 = {
    "temperature": 28.3,
    "humidity": 52.6,
    "pressure": 1013.25,
    "gas_resistance": 461235,
    "voltage": 3.3,
}
NODE1_METRICS = list(TYPICAL_NODE1)
# Ages a frame can carry: whole deciseconds up to 2**32 - 1 of them, given in milliseconds.
MAX_AGE_MS = 0xFFFFFFFF * 100
UP, DOWN = 0x00, 0x01  # the MIC's direction byte: uplink frames, ACKs


def f32(x: float) -> float:
    """``x`` rounded to IEEE-754 single precision, as a board float holds it."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


class BoardFloat(float):
    """A float whose arithmetic rounds every result to float32, as MicroPython does on the
    STM32 (single-precision floats). Passed to the codec, it runs the codec's own scaling
    code with the board's arithmetic."""

    def __new__(cls, x: float) -> BoardFloat:
        return super().__new__(cls, f32(x))

    # A product or sum of two float32 values is exact in a double (or needs one rounding),
    # so rounding the double result to float32 gives exactly the float32 operation.
    def __mul__(self, other: object) -> BoardFloat:
        return BoardFloat(float(self) * float(other))  # type: ignore[arg-type]

    __rmul__ = __mul__

    def __add__(self, other: object) -> BoardFloat:
        return BoardFloat(float(self) + float(other))  # type: ignore[arg-type]

    __radd__ = __add__

    def __neg__(self) -> BoardFloat:
        return BoardFloat(-float(self))


def decimal_text(k: int, decimals: int) -> str:
    """The scaled integer ``k`` as plain decimal text (independent of the codec)."""
    return f"{Decimal(k).scaleb(-decimals):.{decimals}f}"


def scaled_readings(
    names: list[str] | None = None,
    limit: int = MAX_SCALED,
    min_size: int = 0,
    max_size: int | None = None,
) -> st.SearchStrategy[dict[str, int]]:
    """A random subset of metrics, each with a scaled integer value in range."""
    rows = [ROWS_BY_NAME[n] for n in names] if names else list(codec.ROWS)

    def values(chosen: list[tuple[Any, ...]]) -> st.SearchStrategy[dict[str, int]]:
        return st.fixed_dictionaries(
            {row[1]: st.integers(-limit if row[4] else 0, limit) for row in chosen}
        )

    return st.lists(
        st.sampled_from(rows), unique=True, min_size=min_size, max_size=max_size
    ).flatmap(values)


def ages_oldest_first(
    min_size: int = 1, max_size: int = 16, max_age_ms: int = MAX_AGE_MS
) -> st.SearchStrategy[list[int]]:
    """Ages in milliseconds, oldest (largest) first, as a node's queue holds them."""
    return st.lists(st.integers(0, max_age_ms), min_size=min_size, max_size=max_size).map(
        lambda ages: sorted(ages, reverse=True)
    )


def as_values(scaled: dict[str, int], data: st.DataObject | None = None) -> dict[str, Any]:
    """The numbers a caller would pass: k / 10**decimals, ints for whole-unit metrics."""
    out: dict[str, Any] = {}
    for name, k in scaled.items():
        decimals = ROWS_BY_NAME[name][3]
        if decimals:
            out[name] = k / 10**decimals
        elif data is not None and data.draw(st.booleans(), label=f"{name} as float"):
            out[name] = float(k)
        else:
            out[name] = k
    return out


def check_readings(readings: dict[str, float], scaled: dict[str, int]) -> None:
    """Decoded ``readings`` are exactly the scaled values sent, at the metric's resolution."""
    assert set(readings) == set(scaled)
    for name, k in scaled.items():
        decimals = ROWS_BY_NAME[name][3]
        value = readings[name]
        assert isinstance(value, float)
        assert value == k / 10**decimals, name
        assert codec.format_value(name, value) == decimal_text(k, decimals), name


def on_air_age_ms(age_ms: int) -> int:
    """An age as it comes back from the air: rounded to the nearest decisecond."""
    return (age_ms + 50) // 100 * 100


# --- a reference encoder, written from docs/protocol.md -----------------------------------


def with_crc(body: bytes) -> bytes:
    return body + codec.crc16(body).to_bytes(2, "big")


def uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def reference_mic(key: bytes, direction: int, fcnt: int, covered: bytes) -> bytes:
    """HMAC-SHA256(key, direction || fcnt (4 bytes, big-endian) || covered)[:4]."""
    msg = bytes([direction]) + fcnt.to_bytes(4, "big") + covered
    return hmac.new(key, msg, hashlib.sha256).digest()[:4]


def reference_readings(scaled: dict[str, int]) -> bytes:
    """Presence bitmap and values (zigzag for signed metrics), ascending metric id."""
    by_id = sorted((ROWS_BY_NAME[name][0], k) for name, k in scaled.items())
    out = uvarint(sum(1 << metric_id for metric_id, _ in by_id))
    for metric_id, k in by_id:
        out += uvarint((k * 2 if k >= 0 else -k * 2 - 1) if ROWS_BY_ID[metric_id][4] else k)
    return out


def reference_uplink(
    src: int,
    dst: int,
    fcnt: int,
    entries: list[tuple[int, dict[str, int]]],
    key: bytes | None = None,
    ack_req: bool = True,
    full_counter: bool = False,
    stats: bool = False,
) -> bytes:
    """TELEMETRY / STATS (one entry) or BATCH (several) from scaled readings."""
    ds = [(age_ms + 50) // 100 for age_ms, _ in entries]
    single = len(entries) == 1
    msg_type = 2 if stats else (0 if single else 3)
    flags = (0x08 if ack_req else 0) | (0x04 if key else 0) | (0x01 if full_counter else 0)
    if single and ds[0]:
        flags |= 0x02
    body = bytes([0x80 | msg_type << 4 | flags, src, dst]) + (fcnt & 0xFFFF).to_bytes(2, "big")
    if full_counter:
        body += (fcnt >> 16).to_bytes(2, "big")
    for i, (_, scaled) in enumerate(entries):
        if single:
            body += uvarint(ds[0]) if ds[0] else b""
        else:
            body += uvarint(ds[0] if i == 0 else ds[i - 1] - ds[i])
        body += reference_readings(scaled)
    if key:
        body += reference_mic(key, UP, fcnt, body)
    return with_crc(body)


def reference_ack(
    src: int,
    dst: int,
    fcnt: int,
    options: dict[int, int] | None = None,
    resync: bool = False,
    hold: bool = False,
    key: bytes | None = None,
) -> bytes:
    flags = (0x01 if resync else 0) | (0x02 if hold else 0) | (0x04 if key else 0)
    body = bytes([0x90 | flags, src, dst]) + (fcnt & 0xFFFF).to_bytes(2, "big")
    for tag in sorted(options or {}):
        body += bytes([tag]) + uvarint((options or {})[tag])
    if key:
        body += reference_mic(key, DOWN, fcnt, body)
    return with_crc(body)
