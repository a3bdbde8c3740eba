# The 32-bit frame counter, persisted across reboots with few flash writes.
#
# Reservation blocks (like LoRaWAN nodes do): on boot read the stored value S, store
# S + reserve, and count from S. The next write happens only when the counter reaches the
# stored reservation. A reboot skips the unused rest of a block, so counters never repeat
# and only grow. Two files are written alternately, each "<value> <check>", so a power cut
# during a write leaves the other one intact; boot takes the larger valid value.

from micropython import const

RESERVE = const(1024)  # at 10 s per frame about one flash write every three hours
# 32 bits of counter last 1,300 years at one frame every 10 s: no wrap is handled.


def _check(value):
    # A small checksum so a half-written or garbled file is never taken as a counter.
    return (value ^ 0x5A5A5A5A) % 65521


def _read(path):
    try:
        with open(path) as f:
            value, check = f.read().split()
        value = int(value)
        if int(check) == _check(value) and 0 <= value < 0xFFFF0000:
            return value
    except Exception:  # missing, torn or garbled: not a counter
        pass
    return -1


class FrameCounter:
    """next() gives the next counter value; the store is written once per reservation."""

    def __init__(self, prefix="", reserve=RESERVE):
        self.paths = (prefix + "fcnt0.dat", prefix + "fcnt1.dat")
        self.reserve = reserve
        self.writes = 0
        self.write_errors = 0
        a, b = _read(self.paths[0]), _read(self.paths[1])
        self._slot = 1 if b >= a and b >= 0 else 0  # the newest; the next write: the other
        self.value = max(a, b, 0)  # the next counter to hand out
        self._persist(self.value + reserve)

    def _persist(self, limit):
        self._slot ^= 1
        try:
            with open(self.paths[self._slot], "w") as f:
                f.write("%d %d\n" % (limit, _check(limit)))
            self.writes += 1
        except OSError:
            # Keep counting in RAM: refusing to send would lose data; the counters used
            # beyond the stored limit are only at risk if the board also reboots.
            self.write_errors += 1
        self.limit = limit

    def next(self):
        """Return the next counter value (reserving a new block when needed)."""
        v = self.value
        if v >= self.limit:
            self._persist(v + self.reserve)
        self.value = v + 1
        return v
