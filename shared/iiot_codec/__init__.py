"""iiot_codec: the air-frame and serial-line codec shared by node1, node2, the bridge and
the simulator. Pure Python, no I/O: runs unchanged on MicroPython and CPython.

Public API (docs/protocol.md, section 5): encode_readings, encode_telemetry, encode_stats,
encode_ack, decode, decode_ack, peek, place_counter, classify, crc16, encode_line,
decode_line, encode_host_ack, encode_downlink, encode_hello, encode_session, Session,
session_from_object, decode_host_line, decode_host_ack, format_value, quantize, metric,
CodecError, and the tables ROWS, LINK_ROWS, BY_ID, BY_NAME (settings:
iiot_codec.settings).

On the host every name is imported at once. On a board each submodule is loaded on the
first use of one of its names (node1 never touches the serial line or the duplicate rule,
and every module not loaded is heap the board keeps).
"""

import sys

__version__ = "2.0.0"

# Where each public name lives, for the board's lazy loading: one string per submodule,
# the names separated (and surrounded) by spaces. Strings, not a dict of names, because
# every name in a dict would be interned for good in the board's small heap.
_API: "tuple[tuple[str, str], ...]" = (
    ("frame", " ACK BATCH F_ACK_REQ F_AGE F_FCNT_HI F_HOLD F_MIC F_RESYNC OPT_RETRY_S STATS"
     " TELEMETRY VERSION Frame decode_ack encode_ack encode_readings encode_stats"
     " encode_telemetry peek place_counter "),
    ("decode", " DUPLICATE NEW RESET STALE classify decode "),
    ("wire", " CodecError KEY_LEN MIC_LEN crc16 hmac_sha256 "),
    ("metrics", " BY_NAME LINK_ROWS ROWS quantize "),
    ("values", " BY_ID Metric format_value metric "),
    ("line", " Line Session decode_host_ack decode_host_line decode_line encode_downlink"
     " encode_hello encode_host_ack encode_line encode_session line_from_object"
     " parse_object session_from_object "),
)  # fmt: skip


def __getattr__(name: str) -> object:
    key = " " + name + " "
    for module, names in _API:
        if key in names:
            # Not `from . import frame`: on MicroPython that looks the name up on this
            # package first, which calls this __getattr__ again.
            value = getattr(__import__("iiot_codec." + module, None, None, (name,)), name)
            globals()[name] = value  # the next lookup finds it without coming here
            return value
    raise AttributeError(name)


if sys.implementation.name != "micropython":
    # The host imports every name now (and type checkers see them); the board never loads
    # _host (its bytecode alone would cost the board 1.5 KB of heap).
    from ._host import *  # noqa: F403  (also sets __all__)
