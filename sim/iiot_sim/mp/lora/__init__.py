# Stand-in for micropython-lib's `lora` + `lora-sync` + `lora-sx127x`: SX1276 (sync) with
# the same constructor, configure(), send(), recv(), standby(), sleep(),
# get_time_on_air_us() and crc_errors, talking to the simulator's radio hub.
#
# Like the real pair it keeps the driver's beliefs (time on air: CRC on, preamble 12 unless
# told) apart from the chip's registers (what goes on air: reset values CRC off, preamble 8,
# 434 MHz, RFO) for settings the firmware does not pass. crc_errors counts every RX timeout
# and every packet with a bad CRC (dropped unless rx_crc_error), and recv() waits in
# single-receive segments of at most 1023 symbols, as the real driver does.
import json
import os
import struct
import time

from _simhw import hub
from machine import Pin

_BW = ("7.8", 7800, "10.4", 10400, "15.6", 15600, "20.8", 20800, "31.25", 31250,
       "41.7", 41700, "62.5", 62500, "125", 125000, "250", 250000, "500", 500000)  # fmt: skip


class ConfigError(ValueError):
    def __init__(self, field):
        super().__init__("Invalid lora_cfg {}".format(field))


class RxPacket(bytearray):
    def __init__(self, payload, ticks_ms=None, snr=None, rssi=None, valid_crc=True):
        super().__init__(payload)
        self.ticks_ms = ticks_ms
        self.snr = snr
        self.rssi = rssi
        self.valid_crc = valid_crc


