# A guarded SSD1306 128x64 through micropython-lib's `ssd1306` driver: 8 lines of 16
# characters. A missing or failing display is counted and tried again later; it never
# stops the node.
import time

COLS = 16
ROWS = 8
_RETRY_MS = 10000


class Screen:
    def __init__(self, get_i2c, addr=0x3C, enabled=True):
        self.get_i2c = get_i2c  # the board's current I2C bus (it may be re-created)
        self.addr = addr
        self.enabled = enabled
        self.dev = None
        self.failures = 0
        self.lines = [""] * ROWS  # what is on the screen (tests and the REPL can read it)
        self._next_try = time.ticks_ms()

    def _open(self):
        now = time.ticks_ms()
        if time.ticks_diff(now, self._next_try) < 0:
            return False
        try:
            import ssd1306
        except ImportError:
            self.enabled = False  # not installed: run without a display
            return False
        try:
            self.dev = ssd1306.SSD1306_I2C(128, 64, self.get_i2c(), addr=self.addr)
            return True
        except Exception:  # OSError from the bus, or anything the driver raises
            self.failures += 1
            self._next_try = time.ticks_add(now, _RETRY_MS)
            return False

    def show(self, lines):
        """Draw up to 8 lines; returns False when the display is absent or failed."""
        for i in range(ROWS):
            self.lines[i] = lines[i][:COLS] if i < len(lines) else ""
        if not self.enabled:
            return False
        if self.dev is None and not self._open():
            return False
        try:
            d = self.dev
            d.fill(0)
            for i in range(ROWS):
                if self.lines[i]:
                    d.text(self.lines[i], 0, i * 8, 1)
            d.show()
            return True
        except Exception:
            self.failures += 1
            self.dev = None
            self._next_try = time.ticks_add(time.ticks_ms(), _RETRY_MS)
            return False
