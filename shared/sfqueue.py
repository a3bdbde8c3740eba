# Store-and-forward queue of unacknowledged readings, in RAM.
#
# A preallocated bytearray ring of fixed-size records (22 bytes each: 360 readings, one
# hour at the default interval, take about 7.7 KB), so the queue never allocates while it
# runs. Oldest first. The oldest readings may be "in flight": sent together in one frame
# under one frame counter, kept until that frame is acknowledged. When the queue is full,
# a push drops the oldest reading that is not in flight (a frame in flight must keep its
# content: a resend repeats its counter) and counts it.
#
# Record: taken_ds u32 | flags u8 | mask u8 | rn u16 (low bits) | temperature i16 | humidity u16
#         | pressure u32 | gas_resistance u32 | voltage u16
# Values are stored scaled to the metric's resolution (the air codec's decimals).
import struct

from micropython import const

from iiot_codec.metrics import BY_NAME, from_scaled, to_scaled

_FMT = "<IBBHhHIIH"
RECORD = struct.calcsize(_FMT)  # 22
_VALUES = "<hHIIH"
_VALUES_AT = const(8)
# metric, and the range of the integer the record stores it as (scaled to the metric's
# resolution, the codec's own rounding: a stored value encodes as it was measured)
FIELDS = (
    ("temperature", -32768, 32767),
    ("humidity", 0, 65535),
    ("pressure", 0, 0xFFFFFFFF),
    ("gas_resistance", 0, 0xFFFFFFFF),
    ("voltage", 0, 65535),
)
F_QUEUED = const(1)  # the "queued" console event was printed for this reading


class SFQueue:
    """Bounded FIFO of readings; the first ``flight`` of them are in flight."""

    def __init__(self, capacity):
        self.capacity = capacity  # at least 1 (config.py's range)
        self._buf = bytearray(RECORD * capacity)
        self._head = 0
        self._len = 0
        self.drops = 0
        self.flight = 0  # readings at the head sent under counter fcnt, not yet acked
        self.fcnt = None
        self._vals = [0] * 5

    def __len__(self):
        return self._len

    def _pos(self, i):
        if not 0 <= i < self._len:
            raise IndexError
        return ((self._head + i) % self.capacity) * RECORD

    def push(self, rn, taken_ds, readings):
        """Append reading number ``rn`` taken at uptime ``taken_ds`` (deciseconds).

        Returns the rn of the reading dropped to make room, or None.
        """
        dropped = None
        if self._len == self.capacity:
            dropped = self._drop()
        vals = self._vals
        mask = 0
        for i in range(len(FIELDS)):
            name, lo, hi = FIELDS[i]
            vals[i] = 0
            v = readings.get(name)
            if v is None:
                continue
            try:
                n = to_scaled(BY_NAME[name], v)
            except ValueError:  # CodecError: not a finite number
                continue
            if lo <= n <= hi:  # a value the record cannot hold is left out, never wrapped
                vals[i] = n
                mask |= 1 << i
        self._len += 1
        struct.pack_into(
            _FMT, self._buf, self._pos(self._len - 1), taken_ds, 0, mask,
            rn, vals[0], vals[1], vals[2], vals[3], vals[4],
        )  # fmt: skip
        return dropped

    def _drop(self):
        # The oldest reading not in flight; the head itself when everything is in flight
        # (then the frame in flight is abandoned: its content changes).
        i = self.flight if self.flight < self._len else 0
        rn = self.rn_at(i)
        buf = self._buf
        for j in range(i - 1, -1, -1):  # move the readings in flight up by one record
            src = self._pos(j)
            dst = self._pos(j + 1)
            buf[dst : dst + RECORD] = buf[src : src + RECORD]
        self._head = (self._head + 1) % self.capacity
        self._len -= 1
        if i == 0:
            self.release()
        self.drops += 1
        return rn

    def start_flight(self, k, fcnt):
        """The first ``k`` readings go out together under frame counter ``fcnt``."""
        self.flight = min(k, self._len)
        self.fcnt = fcnt

    def release(self):
        """Forget the frame in flight (its readings stay queued): the gateway did not take it."""
        self.flight = 0
        self.fcnt = None

    def pop_flight(self):
        """The frame in flight was acknowledged: remove its readings."""
        k = self.flight
        self._head = (self._head + k) % self.capacity
        self._len -= k
        self.release()
        return k

    def rn_at(self, i):
        return struct.unpack_from("<H", self._buf, self._pos(i) + 6)[0]

    def flag_at(self, i, flag):
        return bool(self._buf[self._pos(i) + 4] & flag)

    def set_flag_at(self, i, flag):
        self._buf[self._pos(i) + 4] |= flag

    def readings_at(self, i):
        """The i-th reading (0 = oldest) as a new dict of floats."""
        pos = self._pos(i)
        out = {}
        mask = self._buf[pos + 5]
        vals = struct.unpack_from(_VALUES, self._buf, pos + _VALUES_AT)
        for j in range(len(FIELDS)):
            if mask & (1 << j):
                name = FIELDS[j][0]
                out[name] = from_scaled(BY_NAME[name], vals[j])
        return out

    def entries(self, k, now_ds):
        """``(age_ms, readings)`` of the first ``k`` readings, oldest first, at uptime
        ``now_ds``: what the codec's encode_readings takes."""
        return [
            (
                ((now_ds - struct.unpack_from("<I", self._buf, self._pos(i))[0]) & 0xFFFFFFFF)
                * 100,
                self.readings_at(i),
            )
            for i in range(k)
        ]
