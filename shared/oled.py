# A guarded SSD1306 128x64 through micropython-lib's `ssd1306` driver: 8 lines of 16
# characters. A missing or failing display (or too little memory to load its driver) is
# tried again 10 s later; it never stops the node.
import time

from console import oom
from micropython import const

_COLS = const(16)
_ROWS = const(8)
_RETRY_MS = const(10000)


def num(value, fmt):
    """``value`` formatted for a display line, "--" when there is none."""
    return "--" if value is None else fmt % value


class Screen:
    def __init__(self, get_i2c, addr=0x3C, enabled=True):
        self.get_i2c = get_i2c  # the board's current I2C bus (it may be re-created)
        self.addr = addr
        self.enabled = enabled
        self.dev = None
        self.lines = [""] * _ROWS  # what is on the screen (tests and the REPL can read it)
        self._next_try = time.ticks_ms()

    def show(self, lines):
        """Draw up to 8 lines; returns False when the display is absent or failed."""
        for i in range(_ROWS):
            self.lines[i] = lines[i][:_COLS] if i < len(lines) else ""
        if not self.enabled or time.ticks_diff(time.ticks_ms(), self._next_try) < 0:
            return False
        try:
            if self.dev is None:
                import ssd1306

                self.dev = ssd1306.SSD1306_I2C(128, 64, self.get_i2c(), addr=self.addr)
            d = self.dev
            d.fill(0)
            for i in range(_ROWS):
                d.text(self.lines[i], 0, i * 8, 1)
            d.show()
            return True
        except ImportError:
            self.enabled = False  # not installed: run without a display
        except Exception as e:  # OSError from the bus, MemoryError loading the driver, ...
            if isinstance(e, MemoryError):
                oom("display")
            self.dev = None
            self._next_try = time.ticks_add(time.ticks_ms(), _RETRY_MS)
        return False
