"""iiot_codec: the air-frame and serial-line codec shared by node1, node2, the bridge and
the simulator. Pure Python, no I/O: runs unchanged on MicroPython and CPython.

Public API (docs/protocol.md): crc16, encode_telemetry, encode_stats, encode_ack, decode,
encode_line, decode_line, encode_host_ack, decode_host_ack, format_value, CodecError.
"""

from .counter import DUPLICATE, NEW, RESET, STALE, classify
from .crc import crc16
from .errors import CodecError
from .frame import (
    ACK,
    F_ACK_REQ,
    F_AGE,
    F_FCNT_HI,
    F_MIC,
    F_RESYNC,
    STATS,
    TELEMETRY,
    VERSION,
    Frame,
    decode,
    encode_ack,
    encode_stats,
    encode_telemetry,
    place_counter,
)
from .metrics import BY_ID, BY_NAME, LINK_ROWS, ROWS, Metric, format_value, metric
from .mic import KEY_LEN, MIC_LEN, hmac_sha256

__version__ = "0.1.0"

# The serial-line half of the API is loaded on first use: node1 never touches the serial
# line, and not importing it saves it about 2.5 KB of heap on the board.
_LINE_API = (
    "Line",
    "decode_host_ack",
    "decode_line",
    "encode_host_ack",
    "encode_line",
    "line_from_object",
    "parse_object",
)


def __getattr__(name):
    if name in _LINE_API:
        # Not `from . import line`: on MicroPython that looks `line` up on this package
        # first, which calls this __getattr__ again.
        import iiot_codec.line as line

        return getattr(line, name)
    raise AttributeError(name)


__all__ = [
    "ACK",
    "DUPLICATE",
    "NEW",
    "RESET",
    "STALE",
    "classify",
    "BY_ID",
    "BY_NAME",
    "F_ACK_REQ",
    "F_AGE",
    "F_FCNT_HI",
    "F_MIC",
    "F_RESYNC",
    "KEY_LEN",
    "LINK_ROWS",
    "MIC_LEN",
    "ROWS",
    "STATS",
    "TELEMETRY",
    "VERSION",
    "CodecError",
    "Frame",
    "Line",
    "Metric",
    "crc16",
    "decode",
    "decode_host_ack",
    "decode_line",
    "encode_ack",
    "encode_host_ack",
    "encode_line",
    "encode_stats",
    "encode_telemetry",
    "format_value",
    "hmac_sha256",
    "line_from_object",
    "metric",
    "parse_object",
    "place_counter",
]