def _toa_us(n, sf, bw, cr, pre, crc, ih):
    tsym = 1000000 * (1 << sf) // bw
    bits = max(0, 8 * n + (16 if crc else 0) - 4 * sf + 8 + (0 if ih else 20))
    bps = (sf - (2 if tsym >= 16000 else 0)) * 4
    return tsym * (17 + 4 * (pre + 8 + ((bits + bps - 1) // bps) * cr)) // 4


class SX1276:
    def __init__(self, spi, cs, dio0=None, dio1=None, reset=None, lora_cfg=None, ant_sw=None):
        self._ant_sw = ant_sw
        self.crc_errors = 0
        self.rx_crc_error = False
        self._rx = False
        # driver view: sf, bw, cr, preamble, crc, implicit header, pa_boost
        self._sf = 7
        self._bw_hz = 125000
        self._coding_rate = 5
        self._preamble_len = 12
        self._crc_en = True
        self._implicit_header = False
        self._pa_boost = False
        # chip registers: freq, sf, bw, cr, crc, ih, preamble, syncword, dBm, iq rx, iq tx
        self._c = [434000000, 7, 125000, 5, 0, 0, 8, 0x12, 0, 0, 0]
        self._pa = 0x4F  # RegPaConfig reset value: RFO, MaxPower 4, OutputPower 15
        self._dac = 0x84
        self._session = 0
        cs.init(Pin.OUT, value=1)
        if dio0:
            dio0.init(Pin.IN)
            dio0.irq(self._isr, trigger=Pin.IRQ_RISING)
            if dio1:
                dio1.init(Pin.IN)
                dio1.irq(self._isr, trigger=Pin.IRQ_RISING)
        if reset:
            reset.init(Pin.OUT, value=0)
            time.sleep_ms(1)
            reset(1)
            time.sleep_ms(5)
        if os.getenv("IIOT_SIM_RADIO") == "0":
            raise RuntimeError("Unexpected silicon version {}".format(0xFF))  # MISO floats
        self._config()
        if lora_cfg:
            self.configure(lora_cfg)

    def _isr(self, _):
        pass

    def configure(self, cfg):
        if self._rx is not False:
            raise RuntimeError("Receiving")
        c = self._c
        if "freq_khz" in cfg:
            hz = int(cfg["freq_khz"] * 1000)
            c[0] = (hz * 16384 // 1000000) * 1000000 // 16384  # RegFr resolution
        pa = mask = 0
        if "tx_ant" in cfg:
            self._pa_boost = cfg["tx_ant"].upper() == "PA_BOOST"
            pa = 0x80 if self._pa_boost else 0
            mask = 0x80
            if not self._pa_boost:
                self._dac = 0x84
        if "output_power" in cfg:
            dbm = int(cfg["output_power"])
            if self._pa_boost:
                if dbm >= 20:
                    op = 0x15  # what the real driver writes
                    self._dac = 0x87
                else:
                    op = min(max(dbm, 2), 17) - 2
                    self._dac = 0x84
            else:
                dbm = min(max(dbm, -4), 15)
                op = dbm if dbm > 0 else dbm + 4
                if dbm > 0:
                    pa |= 0x70
            pa |= op
            mask |= 0x7F
        self._pa = (self._pa & ~mask & 0xFF) | (pa & mask)
        if "pa_ramp_us" in cfg and int(cfg["pa_ramp_us"]) > 3400:
            raise ConfigError("pa_ramp_us")
        if "bw" in cfg:
            bw = str(cfg["bw"])
            if bw not in _BW:
                raise KeyError(bw)
            self._bw_hz = c[2] = _BW[_BW.index(bw) + 1]
        if "coding_rate" in cfg:
            self._coding_rate = c[3] = int(cfg["coding_rate"])
            if not 5 <= c[3] <= 8:
                raise ConfigError("coding_rate")
        if "implicit_header" in cfg:
            self._implicit_header = cfg["implicit_header"]
            c[5] = 1 if cfg["implicit_header"] else 0
        if "sf" in cfg:
            self._sf = c[1] = int(cfg["sf"])
            if not 6 <= c[1] <= 12:
                raise ConfigError("sf")
            if c[1] == 6 and not self._implicit_header:
                raise ConfigError("SF6 requires implicit_header mode")
        if "crc_en" in cfg:
            self._crc_en = cfg["crc_en"]
            c[4] = 1 if cfg["crc_en"] else 0
        if "invert_iq_rx" in cfg:
            c[9] = 1 if cfg["invert_iq_rx"] else 0
        if "invert_iq_tx" in cfg:
            c[10] = 1 if cfg["invert_iq_tx"] else 0
        if "preamble_len" in cfg:
            self._preamble_len = cfg["preamble_len"]
            c[6] = struct.unpack(">H", struct.pack(">H", cfg["preamble_len"]))[0]
        if "rx_boost" in cfg:
            _ = cfg["lna_boost_hf"]  # the real driver reads this key: KeyError without it
        if "syncword" in cfg:
            c[7] = cfg["syncword"] & 0xFF
        self._config()

    def _config(self):
        # Output power from RegPaConfig/RegPaDac (SX1276 datasheet 3.4.2); the module wires
        # one output pin to the antenna (IIOT_SIM_ANT, PA_BOOST by default).
        op = self._pa & 0x0F
        if self._pa & 0x80:
            dbm = 2 + op + (3 if self._dac == 0x87 else 0)
            pin = "PA_BOOST"
        else:
            dbm = 10.8 + 0.6 * ((self._pa >> 4) & 7) - (15 - op)
            pin = "RFO"
        if pin != (os.getenv("IIOT_SIM_ANT") or "PA_BOOST"):
            dbm -= 30  # that pin is not connected on this module
        self._c[8] = dbm
        hub.send(b"C" + json.dumps(self._c).encode())

    def get_time_on_air_us(self, n):
        return _toa_us(
            n, self._sf, self._bw_hz, self._coding_rate, self._preamble_len, self._crc_en,
            self._implicit_header,
        )  # fmt: skip

    def _msg(self, kind):
        hub.send(kind + struct.pack(">I", self._session))

    def standby(self):
        if self._rx is not False:
            self._rx = False
            self._msg(b"S")
        if self._ant_sw:
            self._ant_sw.idle()

    sleep = standby

    def send(self, packet, tx_at_ms=None):
        n = len(packet)
        if n > 255:
            raise ValueError("packet too long")
        self.standby()
        hub.heap_tick()
        if self._ant_sw:
            self._ant_sw.tx(self._pa_boost)
        if tx_at_ms is not None:
            time.sleep_ms(max(0, time.ticks_diff(tx_at_ms, time.ticks_ms())))
        c = self._c
        toa = _toa_us(n, c[1], c[2], c[3], c[6], c[4], c[5])
        start = time.ticks_us()
        hub.send(b"T" + struct.pack(">I", toa) + bytes(packet))
        # The driver sleeps its own estimate, then polls TX done every millisecond.
        time.sleep_ms(self.get_time_on_air_us(n) // 1000)
        while time.ticks_diff(time.ticks_us(), start) < toa:
            time.sleep_ms(1)
        if self._ant_sw:
            self._ant_sw.idle()
        return time.ticks_ms()

    def _segment(self, left_ms):
        # One hardware single receive: the timeout in whole symbols, 4 to 1023.
        tsym = 1000000 * (1 << self._c[1]) // self._c[2]
        syms = 1023 if left_ms is None else min(max((left_ms * 1000 + tsym - 1) // tsym, 4), 1023)
        return time.ticks_add(time.ticks_ms(), (syms * tsym + 999) // 1000)

    def recv(self, timeout_ms=None, rx_length=0xFF, rx_packet=None):
        hub.service()
        hub.heap_tick()
        self._session = (self._session + 1) & 0xFFFFFFFF
        deadline = None if timeout_ms is None else time.ticks_add(time.ticks_ms(), timeout_ms)
        self._rx = True if deadline is None else deadline
        if self._ant_sw:
            self._ant_sw.rx()
        self._msg(b"R")
        seg = self._segment(timeout_ms)
        busy = None  # end of the packet being received (its preamble was detected)
        while True:
            until = seg
            if busy is not None and time.ticks_diff(busy, until) > 0:
                until = busy
            m = hub.recv(max(0, time.ticks_diff(until, time.ticks_ms())))
            now = time.ticks_ms()
            if m is not None:
                if len(m) < 7 or struct.unpack_from(">I", m, 1)[0] != self._session:
                    continue  # for an earlier receive
                if m[0] == 0x44:  # D: preamble detected, the packet ends in ... ms
                    busy = time.ticks_add(now, struct.unpack_from(">H", m, 5)[0] + 20)
                    continue
                busy = None
                crc_error = bool(m[8] & 1)
                if crc_error:
                    self.crc_errors += 1
                if not crc_error or self.rx_crc_error:
                    return self._packet(m, rx_packet, crc_error, now)
                # The chip drops it; the driver receives again for the time left.
            elif time.ticks_diff(seg, now) > 0 or (
                busy is not None and time.ticks_diff(busy, now) > 0
            ):
                continue
            else:
                self.crc_errors += 1  # a hardware RX timeout: the real driver counts it here
                busy = None
            left = None if deadline is None else time.ticks_diff(deadline, now)
            if left is not None and left <= 0:
                self.standby()
                return None
            seg = self._segment(left)
            if m is not None:
                self._msg(b"R")  # receiving again after a dropped packet

    def _packet(self, m, rx_packet, crc_error, now):
        size = len(m) - 9
        if rx_packet is None or len(rx_packet) != size:
            rx_packet = RxPacket(size)
        rx_packet[:] = m[9:]
        rx_packet.ticks_ms = now
        rx_packet.snr = m[7] - 256 if m[7] & 0x80 else m[7]
        # The chip's RSSI register counts from the port of the band in use; the driver
        # subtracts the HF offset only for PA_BOOST (RFO at 915 MHz reads 7 dB low).
        reg = struct.unpack_from(">h", m, 5)[0] + (157 if self._c[0] > 525000000 else 164)
        rx_packet.rssi = min(max(reg, 0), 255) - (157 if self._pa_boost else 164)
        rx_packet.crc_error = crc_error
        self.standby()
        return rx_packet


SX1277 = SX1278 = SX1279 = SX1276
