# SHT3x-DIS model (Sensirion datasheet): 16-bit commands, single-shot measurements.
#
# 0x2400/0x240B/0x2416 start a high/medium/low repeatability measurement without clock
# stretching (reading before it is done gets no ACK: ENODEV on the stm32 port), 0x2C06,
# 0x2C0D, 0x2C10 with clock stretching (the read waits). The reply is T msb, T lsb, CRC,
# RH msb, RH lsb, CRC with CRC-8 poly 0x31 init 0xFF. Also soft reset 0x30A2, status
# 0xF32D, clear status 0x3041, heater 0x306D/0x3066, break 0x3093. Other commands are
# not acknowledged (EIO).
import time

from _simhw import env

_TYPICAL_US = {0x00: 12500, 0x0B: 4500, 0x16: 2500, 0x06: 12500, 0x0D: 4500, 0x10: 2500}


def crc8(data):
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class SHT3x:
    def __init__(self, addr):
        self.addr = addr
        self._out = bytearray(6)
        self._out_len = 0  # bytes ready to read (0: a read is not acknowledged)
        self._ready_at = None
        self._stretch = False
        self._heater = False
        self._status = 0x0010  # reset detected
        self._pending = None  # (t, h) of the running measurement

    def i2c_write(self, parts):
        cmd = []
        for part in parts:
            for b in part:
                cmd.append(b)
        if len(cmd) < 2:
            return len(cmd)  # a lone byte: the sensor waits for the second one
        c = (cmd[0] << 8) | cmd[1]
        now = time.ticks_us()
        busy = self._ready_at is not None and time.ticks_diff(now, self._ready_at) < 0
        if busy and not self._stretch and c != 0x3093:
            raise OSError(5)  # busy measuring: the command is not acknowledged
        self._out_len = 0
        msb = c >> 8
        if msb in (0x24, 0x2C) and (c & 0xFF) in _TYPICAL_US:
            self._stretch = msb == 0x2C
            self._ready_at = time.ticks_add(now, _TYPICAL_US[c & 0xFF])
            t, h, p, g = env.truth()
            if self._heater:
                t += 3.0  # the heater warms the sensor by a few degrees
            self._pending = (t, h)
        elif c == 0x30A2:  # soft reset
            self._heater = False
            self._status = 0x0010
            self._ready_at = time.ticks_add(now, 1500)
            self._pending = None
            self._stretch = False
        elif c == 0xF32D:
            self._put_word(0, self._status)
            self._out_len = 3
        elif c == 0x3041:
            self._status &= ~0x8C13
        elif c == 0x306D:
            self._heater = True
            self._status |= 0x2000
        elif c == 0x3066:
            self._heater = False
            self._status &= ~0x2000
        elif c == 0x3093:
            self._pending = None
            self._ready_at = None
        else:
            self._status |= 0x0002  # command status: last command not processed
            raise OSError(5)
        return 2

    def _put_word(self, at, word):
        self._out[at] = word >> 8
        self._out[at + 1] = word & 0xFF
        self._out[at + 2] = crc8(self._out[at : at + 2])

    def i2c_read(self, buf):
        now = time.ticks_us()
        if self._pending is not None:
            wait = time.ticks_diff(self._ready_at, now)
            if wait > 0:
                if not self._stretch:
                    raise OSError(19)  # measurement running: read header not acknowledged
                time.sleep_us(wait)  # clock stretching holds the bus until done
            t, h = self._pending
            self._pending = None
            st = int((t + 45.0) * 65535.0 / 175.0 + 0.5)
            srh = int(h * 65535.0 / 100.0 + 0.5)
            st = 0 if st < 0 else (0xFFFF if st > 0xFFFF else st)
            srh = 0 if srh < 0 else (0xFFFF if srh > 0xFFFF else srh)
            self._put_word(0, st)
            self._put_word(3, srh)
            self._out_len = 6
            env.log_truth("sht3x", -45.0 + 175.0 * st / 65535.0, 100.0 * srh / 65535.0, 0, 0)
        elif self._ready_at is not None and time.ticks_diff(self._ready_at, now) > 0:
            raise OSError(19)  # resetting
        if not self._out_len:
            raise OSError(19)  # nothing to read: no ACK
        for i in range(len(buf)):
            buf[i] = self._out[i] if i < self._out_len else 0xFF
        self._out_len = 0
        self._ready_at = None
