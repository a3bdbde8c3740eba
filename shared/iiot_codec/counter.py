"""How a receiver treats a frame's counter: the duplicate and replay rule of the protocol.

Every sender numbers its frames with a 32-bit counter that only grows, across reboots too
(the node persists it). A retransmission repeats the counter; store-and-forward readings go
out later under new counters. So a receiver that remembers the last counter it accepted per
source can tell new frames from repeats without any other state. node2 keeps that memory
in RAM, the bridge on disk; both decide with classify().
"""

NEW = "new"  # forward it
DUPLICATE = "duplicate"  # the frame just accepted, again: re-ACK, do not forward
STALE = "stale"  # older than the last accepted: a resend of old data, or a replay
RESET = "reset"  # the node lost its counter (flash wiped): accept and start over

# A node that lost its counter restarts far below where it was. It announces its counter
# in full (F_FCNT_HI) until the first ACK, so only such frames may reset the window, and
# only when unauthenticated: an authenticated node must never go backwards.
RESET_GAP = 256


def classify(frame, last_fcnt):
    """NEW, DUPLICATE, STALE or RESET for decoded ``frame`` given ``last_fcnt`` (or None)."""
    if last_fcnt is None or frame.fcnt > last_fcnt:
        return NEW
    if frame.fcnt == last_fcnt:
        return DUPLICATE
    if frame.fcnt_hi is not None and not frame.has_mic and frame.fcnt + RESET_GAP < last_fcnt:
        return RESET
    return STALE
