"""Message integrity code: HMAC-SHA256 truncated to 4 bytes.

Written out by hand because MicroPython has ``hashlib.sha256`` but no ``hmac`` module; the
same code runs on the board and the bridge, and tests compare it with CPython's ``hmac``.
"""

import hashlib

from .errors import CodecError

KEY_LEN = 16
MIC_LEN = 4
_BLOCK = 64


def hmac_sha256(key, msg):
    """Full 32-byte HMAC-SHA256 (RFC 2104)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(_BLOCK - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def check_key(key):
    """Return ``key`` as bytes if it is a valid 16-byte node key, else raise CodecError."""
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_LEN:
        raise CodecError("key", "MIC key must be %d bytes" % KEY_LEN)
    return bytes(key)


def compute_mic(key, fcnt_hi, covered):
    """MIC over the frame counter's high half (2 bytes, not sent on air) and ``covered``.

    Folding the high half in means a frame recorded before a 16-bit counter wrap, or before
    the node's previous boot epochs, no longer verifies once the receiver has moved on.
    """
    msg = bytes(((fcnt_hi >> 8) & 0xFF, fcnt_hi & 0xFF)) + bytes(covered)
    return hmac_sha256(key, msg)[:MIC_LEN]


def mic_equal(a, b):
    """Constant-time comparison (no early exit), so timing reveals nothing about the MIC."""
    if len(a) != len(b):
        return False
    diff = 0
    for x, y in zip(a, b):
        diff |= x ^ y
    return diff == 0
