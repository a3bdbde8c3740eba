# node2's ring of serial lines the host has not acknowledged yet.
#
# Every frame node2 takes custody of becomes one line with a line number n (from 1 each
# boot). The host answers {"ack": n} once it has stored every line up to n; until then the
# lines stay here and are written again, in order and with the same n, so a bridge restart
# or a host away for a while loses nothing. Entries are packed one after another in one
# preallocated bytearray (a frame of one reading takes 34 bytes, a batch of eight about
# 140), so the ring holds as many readings as its bytes allow and never allocates. An entry
# never wraps: one that does not fit before the end starts again at the front.
#
# node2 asks room() before it takes custody of a frame, and tells the node to hold it
# when there is none, so the ring never drops what it has acknowledged over the air.
#
# Entry: frame length u8 | flags u8 | rssi i16 | snr x4 i16 | n u32 | kept at (ds) u32
#        | frame bytes
import struct

from micropython import const

HEADER = const(14)
_FMT = "<BBhhII"
_HAS_LINK = const(1)  # the frame was heard over the air: the line carries rssi and snr


class SerialRing:
    def __init__(self, size):
        self.size = max(size, 300)  # room for the largest frame at least
        self._buf = bytearray(self.size)
        self._head = 0  # offset of the oldest entry
        self._tail = 0  # where the next entry goes
        self._end = self.size  # where the data before the front stops, once wrapped
        self._len = 0
        self.newest = -1  # offset of the newest entry
        self.next_n = 1

    def __len__(self):
        return self._len

    def _place(self, need):
        # Offset for an entry of ``need`` bytes, or -1 when there is no room.
        if not self._len:
            return 0
        if self._tail > self._head:  # not wrapped: the room after the tail, then the front
            if self.size - self._tail >= need:
                return self._tail
            return 0 if self._head >= need else -1
        return self._tail if self._head - self._tail >= need else -1

    def room(self, frame_len):
        return self._place(HEADER + frame_len) >= 0

    def add(self, frame, rssi, snr, now_ds):
        """Keep a frame's line; returns its n, or None when there is no room."""
        need = HEADER + len(frame)
        pos = self._place(need)
        if pos < 0:
            return None
        if not self._len:
            self._head = 0
            self._end = self.size
        elif pos == 0 and self._tail != 0:
            self._end = self._tail  # wrapped: the data before the front ends here
        n = self.next_n
        self.next_n += 1
        link = rssi is not None
        struct.pack_into(
            _FMT, self._buf, pos, len(frame), _HAS_LINK if link else 0,
            int(rssi) if link else 0, int(snr * 4) if link and snr is not None else 0,
            n, now_ds & 0xFFFFFFFF,
        )  # fmt: skip
        self._buf[pos + HEADER : pos + need] = frame
        self.newest = pos
        self._tail = pos + need
        self._len += 1
        return n

    def first(self):
        """Offset of the oldest entry, or -1 when empty."""
        return self._head if self._len else -1

    def after(self, pos):
        """Offset of the entry after the one at ``pos``, or -1 when it is the newest."""
        nxt = pos + HEADER + self._buf[pos]
        if nxt == self._tail:
            return -1
        if nxt >= self._end:
            return 0
        return nxt

    def n_at(self, pos):
        return struct.unpack_from("<I", self._buf, pos + 6)[0]

    def entry(self, pos):
        """(frame bytes, rssi or None, snr or None, n, kept at ds) of the entry at ``pos``."""
        size, flags, rssi, snr4, n, kept = struct.unpack_from(_FMT, self._buf, pos)
        frame = bytes(self._buf[pos + HEADER : pos + HEADER + size])
        if flags & _HAS_LINK:
            return frame, rssi, snr4 / 4, n, kept
        return frame, None, None, n, kept

    def ack(self, n):
        """The host stored every line up to n: forget them. Returns how many were released."""
        released = 0
        while self._len and self.n_at(self._head) <= n:
            nxt = self.after(self._head)
            self._len -= 1
            released += 1
            if nxt < 0:
                self._head = self._tail = 0
                self._end = self.size
                self.newest = -1
            else:
                if nxt == 0:
                    self._end = self.size  # the front is the only data now
                self._head = nxt
        return released
