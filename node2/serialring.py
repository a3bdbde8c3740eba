# node2's ring of serial lines the host has not acknowledged yet.
#
# Every forwarded frame becomes one line with a line number n (from 1 each boot). The host
# answers {"ack": n} once it has stored every line up to n; until then the lines stay here
# and are written again, in order and with the same n, so a bridge restart loses nothing.
# Fixed-size slots in one preallocated bytearray; when full, the oldest line is dropped
# and counted (queue_drops).
#
# Slot: frame length u8 | flags u8 | rssi i16 | snr x4 i16 | n u32 | frame bytes
import struct

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


SLOT = const(80)
_HEADER = const(10)
MAX_FRAME = const(SLOT - _HEADER)
_HAS_LINK = const(1)  # the frame was heard over the air: the line carries rssi and snr


class SerialRing:
    def __init__(self, capacity):
        if capacity < 1:
            capacity = 1
        self.capacity = capacity
        self._buf = bytearray(SLOT * capacity)
        self._head = 0  # slot of the oldest unacknowledged line
        self._len = 0
        self.next_n = 1
        self.drops = 0

    def __len__(self):
        return self._len

    def _pos(self, i):
        return ((self._head + i) % self.capacity) * SLOT

    def n_at(self, i):
        return struct.unpack_from("<I", self._buf, self._pos(i) + 6)[0]

    def add(self, frame, rssi=None, snr=None):
        """Store a frame's line; returns its n. A frame too long for a slot is not kept."""
        n = self.next_n
        self.next_n += 1
        if len(frame) > MAX_FRAME:
            self.drops += 1  # written once, never resent (no frame of ours is this long)
            return n
        if self._len == self.capacity:
            self._head = (self._head + 1) % self.capacity
            self._len -= 1
            self.drops += 1
        pos = self._pos(self._len)
        buf = self._buf
        buf[pos] = len(frame)
        buf[pos + 1] = _HAS_LINK if rssi is not None else 0
        snr4 = 0 if snr is None else int(snr * 4)
        struct.pack_into("<hhI", buf, pos + 2, int(rssi or 0), snr4, n)
        buf[pos + _HEADER : pos + _HEADER + len(frame)] = frame
        self._len += 1
        return n

    def ack(self, n):
        """The host stored every line up to n: forget them. Returns how many were released."""
        released = 0
        while self._len and self.n_at(0) <= n:
            self._head = (self._head + 1) % self.capacity
            self._len -= 1
            released += 1
        return released

    def entry(self, i):
        """(frame bytes, rssi or None, snr or None, n) of the i-th unacknowledged line."""
        pos = self._pos(i)
        buf = self._buf
        frame = bytes(buf[pos + _HEADER : pos + _HEADER + buf[pos]])
        rssi, snr4, n = struct.unpack_from("<hhI", buf, pos + 2)
        if buf[pos + 1] & _HAS_LINK:
            return frame, rssi, snr4 / 4, n
        return frame, None, None, n
