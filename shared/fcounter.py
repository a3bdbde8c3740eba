# The 32-bit frame counter, persisted across reboots with few flash writes.
#
# Reservation blocks (like LoRaWAN nodes do): on boot read the stored value S, store
# S + reserve, and count from S. The next write happens only when the counter reaches the
# stored reservation. A reboot skips the unused rest of a block, so counters never repeat
# and only grow. Two files are written alternately, each "<value> <check>", so a power cut
# during a write leaves the other one intact; boot takes the larger valid value.

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


RESERVE = const(1024)  # at 10 s per frame about one flash write every three hours
MAX = 0xFFFFFFFF
_FILES = ("fcnt0.dat", "fcnt1.dat")


def _check(value):
    # A small checksum so a half-written or garbled file is never taken as a counter.
    return (value ^ 0x5A5A5A5A) % 65521


def _read(path):
    try:
        with open(path) as f:
            parts = f.read().split()
        value = int(parts[0])
        if len(parts) == 2 and int(parts[1]) == _check(value) and 0 <= value <= MAX:
            return value
    except (OSError, ValueError, IndexError):
        pass
    return None


class FrameCounter:
    """next() gives the next counter value; the store is written once per reservation."""

    def __init__(self, prefix="", reserve=RESERVE):
        self.paths = (prefix + _FILES[0], prefix + _FILES[1])
        self.reserve = reserve
        self.writes = 0
        self.write_errors = 0
        stored = [_read(p) for p in self.paths]
        self._slot = 0
        start = 0
        for i in (0, 1):
            if stored[i] is not None and stored[i] >= start:
                start = stored[i]
                self._slot = i  # the newest file; the next write goes to the other one
        self.value = start  # the next counter to hand out
        self.limit = start
        self._persist(start + reserve)

    def _persist(self, limit):
        if limit > MAX:
            limit = MAX
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
        self.value = v + 1 if v < MAX else v
        return v
