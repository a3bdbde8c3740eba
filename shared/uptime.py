# Uptime that never wraps (ticks_ms does): seconds plus the milliseconds left over.
import time


class Uptime:
    def __init__(self):
        self._last = time.ticks_ms()
        self._ms = 0
        self.s = 0

    def update(self):
        now = time.ticks_ms()
        self._ms += time.ticks_diff(now, self._last)
        self._last = now
        if self._ms >= 1000:
            self.s += self._ms // 1000
            self._ms %= 1000
        return self.s

    def ds(self):
        """Uptime in deciseconds (the store-and-forward queue's time stamps)."""
        self.update()
        return self.s * 10 + self._ms // 100
