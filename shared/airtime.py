# Airtime budget per rolling hour (duty cycle), e.g. 1 % in the EU868 band.
#
# The hour is kept as 60 one-minute buckets of microseconds on air, so the memory is fixed
# however many frames go out. A send is allowed when the airtime of the last 60 minutes
# plus the frame stays within duty_cycle_pct of an hour.
import time

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_BUCKETS = const(60)
_BUCKET_MS = const(60000)


class AirtimeBudget:
    """allow(toa_us) before sending, spend(toa_us) after. No budget when pct is None."""

    def __init__(self, duty_cycle_pct=None, now_ms=None):
        self.limit_us = None
        if duty_cycle_pct is not None:
            self.limit_us = int(3600 * 1000000 * duty_cycle_pct / 100)
        self._buckets = [0] * _BUCKETS
        self._index = 0
        self._t0 = time.ticks_ms() if now_ms is None else now_ms  # start of current bucket
        self.refused = 0

    def _advance(self, now_ms):
        elapsed = time.ticks_diff(now_ms, self._t0)
        if elapsed < _BUCKET_MS:
            return
        steps = elapsed // _BUCKET_MS
        if steps > _BUCKETS:
            steps = _BUCKETS
        for _ in range(steps):
            self._index = (self._index + 1) % _BUCKETS
            self._buckets[self._index] = 0
        self._t0 = time.ticks_add(self._t0, (elapsed // _BUCKET_MS) * _BUCKET_MS)

    def used_us(self, now_ms=None):
        self._advance(time.ticks_ms() if now_ms is None else now_ms)
        return sum(self._buckets)

    def allow(self, toa_us, now_ms=None):
        if self.limit_us is None:
            return True
        if self.used_us(now_ms) + toa_us <= self.limit_us:
            return True
        self.refused += 1
        return False

    def spend(self, toa_us, now_ms=None):
        self._advance(time.ticks_ms() if now_ms is None else now_ms)
        self._buckets[self._index] += toa_us
