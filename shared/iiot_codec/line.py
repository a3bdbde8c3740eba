"""The serial line between node2 and the host.

node2 -> host, one JSON object per line:
    {"f": "<lowercase hex of one air frame>", "rssi": -40, "snr": 7.5, "n": 12}
``rssi``/``snr`` only for frames heard over the air; ``n`` counts lines so the host can
acknowledge them. host -> node2: {"ack": 12} (cumulative: every line up to 12 is stored).
A line that does not start with ``{`` is console output (boot banner, traceback).
"""

import json
from binascii import hexlify, unhexlify

from .errors import CodecError

MAX_LINE_CHARS = 1024  # an air frame is at most 255 bytes: 510 hex digits plus metadata


class Line:
    """A decoded serial line: the frame's bytes and what node2 added."""

    def __init__(self, frame, rssi=None, snr=None, n=None):
        self.frame = frame
        self.rssi = rssi
        self.snr = snr
        self.n = n

    def __repr__(self):
        return "Line(%s rssi=%r snr=%r n=%r)" % (hexlify(self.frame), self.rssi, self.snr, self.n)


def _number_text(x):
    # Same text on CPython and MicroPython (whose float repr differs): 2 decimals, trimmed.
    if isinstance(x, int):
        return "%d" % x
    text = "%.2f" % x
    text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def encode_line(frame, rssi=None, snr=None, n=None):
    """One serial line (without the newline) for ``frame``."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise CodecError("format", "frame must be bytes")
    parts = ['{"f":"', hexlify(bytes(frame)).decode(), '"']
    if rssi is not None:
        parts.append(',"rssi":%d' % int(rssi))
    if snr is not None:
        parts.append(',"snr":' + _number_text(snr))
    if n is not None:
        parts.append(',"n":%d' % int(n))
    parts.append("}")
    return "".join(parts)


def _as_text(line):
    if isinstance(line, (bytes, bytearray, memoryview)):
        try:
            line = bytes(line).decode()
        except UnicodeError:
            raise CodecError("format", "line is not valid UTF-8")
    if not isinstance(line, str):
        raise CodecError("format", "line must be str or bytes")
    line = line.strip()
    # The earlier gateway firmware printed a literal backslash-n before the real newline.
    if line.endswith("\\n"):
        line = line[:-2].rstrip()
    return line


def parse_object(line):
    """The JSON object on a line, or None for console output. CodecError if malformed."""
    line = _as_text(line)
    if not line.startswith("{"):
        return None
    if len(line) > MAX_LINE_CHARS:
        raise CodecError("format", "line too long (%d characters)" % len(line))
    try:
        obj = json.loads(line)
    except Exception:  # ValueError, and RecursionError on deeply nested input
        raise CodecError("format", "line is not valid JSON")
    if not isinstance(obj, dict):
        raise CodecError("format", "line is not a JSON object")
    return obj


def _optional_number(obj, name, integer):
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CodecError("format", "%s must be a number" % name)
    if integer and not isinstance(value, int):
        raise CodecError("format", "%s must be an integer" % name)
    if value != value or value in (float("inf"), float("-inf")):
        raise CodecError("format", "%s must be finite" % name)
    return value


def line_from_object(obj):
    """A Line from an already parsed JSON object (see parse_object)."""
    hex_frame = obj.get("f")
    if hex_frame is None:
        raise CodecError("no_frame", 'JSON line without an "f" frame field')
    if not isinstance(hex_frame, str) or len(hex_frame) % 2:
        raise CodecError("format", '"f" must be an even-length hex string')
    try:
        frame = unhexlify(hex_frame)
    except Exception:
        raise CodecError("format", '"f" is not hex')
    n = _optional_number(obj, "n", True)
    if n is not None and n < 0:
        raise CodecError("format", "n must not be negative")
    return Line(
        frame,
        rssi=_optional_number(obj, "rssi", True),
        snr=_optional_number(obj, "snr", False),
        n=n,
    )


def decode_line(line):
    """A Line for a frame line, None for console output; CodecError when malformed."""
    obj = parse_object(line)
    if obj is None:
        return None
    return line_from_object(obj)


def encode_host_ack(n):
    """The host's cumulative acknowledgement of every line up to ``n``."""
    return '{"ack":%d}' % n


def decode_host_ack(line):
    """``n`` from a host acknowledgement line, None when the line is something else."""
    try:
        obj = parse_object(line)
    except CodecError:
        return None
    if obj is None:
        return None
    n = obj.get("ack")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        return None
    return n
