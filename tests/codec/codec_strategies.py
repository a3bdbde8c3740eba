"""Hypothesis strategies and helpers of the codec property tests (values at each metric's
resolution, board float32 arithmetic, hand-built frames, a reference MIC)."""

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
KEY = bytes.fromhex("00112233445566778899aabbccddeeff")
TYPICAL_NODE1 = {
    "temperature": 28.3,
    "humidity": 52.6,
    "pressure": 1013.25,
    "gas_resistance": 461235,
    "voltage": 3.3,
}


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
    names: list[str] | None = None, limit: int = MAX_SCALED, min_size: int = 0
) -> st.SearchStrategy[dict[str, int]]:
    """A random subset of metrics, each with a scaled integer value in range."""
    rows = [ROWS_BY_NAME[n] for n in names] if names else list(codec.ROWS)

    def values(chosen: list[tuple[Any, ...]]) -> st.SearchStrategy[dict[str, int]]:
        return st.fixed_dictionaries(
            {row[1]: st.integers(-limit if row[4] else 0, limit) for row in chosen}
        )

    return st.lists(st.sampled_from(rows), unique=True, min_size=min_size).flatmap(values)


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


def check_readings(frame: codec.Frame, scaled: dict[str, int]) -> None:
    assert set(frame.readings) == set(scaled)
    for name, k in scaled.items():
        decimals = ROWS_BY_NAME[name][3]
        value = frame.readings[name]
        assert isinstance(value, float)
        assert value == k / 10**decimals, name
        assert codec.format_value(name, value) == decimal_text(k, decimals), name


def with_crc(body: bytes) -> bytes:
    return body + codec.crc16(body).to_bytes(2, "big")


def uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def reference_mic(key: bytes, fcnt_hi: int, covered: bytes) -> bytes:
    return hmac.new(key, fcnt_hi.to_bytes(2, "big") + covered, hashlib.sha256).digest()[:4]
