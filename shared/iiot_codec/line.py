"""The serial line between node2 and the host.

node2 -> host, one JSON object per line:
    {"f": "<lowercase hex of one air frame>", "rssi": -40, "snr": 7.5, "n": 12, "h": 3100}
``rssi``/``snr`` only for frames heard over the air; ``n`` counts lines so the host can
acknowledge them; ``h`` is how long node2 held the frame before this write, in
milliseconds (absent on the first write).
node2 -> host, also: {"boot": 2048} when it starts, and {"hello": 77, "boot": 2048} in
answer to the host's hello: ``boot`` names node2's boot (line numbers start again at each).
host -> node2: {"hello": 77} when it opens the port (node2 answers and starts sending its
lines again from the oldest); {"ack": 12, "boot": 2048} (cumulative: every line up to 12
of that boot is stored; node2 ignores an acknowledgement meant for another boot).
A line that does not start with ``{`` is console output (boot banner, traceback).
"""

import json
from binascii import hexlify, unhexlify

from .wire import CodecError

if False:  # type checkers only: MicroPython has no typing module (this compiles to nothing)
    from typing import Any, Literal, TypeAlias

    Text: TypeAlias = "str | bytes | bytearray | memoryview"  # a line as read
    # What the host sent: ("ack", n, boot or None), ("dl", node, tag, value or None),
    # ("hello", nonce)
    HostLine: TypeAlias = (
        "tuple[Literal['ack'], int, int | None] | tuple[Literal['dl'], int, int, int | None]"
        " | tuple[Literal['hello'], int]"
    )

MAX_LINE_CHARS = 1024  # an air frame is at most 255 bytes: 510 hex digits plus metadata


class Line:
    """A decoded serial line: the frame's bytes and what node2 added."""

    def __init__(
        self,
        frame: bytes,
        rssi: int | None = None,
        snr: float | None = None,
        n: int | None = None,
        hold_ms: int = 0,
    ) -> None:
        self.frame = frame
        self.rssi = rssi
        self.snr = snr
        self.n = n
        self.hold_ms = hold_ms

    def __repr__(self) -> str:
        return "Line(%r rssi=%r snr=%r n=%r h=%r)" % (
            hexlify(self.frame),
            self.rssi,
            self.snr,
            self.n,
            self.hold_ms,
        )


def _number_text(x: float) -> str:
    # Same text on CPython and MicroPython (whose float repr differs): 2 decimals, trimmed.
    if isinstance(x, int):
        return "%d" % x
    text = "%.2f" % x
    text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def encode_line(
    frame: bytes | bytearray | memoryview,
    rssi: int | None = None,
    snr: float | None = None,
    n: int | None = None,
    hold_ms: int = 0,
) -> str:
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
    if hold_ms:
        if hold_ms < 0:  # a line the reader refuses (the reader's message: one string)
            raise CodecError("format", "%s must not be negative" % "hold_ms")
        parts.append(',"h":%d' % int(hold_ms))
    parts.append("}")
    return "".join(parts)


def _as_text(line: object) -> str:
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


def parse_object(line: "Text") -> "dict[str, Any] | None":
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


def _optional_number(obj: "dict[str, Any]", name: str, integer: bool, count: bool = False) -> "Any":
    # an int (with integer=False: an int or a float; with count: an int >= 0), or None
    # when absent
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CodecError("format", "%s must be a number" % name)
    if integer and not isinstance(value, int):
        raise CodecError("format", "%s must be an integer" % name)
    if value - value:  # nan or infinite (x - x is then nan, which is true; else 0)
        raise CodecError("format", "%s must be finite" % name)
    if count and value < 0:
        raise CodecError("format", "%s must not be negative" % name)
    return value


def line_from_object(obj: "dict[str, Any]") -> Line:
    """A Line from an already parsed JSON object (see parse_object)."""
    hex_frame = obj.get("f")
    if hex_frame is None:
        raise CodecError("no_frame", 'JSON line without an "f" frame field')
    try:
        frame = unhexlify(hex_frame)  # refuses non-strings, odd lengths, non-hex digits ...
        if len(frame) * 2 != len(hex_frame):  # ... and blanks, which MicroPython's skips
            raise ValueError
    except Exception:
        raise CodecError("format", '"f" must be an even-length hex string')
    return Line(
        frame,
        rssi=_optional_number(obj, "rssi", True),
        snr=_optional_number(obj, "snr", False),
        n=_optional_number(obj, "n", True, True),
        hold_ms=_optional_number(obj, "h", True, True) or 0,
    )


