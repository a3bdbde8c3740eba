"""Serial line -> what it carries: a contract frame line, an earlier-firmware line, or console.

Contract lines (``{"f": "<hex>", "rssi": .., "snr": .., "n": .., "h": ..}``) are decoded by the
codec; the earlier Rust firmware's JSON lines are mapped onto the same metrics by
``legacy``. Anything else that starts with ``{`` is malformed; lines that do not are console
output (boot banner, tracebacks).
"""

from __future__ import annotations

from typing import NamedTuple

from iiot_codec import CodecError, line_from_object, parse_object

from .legacy import LegacyLine, from_legacy_object, is_legacy


class FrameLine(NamedTuple):
    """A contract frame line (a NamedTuple: one is made per serial line)."""

    frame: bytes
    rssi: int | None
    snr: float | None
    n: int | None
    hold_ms: int  # how long node2 held the frame before writing this line


def parse_line(raw: bytes) -> FrameLine | LegacyLine | None:
    """Classify one line (without its newline). None for console output; CodecError when the
    line is JSON but not something the bridge understands."""
    obj = parse_object(raw)
    if obj is None:
        return None
    if "f" in obj:
        line = line_from_object(obj)
        return FrameLine(bytes(line.frame), line.rssi, line.snr, line.n, line.hold_ms)
    if is_legacy(obj):
        return from_legacy_object(obj)
    raise CodecError("no_frame", "JSON line with neither a frame nor earlier-firmware fields")
