# Store-and-forward queue of unacknowledged readings, in RAM.
#
# A preallocated bytearray ring of fixed-size records (20 bytes each: 360 readings, one
# hour at the default interval, take about 7 KB), so the queue never allocates while it
# runs. Oldest first; when full, a push drops the oldest reading and counts it.
#
# Record: taken_ds u32 | flags u8 | mask u8 | temperature i16 | humidity u16
#         | pressure u32 | gas_resistance u32 | voltage u16
# Values are stored scaled to the metric's resolution (the air codec's decimals).
# Reading numbers are consecutive (pushes come in rn order, pops take the head), so only
# the head's is kept; so is the head's frame counter, as only the head is ever in flight.
import struct

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_FMT = "<IBBhHIIH"
RECORD = struct.calcsize(_FMT)  # 20
# metric name, decimals, min and max of the stored integer
FIELDS = (
    ("temperature", 2, -32768, 32767),
    ("humidity", 2, 0, 65535),
    ("pressure", 2, 0, 0xFFFFFFFF),
    ("gas_resistance", 0, 0, 0xFFFFFFFF),
    ("voltage", 3, 0, 65535),
)
F_QUEUED = const(1)  # the "queued" console event was printed for this reading
F_SENT = const(2)  # the "tx" console event was printed (the reading went on air)
_NO_VALUES = (0, 0, 0, 0, 0)


def quantize(value, decimals):
    """``value`` rounded to ``decimals`` the way the queue and the codec round it."""
    n = _scaled(value, decimals)
    return n / 10**decimals if decimals else n


def _scaled(value, decimals):
    # Half away from zero, as the codec rounds, so a stored value encodes identically.
    x = value * 10**decimals
    return int(x + 0.5) if x >= 0 else -int(-x + 0.5)


class SFQueue:
    """Bounded FIFO of readings. Only the head (oldest) is read or changed in place."""

    def __init__(self, capacity):
        if capacity < 1:
            capacity = 1
        self.capacity = capacity
        self._buf = bytearray(RECORD * capacity)
        self._head = 0
        self._len = 0
        self.drops = 0
        self._rn = 0  # reading number of the head
        self._fcnt = None  # frame counter of the head, once it went out
        self._vals = [0, 0, 0, 0, 0]

    def __len__(self):
        return self._len

    def push(self, rn, taken_ds, readings):
        """Append reading number ``rn`` (one more than the last pushed, unless empty).

        Returns the rn of the reading dropped to make room, or None.
        """
        if self._len and rn != self._rn + self._len:
            raise ValueError("reading numbers must be consecutive")
        if not self._len:
            self._rn = rn
        dropped = None
        if self._len == self.capacity:
            dropped = self.head_rn()
            self.pop()
            self.drops += 1
        vals = self._vals
        mask = 0
        for i in range(len(FIELDS)):
            name, decimals, lo, hi = FIELDS[i]
            vals[i] = 0
            v = readings.get(name)
            if v is None:
                continue
            try:
                n = _scaled(v, decimals)
            except (TypeError, ValueError, OverflowError):
                continue
            if lo <= n <= hi:  # a value the record cannot hold is left out, never wrapped
                vals[i] = n
                mask |= 1 << i
        pos = ((self._head + self._len) % self.capacity) * RECORD
        struct.pack_into(
            _FMT, self._buf, pos, taken_ds & 0xFFFFFFFF, 0, mask,
            vals[0], vals[1], vals[2], vals[3], vals[4],
        )  # fmt: skip
        self._len += 1
        return dropped

    def pop(self):
        """Remove the head (oldest) reading."""
        if self._len:
            self._head = (self._head + 1) % self.capacity
            self._len -= 1
            self._rn += 1
            self._fcnt = None

    def clear(self):
        self._head = 0
        self._len = 0
        self._fcnt = None

    def _pos(self):
        if not self._len:
            raise IndexError("queue is empty")
        return self._head * RECORD

    def head_rn(self):
        self._pos()
        return self._rn

    def head_taken_ds(self):
        return struct.unpack_from("<I", self._buf, self._pos())[0]

    def head_age_s(self, now_ds):
        """Age of the head reading in whole seconds at uptime now_ds (deciseconds)."""
        return ((now_ds - self.head_taken_ds()) & 0xFFFFFFFF) // 10

    def head_fcnt(self):
        """The counter the head went out under, or None if it was never sent."""
        self._pos()
        return self._fcnt

    def set_head_fcnt(self, fcnt):
        self._pos()
        self._fcnt = fcnt

    def head_flag(self, flag):
        return bool(self._buf[self._pos() + 4] & flag)

    def set_head_flag(self, flag):
        self._buf[self._pos() + 4] |= flag

    def flag_at(self, i, flag):
        """Flag of the i-th reading from the head (0 = head)."""
        return bool(self._buf[((self._head + i) % self.capacity) * RECORD + 4] & flag)

    def set_flag_at(self, i, flag):
        self._buf[((self._head + i) % self.capacity) * RECORD + 4] |= flag

    def rn_at(self, i):
        return self._rn + i

    def head_readings(self, out):
        """Fill dict ``out`` (cleared first) with the head's readings as floats."""
        pos = self._pos()
        out.clear()
        mask = self._buf[pos + 5]
        vals = struct.unpack_from("<hHIIH", self._buf, pos + 6)
        for i in range(len(FIELDS)):
            if mask & (1 << i):
                name, decimals, _, _ = FIELDS[i]
                out[name] = vals[i] / 10**decimals if decimals else vals[i]
        return out
