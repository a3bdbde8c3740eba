# Sensirion SHT3x temperature/humidity sensor over I2C (both boards use it).
#
# Single-shot measurement, high repeatability, no clock stretching (0x2400). The sensor
# sends T msb, T lsb, CRC, RH msb, RH lsb, CRC; each word has its own CRC-8 (poly 0x31,
# init 0xFF), and a bad CRC is an error, never a reading.
import time

try:
    from micropython import const
except ImportError:  # CPython (tests, tools)

    def const(x):
        return x


ADDR = const(0x44)
_CMD_MEASURE = b"\x24\x00"  # single shot, high repeatability, no clock stretching
_CMD_SOFT_RESET = b"\x30\xa2"
_MEASURE_MS = const(16)  # datasheet: 15.5 ms max for high repeatability


class SHT3xError(Exception):
    """The sensor answered, but with data that cannot be a reading (bad CRC)."""


def crc8(buf, start=0, end=None):
    """CRC-8 of buf[start:end], polynomial 0x31, init 0xFF, no reflection (0xBEEF -> 0x92)."""
    if end is None:
        end = len(buf)
    crc = 0xFF
    for i in range(start, end):
        crc ^= buf[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def convert(raw_t, raw_rh):
    """(temperature C, relative humidity %) from the two raw 16-bit words."""
    return -45.0 + 175.0 * raw_t / 65535.0, 100.0 * raw_rh / 65535.0


def parse(buf):
    """Check both CRCs of a 6-byte answer and convert it; SHT3xError on a bad CRC."""
    if crc8(buf, 0, 2) != buf[2] or crc8(buf, 3, 5) != buf[5]:
        raise SHT3xError("SHT3x CRC mismatch")
    return convert((buf[0] << 8) | buf[1], (buf[3] << 8) | buf[4])


class SHT3x:
    """One SHT3x on an I2C bus. I2C failures surface as OSError from the bus."""

    def __init__(self, i2c, addr=ADDR):
        self.i2c = i2c
        self.addr = addr
        self._buf = bytearray(6)  # reused: no allocation per measurement

    def reset(self):
        self.i2c.writeto(self.addr, _CMD_SOFT_RESET)
        time.sleep_ms(2)

    def measure(self):
        """Return (temperature C, humidity %). OSError (bus) or SHT3xError (CRC)."""
        self.i2c.writeto(self.addr, _CMD_MEASURE)
        time.sleep_ms(_MEASURE_MS)
        self.i2c.readfrom_into(self.addr, self._buf)
        return parse(self._buf)
