# Test stand-in for MicroPython's `machine` (the subset the firmware uses), for the
# firmware's own smoke tests. Devices on the fake I2C bus are chosen by FAKE_I2C
# (comma-separated: sht3x, bme680, ssd1306); FAKE_RUN_MS ends the run from WDT.feed().
import errno
import gc
import json
import os
import time

_T0 = time.ticks_ms()
_RUN_MS = int(os.getenv("FAKE_RUN_MS") or "0")


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._v = 1 if value is None else value
        self.handler = None

    def init(self, mode=-1, pull=-1, value=None):
        if value is not None:
            self._v = value

    def value(self, x=None):
        if x is None:
            return self._v
        self._v = x

    def __call__(self, x=None):
        return self.value(x)

    def irq(self, handler=None, trigger=0):
        self.handler = handler


def _crc8(a, b):
    crc = 0xFF
    for x in (a, b):
        crc ^= x
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class _SHT3x:
    def __init__(self):
        t = int((22.5 + 45) * 65535 / 175)
        h = int(45.0 * 65535 / 100)
        self.answer = bytes(
            [t >> 8, t & 0xFF, _crc8(t >> 8, t & 0xFF), h >> 8, h & 0xFF, _crc8(h >> 8, h & 0xFF)]
        )

    def write(self, buf):
        pass

    def read(self, buf):
        buf[:] = self.answer


class _BME680:
    # The published calibration vector, and one measurement (26.69 C, 987.17 hPa, 42.41 %).
    def __init__(self):
        r = bytearray(256)
        r[0xD0] = 0x61
        r[0x89 : 0x89 + 25] = bytes.fromhex("0065670300418fedd658008e1c7fff2e1e000097f3b5f61e00")
        r[0xE1 : 0xE1 + 16] = bytes.fromhex("40542a002d14789cb9654e9fe2120000")
        r[0x00:0x05] = bytes.fromhex("3000100000")
        p, t, h, g = 353485, 501240, 19019, 500
        r[0x1D : 0x1D + 15] = bytes(
            [0x80, 0, p >> 12, (p >> 4) & 0xFF, (p & 0xF) << 4, t >> 12, (t >> 4) & 0xFF,
             (t & 0xF) << 4, h >> 8, h & 0xFF, 0, 0, 0, g >> 2, ((g & 3) << 6) | 0x30 | 5]
        )  # fmt: skip
        self.regs = r


class _OLED:
    def __init__(self):
        self.frames = 0


_MODELS = {"sht3x": (0x44, _SHT3x), "bme680": (0x77, _BME680), "ssd1306": (0x3C, _OLED)}


class I2C:
    def __init__(self, id, scl=None, sda=None, freq=400000):
        self.devs = {}
        for name in (os.getenv("FAKE_I2C") or "sht3x,bme680,ssd1306").split(","):
            if name in _MODELS:
                addr, cls = _MODELS[name]
                self.devs[addr] = cls()

    def _dev(self, addr):
        d = self.devs.get(addr)
        if d is None:
            raise OSError(errno.ENODEV)
        return d

    def scan(self):
        return sorted(self.devs)

    def writeto(self, addr, buf, stop=True):
        d = self._dev(addr)
        if hasattr(d, "write"):
            d.write(buf)
        return 1

    def writevto(self, addr, bufs, stop=True):
        d = self._dev(addr)
        if isinstance(d, _OLED):
            d.frames += 1
        return 1

    def readfrom_into(self, addr, buf, stop=True):
        self._dev(addr).read(buf)

    def readfrom_mem_into(self, addr, reg, buf):
        d = self._dev(addr)
        buf[:] = d.regs[reg : reg + len(buf)]

    def writeto_mem(self, addr, reg, buf):
        self._dev(addr).regs[reg] = buf[0]


class SPI:
    def __init__(self, id, baudrate=1000000, polarity=0, phase=0):
        self.id = id


class ADC:
    CORE_VREF = 17

    def __init__(self, channel):
        self.channel = channel

    def read_u16(self):
        return int(1.21 * 65535 / 3.3)


_peak = [0]


class WDT:
    # Also samples the heap once per loop pass (live data after the last collection is
    # what the firmware keeps; the peak of gc.mem_alloc() includes garbage not yet freed).
    def __init__(self, timeout=5000):
        self.timeout = timeout

    def feed(self):
        used = gc.mem_alloc()
        if used > _peak[0]:
            _peak[0] = used
        if _RUN_MS and time.ticks_diff(time.ticks_ms(), _T0) > _RUN_MS:
            gc.collect()
            print("=" + json.dumps({"heap_peak": _peak[0], "heap_live": gc.mem_alloc()}))
            raise SystemExit(0)


def unique_id():
    return b"\x01\x02\x03\x04\x05\x06"


def reset():
    raise SystemExit(99)


def reset_cause():
    return 0


def freq():
    return 180000000
