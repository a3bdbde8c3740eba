"""Unsigned LEB128 varints and zigzag for signed values.

Varints keep typical readings at 2 to 3 bytes and stay self-delimiting, so a decoder can
step over a value whose metric it does not know.
"""

from .errors import CodecError

MAX_VARINT_BYTES = 5  # 35 bits: scaled values are limited to 32 bits, 5 bytes is plenty


def put_uvarint(buf, n):
    """Append unsigned ``n`` to bytearray ``buf``."""
    while n >= 0x80:
        buf.append((n & 0x7F) | 0x80)
        n >>= 7
    buf.append(n)


def get_uvarint(data, pos, end):
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


def zigzag(n):
    return n * 2 if n >= 0 else -n * 2 - 1


def unzigzag(z):
    return z >> 1 if not z & 1 else -((z + 1) >> 1)
