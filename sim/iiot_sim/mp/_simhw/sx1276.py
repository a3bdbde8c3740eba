# Semtech SX1276 in LoRa mode at its SPI registers (datasheet rev. 7, sections 4.1 and 6.4)
# behind the `machine` stand-in's SPI bus and pins; micropython-lib's lora-sx127x driver runs
# against it unchanged. What it models (SPI frames, FIFO, modes and their timing, IRQ flags
# and DIO lines, what the registers put on air and what a received packet puts in them) is
# listed in docs/simulator.md. The air is the orchestrator's hub (hub.py: C/T/R/S out, D/P
# in). Time is ticks_us; timed events happen when the MCU next touches the chip (an SPI
# frame, a pin, machine.idle(), which sleeps until the chip's next event).
import os
import struct
import time

from micropython import const

from _simhw import hub, mcu

_SLEEP = const(0)
_STDBY = const(1)
_TX = const(3)
_RXCONT = const(5)
_RXSINGLE = const(6)
_CAD = const(7)
_RX_TIMEOUT = const(0x80)
_RX_DONE = const(0x40)
_CRC_ERROR = const(0x20)
_VALID_HEADER = const(0x10)
_TX_DONE = const(0x08)
_CAD_DONE = const(0x04)
_FHSS = const(0x02)
_CAD_DETECTED = const(0x01)
_LOST_US = const(50000)  # no packet end this long after the expected end: lost track
_BW = (7800, 10400, 15600, 20800, 31250, 41700, 62500, 125000, 250000, 500000)
_NOISE = (-129, -128, -126, -125, -123, -122, -120, -117, -114, -111)  # dBm per bandwidth
# Power-on values of the LoRa register page 0x00-0x4F (the rest read 0), RegOpMode in
# FSK/OOK standby with LowFrequencyModeOn as after POR; RegInvertIQ 0x27 as LoRa mode
# really sets it (the datasheet says 0x26).
_RESET = bytes((
    0x00, 0x09, 0x1A, 0x0B, 0x00, 0x52, 0x6C, 0x80, 0x00, 0x4F, 0x09, 0x2B, 0x20, 0x00, 0x80, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x72, 0x70, 0x64,
    0x00, 0x08, 0x01, 0xFF, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xC3, 0x00, 0x27, 0x00, 0x00, 0x03, 0x0A, 0x00, 0x12, 0x52, 0x1D, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x12, 0x00, 0x2D, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0x84, 0x00, 0x00,
))  # fmt: skip
_SETTINGS = (0x1D, 0x1E, 0x20, 0x21, 0x26, 0x33, 0x39, 0x4D)  # besides 0x06-0x09
_READ_ONLY = (0x10, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x25, 0x42)


