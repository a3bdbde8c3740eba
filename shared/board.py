# Pins and buses of both boards, in one place (docs/hardware.md has the wiring table):
# node1 and node2 are the same NUCLEO-F446RE with the same radio and I2C wiring. Also what
# both applications need of the board itself: an uptime clock, the random seed and the
# supervised loop.
#
# NUCLEO-F446RE: I2C(1) on PB8 (SCL, D15) / PB9 (SDA, D14); SPI(1) on PA5 / PA6 / PA7;
# the SX1276 module's NSS, RESET, DIO0 and DIO1 on the Arduino header. Each EXTI line
# serves one pin number, so DIO0 (PA10, line 10) and DIO1 (PB3, line 3) differ, and the
# user button B1 is PC13 (line 13).
import gc
import random
import time

from console import log, oom
from machine import I2C, SPI, WDT, Pin, unique_id
from micropython import const

I2C_ID = const(1)
I2C_SCL = "PB8"
I2C_SDA = "PB9"
I2C_FREQ = const(400000)

SPI_ID = const(1)  # SCK PA5, MISO PA6, MOSI PA7 (PA5 is also the green LED LD2)
SPI_BAUD = const(5000000)

RADIO_CS = "PB6"  # D10
RADIO_RESET = "PC7"  # D9
RADIO_DIO0 = "PA10"  # D2, EXTI line 10
RADIO_DIO1 = "PB3"  # D3, EXTI line 3

BUTTON = "PC13"  # B1, active low (external pull-up on the NUCLEO)

SHT3X_ADDR = const(0x44)
OLED_ADDR = const(0x3C)


def i2c():
    return I2C(I2C_ID, scl=Pin(I2C_SCL), sda=Pin(I2C_SDA), freq=I2C_FREQ)


def radio(lora_cfg):
    """The SX1276 modem; RuntimeError when no radio answers (register 0x42 != 0x12)."""
    from lora import SX1276

    spi = SPI(SPI_ID, baudrate=SPI_BAUD, polarity=0, phase=0)
    return SX1276(
        spi,
        Pin(RADIO_CS, Pin.OUT, value=1),
        dio0=Pin(RADIO_DIO0, Pin.IN),
        dio1=Pin(RADIO_DIO1, Pin.IN),
        reset=Pin(RADIO_RESET, Pin.OUT, value=1),
        lora_cfg=lora_cfg,
    )


def button(handler):
    """B1 calls handler(pin) on press."""
    pin = Pin(BUTTON, Pin.IN)
    pin.irq(handler=handler, trigger=Pin.IRQ_FALLING)
    return pin


# Uptime that never wraps (ticks_ms does): seconds plus the milliseconds left over.
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


def seed_random():
    # Backoff jitter must differ between boards, and between boots of one board.
    seed = time.ticks_ms()
    try:
        for b in unique_id():
            seed = (seed * 31 + b) & 0x3FFFFFFF
    except Exception:
        pass
    random.seed(seed)


def supervise(app, name, wdt_ms):
    """Run ``app.step()`` for ever under the watchdog. A MemoryError (console.oom) or any
    other error (``app.errors["loop"]``) is counted, reported on the console and survived."""
    wdt = None
    try:
        wdt = WDT(timeout=wdt_ms)
    except Exception as e:
        log("%s: no watchdog (%r)" % (name, e))
    while True:
        try:
            if wdt is not None:
                wdt.feed()
            app.step()
        except MemoryError:
            gc.collect()
            oom(name)
            time.sleep_ms(10)
        except Exception as e:  # a bug must not stop the node; count and go on
            app.errors["loop"] += 1
            log("%s: loop error %r" % (name, e))
            time.sleep_ms(10)
