"""The frame's byte-level primitives: the codec's one exception, CRC-16/CCITT-FALSE,
LEB128 varints with zigzag, and the MIC (HMAC-SHA256 truncated to 4 bytes).

One module rather than four because on the board every file costs whole 512-byte flash
clusters.
"""

import hashlib
from array import array

# --- The codec's one exception type.


class CodecError(ValueError):
    """Raised for any input the codec cannot accept.

    ``reason`` is a short machine-readable code so callers can count failures by kind
    without parsing messages: "crc", "mic", "truncated", "version", "type", "format",
    "metric", "value", "key", "no_frame".
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0.
#
# Table-driven: 512 bytes of RAM buys an 8x speed-up, which matters for the bridge's
# throughput and costs nothing noticeable on the board.


def _make_table() -> "array[int]":
    table = array("H", bytes(512))
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table[i] = crc & 0xFFFF
    return table


_TABLE = _make_table()


def crc16(data: bytes | bytearray | memoryview, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (bytes-like). ``crc16(b"123456789") == 0x29B1``."""
    table = _TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFF00) ^ table[((crc >> 8) ^ byte) & 0xFF]
    return crc


# --- Unsigned LEB128 varints and zigzag for signed values.
#
# Varints keep typical readings at 2 to 3 bytes and stay self-delimiting, so a decoder can
# step over a value whose metric it does not know.

MAX_VARINT_BYTES = 5  # 35 bits: scaled values are limited to 32 bits, 5 bytes is plenty


def put_uvarint(buf: bytearray, n: int) -> None:
    """Append unsigned ``n`` to bytearray ``buf``."""
    while n >= 0x80:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


def get_uvarint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read an unsigned varint from ``data[pos:end]``; return (value, new_pos)."""
    value = 0
    shift = 0
    while True:
        if pos >= end:
            raise CodecError("truncated", "truncated: varint runs past the end of the frame")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift >= 7 * MAX_VARINT_BYTES:
            raise CodecError("format", "varint longer than %d bytes" % MAX_VARINT_BYTES)


def zigzag(n: int) -> int:
    return n * 2 if n >= 0 else -n * 2 - 1


def unzigzag(z: int) -> int:
    return z >> 1 if not z & 1 else -((z + 1) >> 1)


# --- Message integrity code: HMAC-SHA256 truncated to 4 bytes.
#
# Written out by hand because MicroPython has ``hashlib.sha256`` but no ``hmac`` module; the
# same code runs on the board and the bridge, and tests compare it with CPython's ``hmac``.

KEY_LEN = 16
MIC_LEN = 4
_BLOCK = 64


def hmac_sha256(key: bytes | bytearray, msg: bytes | bytearray | memoryview) -> bytes:
    """Full 32-byte HMAC-SHA256 (RFC 2104)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def check_key(key: object) -> bytes:
    """Return ``key`` as bytes if it is a valid 16-byte node key, else raise CodecError."""
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_LEN:
        raise CodecError("key", "MIC key must be %d bytes" % KEY_LEN)
    return bytes(key)


UP_DIR = 0  # node -> gateway frames
ACK_DIR = 1  # gateway -> node ACKs


def compute_mic(
    key: bytes | bytearray, direction: int, fcnt: int, covered: bytes | bytearray | memoryview
) -> bytes:
    """MIC over a direction byte, the full 32-bit frame counter and ``covered``.

    The counter's high half is not sent on air (except with FCNT_HI): folding the whole
    counter in means a frame recorded before a 16-bit wrap, or in an earlier boot epoch, no
    longer verifies once the receiver has moved on; an ACK's MIC covers the counter it
    acknowledges. The direction byte keeps the two message spaces apart, so an uplink MIC
    can never verify as an ACK MIC or the reverse.
    """
    msg = bytearray(
        (direction, (fcnt >> 24) & 0xFF, (fcnt >> 16) & 0xFF, (fcnt >> 8) & 0xFF, fcnt & 0xFF)
    )
    msg.extend(covered)
    return hmac_sha256(check_key(key), msg)[:MIC_LEN]


def mic_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison (no early exit), so timing reveals nothing about the MIC."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0