def decode_line(line: "Text") -> Line | None:
    """A Line for a frame line, None for console output; CodecError when malformed."""
    obj = parse_object(line)
    if obj is None:
        return None
    return line_from_object(obj)


class Session:
    """node2 starting (``nonce`` None) or answering the host's hello: its boot's name."""

    def __init__(self, boot: int, nonce: int | None = None) -> None:
        self.boot = boot
        self.nonce = nonce

    def __repr__(self) -> str:
        return "Session(boot=%r nonce=%r)" % (self.boot, self.nonce)


def _uint(n: object, hi: int = 0xFFFFFFFF) -> "int | None":
    # n when it is an integer 0..hi (not a bool), else None
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= hi:
        return None
    return n


def _host_object(names: str, *values: "int | None") -> str:
    # '{"ack":12,"boot":2048}' from "ack boot", 12, 2048: each value checked as its reader
    # checks it (node and tag 0..255, the others 0..2^32-1), so no line is written that
    # the reader would refuse
    text = "{"
    for name, value in zip(names.split(), values):
        hi = 255 if name in ("dl", "t") else 0xFFFFFFFF
        n = _uint(value, hi)
        if n is None:
            raise CodecError("format", "%s must be an integer 0..%d, got %r" % (name, hi, value))
        text += '"%s":%d,' % (name, n)
    return text[:-1] + "}"


def encode_session(boot: int, nonce: int | None = None) -> str:
    """node2's line announcing its boot, or answering the hello ``nonce``."""
    if nonce is None:
        return _host_object("boot", boot)
    return _host_object("hello boot", nonce, boot)


def session_from_object(obj: "dict[str, Any]") -> Session | None:
    """The Session a parsed line announces, None when it is another kind of line."""
    # Frame lines, and the host's own lines echoed back (a board at its REPL echoes what it
    # is sent: an ack naming a boot is not node2 starting), are not sessions.
    if "f" in obj or "ack" in obj or "dl" in obj:
        return None
    boot = _uint(obj.get("boot"))
    nonce = _uint(obj.get("hello"))
    if boot is None or (nonce is None and "hello" in obj):
        return None
    return Session(boot, nonce)


def encode_hello(nonce: int) -> str:
    """The host's hello: node2 answers with the nonce and starts its lines over."""
    return _host_object("hello", nonce)


def encode_host_ack(n: int, boot: int | None = None) -> str:
    """The host's cumulative acknowledgement of every line up to ``n`` (of node2's boot
    ``boot``, when the host knows it)."""
    return _host_object("ack" if boot is None else "ack boot", n, boot)


def encode_downlink(node: int, tag: int, value: int | None = None) -> str:
    """A host line asking node2 to send ``node`` the ACK option ``tag`` = ``value`` (a
    setting, iiot_codec.settings.DOWNLINK) until the node confirms it; ``value`` None
    withdraws it."""
    return _host_object("dl t" if value is None else "dl t v", node, tag, value)


def decode_host_line(line: "Text") -> "HostLine | None":
    """What the host sent node2: ("ack", n, boot or None), ("dl", node, tag, value or
    None), ("hello", nonce), or None for anything else (never an exception: node2 ignores
    what it does not understand)."""
    try:
        obj = parse_object(line)
    except CodecError:
        return None
    if obj is None:
        return None
    if "ack" in obj:
        n = _uint(obj.get("ack"))
        boot = _uint(obj.get("boot"))
        if n is None or (boot is None and "boot" in obj):
            return None  # a boot that is not one: no telling which lines it means
        return ("ack", n, boot)
    if "hello" in obj:
        nonce = _uint(obj.get("hello"))
        return None if nonce is None else ("hello", nonce)
    node = _uint(obj.get("dl"), 255)
    tag = _uint(obj.get("t"), 255)
    if node is None or tag is None:
        return None
    value = obj.get("v")
    if value is not None and _uint(value) is None:
        return None
    return ("dl", node, tag, value)


def decode_host_ack(line: "Text") -> int | None:
    """``n`` from a host acknowledgement line, None when the line is something else."""
    got = decode_host_line(line)
    return got[1] if got is not None and got[0] == "ack" else None