class SX1276:
    def __init__(self, pins):
        self.pins = pins
        self.regs = bytearray(0x80)
        self.fsk = bytearray(0x33)  # the FSK/OOK page 0x0D-0x3F (only RegImageCal used)
        self.fifo = bytearray(256)
        self.ant = os.getenv("IIOT_SIM_ANT") or "PA_BOOST"  # the PA pin the module wires
        self.msg = bytearray(5)  # R/S messages
        self.selected = False
        self.session = 0
        self.rx_t0 = 0  # ticks_us when the current receive started
        self.rx_us = 0  # receive time not yet counted in hub.rx_ms
        self.ready_at = None  # ticks_us when out of reset (None: ready)
        self.in_reset = False
        self._por()
        mcu.wire(pins["cs"], self._cs)
        if "reset" in pins:
            mcu.wire(pins["reset"], self._reset_line)
        hub.radio[0] = self._air
        hub.tickers.append(self.update)
        hub.wakeup[0] = self.next_us

    # ---- power, reset and chip select ----------------------------------------------------
    def _por(self):
        r = self.regs
        r[:] = b"\x00" * 0x80
        r[: len(_RESET)] = _RESET
        self.fsk[:] = b"\x00" * 0x33
        self.fsk[0x3B - 0x0D] = 0x82  # RegImageCal: AutoImageCalOn
        self.fifo[:] = b"\x00" * 256
        self.addr = -1
        self.write = False
        self.dirty = True
        self.locked = False  # demodulating a packet (preamble detected)
        self.header = False  # its header has been received
        self.t_event = 0  # TX end, RX timeout, CAD end, header or lost-track deadline
        self.t_end = 0  # expected end of the packet being received
        self.rx_w = 0  # where the receiver writes the next packet in the FIFO
        self.pkt_raw = 0  # RegPktRssiValue of the packet being received
        self.rx_cr = 1
        self._dio()

    def _reset_line(self, level):
        if level == 0:
            if self.regs[1] & 0x80 and self.regs[1] & 7 in (_RXCONT, _RXSINGLE):
                self._end_rx()
            self.in_reset = True
            self._por()
        elif self.in_reset:
            self.in_reset = False
            # The datasheet (7.2.2) asks for 5 ms before the chip is used; sleep_ms(5) counts
            # 1 ms ticks (stm32 and unix ports alike), so it lasts 4 to 5 ms: answer from 4.
            self.ready_at = time.ticks_add(time.ticks_us(), 4000)

    def _cs(self, level):
        if level:
            self.selected = False
            return
        self.selected = True
        self.addr = -1
        hub.spi[0] += 1
        m = self.regs[1]
        if m & 0x80 and (m & 7 == _RXCONT or m & 7 == _RXSINGLE):
            hub.service()  # what came over the air by now (it also runs update())
        else:
            self.update()

    def xfer(self, w, r, n, fill):
        if self.in_reset or self.ready_at is not None:
            if self.ready_at is None or time.ticks_diff(time.ticks_us(), self.ready_at) < 0:
                if r is not None:
                    for i in range(n):
                        r[i] = 0  # not answering yet
                return
            self.ready_at = None
        for i in range(n):
            b = fill if w is None else w[i]
            a = self.addr
            if a < 0:
                self.addr = b & 0x7F
                self.write = b & 0x80
                o = 0
            elif self.write:
                o = 0 if a == 0 else self._read(a)
                self._write(a, b)
            else:
                o = self._read(a)
            if a > 0:
                self.addr = (a + 1) & 0x7F
            if r is not None:
                r[i] = o

    # ---- registers -------------------------------------------------------------------------
    def _read(self, a):
        r = self.regs
        if 0x0D <= a <= 0x3F and not r[1] & 0x80:
            return self.fsk[a - 0x0D]
        if a == 0:
            if r[1] & 7 == _SLEEP:
                return 0
            p = r[0x0D]
            r[0x0D] = (p + 1) & 0xFF
            return self.fifo[p]
        if a == 0x18:  # RegModemStat
            s = self.rx_cr << 5
            if self.locked:
                s |= 0x07 | (0x08 if self.header else 0)
            else:
                s |= 0x10  # modem clear
            return s
        if a == 0x1B:  # RegRssiValue: the packet being received, else the noise floor
            if self.locked:
                return self.pkt_raw
            return _clamp(_NOISE[self._bwi()] + self._rssi_offset())
        if a == 0x2C:  # RegRssiWideband: noise, used by some drivers as entropy
            return time.ticks_us() & 0xFF
        return r[a]

    def _write(self, a, v):
        r = self.regs
        if a == 1:
            self._opmode(v)
        elif 0x0D <= a <= 0x3F and not r[1] & 0x80:
            if a == 0x3B:
                v &= ~0x60  # image calibration finishes at once
            self.fsk[a - 0x0D] = v
        elif a == 0:
            if r[1] & 7 != _SLEEP:
                p = r[0x0D]
                self.fifo[p] = v
                r[0x0D] = (p + 1) & 0xFF
        elif a == 0x12:
            r[0x12] &= ~v
            self._dio()
        elif a in _READ_ONLY:
            pass
        else:
            r[a] = v
            if a < 0x0A or a in _SETTINGS:
                self.dirty = True
            elif a == 0x40 or a == 0x41:
                self._dio()

    def _opmode(self, v):
        r = self.regs
        old = r[1]
        if (v ^ old) & 0x80 and old & 7 != _SLEEP and v & 7 != _SLEEP:
            v = (v & 0x7F) | (old & 0x80)  # LongRangeMode changes only in sleep mode
        mode = v & 7
        prev = old & 7 if old & 0x80 else -1  # -1: FSK/OOK, which is not modelled
        lora = v & 0x80
        if lora and mode == prev:
            r[1] = v
            return
        rx = prev in (_RXCONT, _RXSINGLE)
        if rx:
            self._end_rx()  # leaving a receive tells the hub
        r[1] = v
        if not lora:
            return
        now = time.ticks_us()
        if mode == _SLEEP:
            self.fifo[:] = b"\x00" * 256
            r[0x14] = r[0x15] = r[0x16] = r[0x17] = 0
        elif mode == _TX:  # (a transmission already on air cannot be called back)
            self._transmit(now)
        elif mode in (_RXCONT, _RXSINGLE):
            if not rx:
                self.rx_w = r[0x0F]
                r[0x14] = r[0x15] = r[0x16] = r[0x17] = 0
            self.rx_t0 = now
            self._listen(now, mode == _RXSINGLE)
        elif mode == _CAD:
            s = self._settings()
            self.t_event = time.ticks_add(now, ((1 << s[1]) + 32) * 1000000 // s[2])

    def _set_standby(self):
        self.regs[1] = (self.regs[1] & 0xF8) | _STDBY

    # ---- interrupts and DIO lines ----------------------------------------------------------
    def _irq(self, bits):
        self.regs[0x12] |= bits & ~self.regs[0x11]
        self._dio()

    def _dio(self):
        f = self.regs[0x12]
        m = self.regs[0x40]
        p = self.pins
        if "dio0" in p:
            mcu._level(p["dio0"], 1 if f & (_RX_DONE, _TX_DONE, _CAD_DONE, 0)[m >> 6] else 0)
        if "dio1" in p:
            sel = (_RX_TIMEOUT, _FHSS, _CAD_DETECTED, 0)[(m >> 4) & 3]
            mcu._level(p["dio1"], 1 if f & sel else 0)
        if "dio2" in p:
            mcu._level(p["dio2"], 1 if f & (_FHSS, _FHSS, _FHSS, 0)[(m >> 2) & 3] else 0)
        if "dio3" in p:
            mcu._level(p["dio3"], 1 if f & (_CAD_DONE, _VALID_HEADER, _CRC_ERROR, 0)[m & 3] else 0)

    # ---- timed events --------------------------------------------------------------------------
    def update(self):
        r = self.regs
        if not r[1] & 0x80 or self.in_reset:
            return
        mode = r[1] & 7
        if mode not in (_TX, _RXCONT, _RXSINGLE, _CAD):
            return
        now = time.ticks_us()
        if mode == _RXCONT and not self.locked:
            return
        if time.ticks_diff(now, self.t_event) < 0:
            return
        if mode == _TX:
            self._set_standby()
            self._irq(_TX_DONE)
        elif mode == _CAD:
            self._set_standby()
            self._irq(_CAD_DONE)  # CadDetected needs the hub to say what is on air
        elif self.locked and not self.header:
            self._valid_header()
            self.t_event = time.ticks_add(self.t_end, _LOST_US)
        else:  # a single receive's timeout, or a packet whose end never came
            self.locked = False
            if mode == _RXSINGLE:
                self._end_rx()
                self._set_standby()
            self._irq(_RX_TIMEOUT)

    def next_us(self):
        """Microseconds until the next timed event, or None."""
        r = self.regs
        if not r[1] & 0x80 or r[1] & 7 not in (_TX, _RXSINGLE, _CAD) and not self.locked:
            return None
        return time.ticks_diff(self.t_event, time.ticks_us())

    def _valid_header(self):
        self.header = True
        if not self.regs[0x1D] & 1:  # explicit header mode
            _count(self.regs, 0x14)  # RegRxHeaderCntValue
            self._irq(_VALID_HEADER)

    # ---- the air ---------------------------------------------------------------------------------
    def _settings(self):
        # (freq Hz, sf, bw Hz, symbol us) from the registers; a changed set goes to the hub.
        r = self.regs
        if self.dirty:
            self.dirty = False
            frf = (r[6] << 16) | (r[7] << 8) | r[8]
            freq = (frf >> 8) * 15625 + (((frf & 0xFF) * 15625) >> 8)  # FXOSC 32 MHz / 2^19
            sf = min(max(r[0x1E] >> 4, 6), 12)
            bw = _BW[self._bwi()]
            self.s = (freq, sf, bw, (1 << sf) * 1000000 // bw)
            pa = r[9]
            if pa & 0x80:  # PA_BOOST: 17 dBm at OutputPower 15, 3 dB more with PaDac 0x87
                dbm = 20 + 10 * (pa & 0x0F) + (30 if r[0x4D] & 7 == 7 else 0)
                pin = "PA_BOOST"
            else:  # RFO: Pmax = 10.8 + 0.6 MaxPower, Pout = Pmax - (15 - OutputPower)
                dbm = 108 + 6 * ((pa >> 4) & 7) - 10 * (15 - (pa & 0x0F))
                pin = "RFO"
            if pin != self.ant:
                dbm -= 300  # that pin is not connected to the antenna on this module
            a = -dbm if dbm < 0 else dbm
            hub.send(
                (
                    "C[%d,%d,%d,%d,%d,%d,%d,%d,%s%d.%d,%d,%d]"
                    % (freq, sf, bw, ((r[0x1D] >> 1) & 7) + 4, (r[0x1E] >> 2) & 1,
                       r[0x1D] & 1, (r[0x20] << 8) | r[0x21], r[0x39], "-" if dbm < 0 else "",
                       a // 10, a % 10, (r[0x33] >> 6) & 1, 0 if r[0x33] & 1 else 1)
                ).encode()
            )  # fmt: skip
        return self.s

    def _bwi(self):
        i = self.regs[0x1D] >> 4
        return i if i < 10 else 7

    def _rssi_offset(self):
        return 157 if self._settings()[0] > 525000000 else 164

    def _transmit(self, now):
        r = self.regs
        s = self._settings()
        n = r[0x22]
        sf = s[1]
        bits = 8 * n + 16 * ((r[0x1E] >> 2) & 1) - 4 * sf + 8 + (0 if r[0x1D] & 1 else 20)
        bps = 4 * (sf - 2 * ((r[0x26] >> 3) & 1))
        syms_x4 = 17 + 4 * (((r[0x20] << 8) | r[0x21]) + 8 + (max(bits, 0) + bps - 1) // bps
                            * (((r[0x1D] >> 1) & 7) + 4))  # fmt: skip
        toa = s[3] * syms_x4 // 4
        buf = hub.BUF
        struct.pack_into(">BI", buf, 0, 0x54, toa)  # T
        base = r[0x0E]
        for i in range(n):
            buf[5 + i] = self.fifo[(base + i) & 0xFF]
        hub.send(hub.MV[: 5 + n])
        self.t_event = time.ticks_add(now, toa)

    def _msg(self, kind):
        struct.pack_into(">BI", self.msg, 0, kind, self.session)
        hub.send(self.msg)

    def _listen(self, now, single):
        r = self.regs
        s = self._settings()
        self.session = (self.session + 1) & 0x3FFFFFFF
        self.locked = False
        self.header = False
        if single:
            syms = ((r[0x1E] & 3) << 8) | r[0x1F]
            self.t_event = time.ticks_add(now, syms * s[3])
        self._msg(0x52)  # R

    def _end_rx(self):
        self.locked = False
        self._msg(0x53)  # S
        us = self.rx_us + time.ticks_diff(time.ticks_us(), self.rx_t0)
        hub.rx_ms[0] += us // 1000  # time spent receiving, for the heap event
        self.rx_us = us % 1000

    def _air(self, buf, n):
        # A hub datagram: D (preamble detected) or P (the packet, at its end).
        r = self.regs
        mode = r[1] & 7
        if not r[1] & 0x80 or (mode != _RXCONT and mode != _RXSINGLE) or n < 7:
            return
        if ((buf[1] & 0x3F) << 24) | (buf[2] << 16) | (buf[3] << 8) | buf[4] != self.session:
            return  # for an earlier receive
        now = time.ticks_us()
        tsym = self._settings()[3]
        if buf[0] == 0x44:  # D: the rest of the preamble, then the header (8 symbols)
            if not self.locked:
                self.locked = True
                self.header = False
                self.t_end = time.ticks_add(now, ((buf[5] << 8) | buf[6]) * 1000)
                t = time.ticks_add(now, 14 * tsym)
                self.t_event = t if time.ticks_diff(self.t_end, t) > 0 else self.t_end
                self.pkt_raw = _clamp(-100 + self._rssi_offset())
            return
        if n < 9:
            return
        rssi = (buf[5] << 8) | buf[6]
        if rssi & 0x8000:
            rssi -= 0x10000
        snr = buf[7]  # RegPktSnrValue: dB x4, two's complement
        crc = buf[8] & 1
        size = n - 9
        if r[0x1D] & 1:  # implicit header: the receiver decodes RegPayloadLength bytes
            if r[0x22] != size and (r[0x1E] >> 2) & 1:
                crc = 1
            size = r[0x22]
        if not self.header:
            self._valid_header()
        w = self.rx_w
        for i in range(size):
            self.fifo[(w + i) & 0xFF] = buf[9 + i] if 9 + i < n else 0
        r[0x10] = w
        self.rx_w = (w + size) & 0xFF
        r[0x25] = self.rx_w
        r[0x13] = size
        r[0x19] = snr
        # The strength below the noise adds the (negative) SNR (datasheet 5.5.5).
        self.pkt_raw = _clamp(rssi + self._rssi_offset() - ((snr - 256) >> 2 if snr & 0x80 else 0))
        r[0x1A] = self.pkt_raw
        r[0x1C] = (r[0x1C] & 0xBF) | (0x40 if crc or buf[8] & 2 else 0)  # CrcOnPayload
        self.rx_cr = (r[0x1D] >> 1) & 7
        if not crc:
            _count(r, 0x16)  # RegRxPacketCntValue
        self.locked = False
        if mode == _RXSINGLE:
            self._end_rx()
            self._set_standby()
        else:  # continuous: still listening, a new session for the hub
            self._listen(now, False)
        self._irq(_RX_DONE | (_CRC_ERROR if crc else 0))


def _clamp(v):
    return 0 if v < 0 else 255 if v > 255 else v


def _count(r, a):
    # A 16-bit counter register pair, MSB first.
    n = ((r[a] << 8) | r[a + 1]) + 1
    r[a] = (n >> 8) & 0xFF
    r[a + 1] = n & 0xFF
