"""Decode uplink frames (TELEMETRY, BATCH, STATS) with their readings; ACKs too, without
their MIC check (downlink.decode_ack does that). Layout in frame.py."""

from .frame import (
    ACK,
    BATCH,
    F_AGE,
    F_FCNT_HI,
    HEADER_LEN,
    ack_body,
    check_frame,
    place_counter,
    verify,
)
from .metrics import MAX_METRIC_ID, NAME, ROWS, SIGNED, from_scaled
from .wire import UP_DIR, CodecError, get_uvarint, unzigzag

if False:  # type checkers only: MicroPython has no typing module (this compiles to nothing)
    from .frame import Frame

# Metric ids are the row positions in ROWS (metrics.py keeps them so).
_BY_ID = ROWS


def decode(
    frame: bytes | bytearray | memoryview,
    key: bytes | bytearray | None = None,
    last_fcnt: int | None = None,
) -> "Frame":
    """Decode one uplink frame (TELEMETRY, BATCH, STATS); raise CodecError for anything
    invalid. An ACK is decoded too, but its MIC is only checked by decode_ack().

    With ``key``, the frame must carry a MIC that verifies; without, a MIC is reported
    (``has_mic``) but not checked. ``last_fcnt`` is the receiver's last accepted counter for
    this source, used to rebuild the 32-bit counter when the frame sends only 16 bits.
    """
    frame, f, msg_type, body_end = check_frame(frame)
    if msg_type == ACK:
        ack_body(f, frame, body_end)
        return f
    flags = f.flags
    if msg_type == BATCH and flags & F_AGE:
        raise CodecError("format", "BATCH with the reserved flag 0x02 set")
    pos = HEADER_LEN
    if flags & F_FCNT_HI:
        if pos + 2 > body_end:
            raise CodecError("truncated", "truncated: counter high half missing")
        f.fcnt_hi = (frame[pos] << 8) | frame[pos + 1]
        f.fcnt = (f.fcnt_hi << 16) | f.seq
        pos += 2
    else:
        f.fcnt = place_counter(f.seq, last_fcnt)
    verify(f, frame, body_end, key, UP_DIR)
    age_ds = 0
    if msg_type != BATCH:
        if flags & F_AGE:
            age_ds, pos = get_uvarint(frame, pos, body_end)
        _entry(f, frame, pos, body_end, age_ds, True)
        return f
    first = True
    while first or pos < body_end:
        delta, pos = get_uvarint(frame, pos, body_end)
        if first:
            age_ds = delta
        elif delta > age_ds:
            raise CodecError("format", "batch entry ages go below zero")
        else:
            age_ds -= delta
        pos = _entry(f, frame, pos, body_end, age_ds, False)
        first = False
    return f


def _entry(f: "Frame", frame: bytes, pos: int, end: int, age_ds: int, last: bool) -> int:
    bitmap, pos = get_uvarint(frame, pos, end)
    readings: "dict[str, float]" = {}
    metric_id = 0
    while bitmap:
        if bitmap & 1:
            raw, pos = get_uvarint(frame, pos, end)
            row = _BY_ID[metric_id] if metric_id < len(_BY_ID) else None
            if row is None:
                f.skipped += 1  # a metric added after this decoder was written
            else:
                readings[row[NAME]] = from_scaled(row, unzigzag(raw) if row[SIGNED] else raw)
        bitmap >>= 1
        metric_id += 1
        if metric_id > MAX_METRIC_ID + 1:
            raise CodecError("format", "presence bitmap too wide")
    if last and pos != end:
        raise CodecError("format", "%d unexpected bytes after the readings" % (end - pos))
    f.entries.append((age_ds * 100, readings))
    f.readings = readings
    return pos


# --- How a receiver treats a frame's counter: the duplicate and replay rule of the protocol.
#
# Every sender numbers its frames with a 32-bit counter that only grows, across reboots too
# (the node persists it). A retransmission repeats the counter; store-and-forward readings go
# out later under new counters. So a receiver that remembers the last counter it accepted per
# source can tell new frames from repeats without any other state. node2 keeps that memory
# in RAM, the bridge on disk; both decide with classify().

NEW = "new"  # forward it
DUPLICATE = "duplicate"  # the frame just accepted, again: re-ACK, do not forward
STALE = "stale"  # older than the last accepted: a resend of old data, or a replay
RESET = "reset"  # the node lost its counter (flash wiped): accept and start over

# A node that lost its counter restarts far below where it was. It announces its counter
# in full (F_FCNT_HI) until the first ACK, so only such frames may reset the window, and
# only when unauthenticated: an authenticated node must never go backwards.
RESET_GAP = 256


def classify(frame: "Frame", last_fcnt: int | None) -> str:
    """NEW, DUPLICATE, STALE or RESET for decoded ``frame`` given ``last_fcnt`` (or None)."""
    if last_fcnt is None or frame.fcnt > last_fcnt:
        return NEW
    if frame.fcnt == last_fcnt:
        return DUPLICATE
    if frame.fcnt_hi is not None and not frame.has_mic and frame.fcnt + RESET_GAP < last_fcnt:
        return RESET
    return STALE
