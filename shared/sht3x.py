# Sensirion SHT3x temperature/humidity sensor over I2C (both boards use it).
#
# Single-shot measurement, high repeatability, no clock stretching (0x2400). The sensor
# sends T msb, T lsb, CRC, RH msb, RH lsb, CRC; each word has its own CRC-8 (poly 0x31,
# init 0xFF), and a bad CRC is an error, never a reading.
import time

from micropython import const

ADDR = const(0x44)
_CMD_MEASURE = b"\x24\x00"  # single shot, high repeatability, no clock stretching
_MEASURE_MS = const(16)  # datasheet: 15.5 ms max for high repeatability


SHT3xError = ValueError


def crc8(buf, start=0, end=2):
    """CRC-8 of buf[start:end], polynomial 0x31, init 0xFF, no reflection (0xBEEF -> 0x92)."""
    crc = 0xFF
    for i in range(start, end):
        crc ^= buf[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class SHT3x:
    """One SHT3x on an I2C bus. I2C failures surface as OSError from the bus."""

    def __init__(self, i2c, addr=ADDR):
        self.i2c = i2c
        self.addr = addr
        self._buf = bytearray(6)  # reused: no allocation per measurement

    def measure(self):
        """(temperature C, humidity %); OSError (bus) or SHT3xError (a bad CRC: the sensor
        answered with data that cannot be a reading). The answer is T msb, T lsb, CRC,
        RH msb, RH lsb, CRC; T = -45 + 175 S / 65535, RH = 100 S / 65535."""
        b = self._buf
        self.i2c.writeto(self.addr, _CMD_MEASURE)
        time.sleep_ms(_MEASURE_MS)
        self.i2c.readfrom_into(self.addr, b)
        if crc8(b) != b[2] or crc8(b, 3, 5) != b[5]:
            raise SHT3xError("SHT3x CRC mismatch")
        return -45 + 175 * ((b[0] << 8) | b[1]) / 65535, 100 * ((b[3] << 8) | b[4]) / 65535
