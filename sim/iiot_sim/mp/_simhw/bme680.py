# BME680 register model (Bosch BME680 datasheet, I2C interface).
#
# Chip id 0xD0 = 0x61, soft reset 0xE0 <- 0xB6, calibration in NVM at 0x89 (25 bytes),
# 0xE1 (16 bytes) and 0x00 (5 bytes), ctrl_gas 0x70/0x71, ctrl_hum 0x72, ctrl_meas 0x74,
# config 0x75, heater profiles at 0x5A (res_heat) and 0x64 (gas_wait), results at 0x1D..
# A forced-mode measurement takes the time Bosch's API computes; until then `measuring`
# is set and the result registers keep their old values. Raw ADC values are generated from
# the environment's truth by inverting Bosch's floating-point compensation, with the
# chip's IIR filter on temperature and pressure. Register writes follow the datasheet: after
# the first data byte, further bytes are (register, value) pairs (no write auto-increment).
import struct
import time

from micropython import const

from _simhw import env

_CHIP_ID = const(0x61)
_REG_MEAS_STATUS = const(0x1D)
_REG_CTRL_GAS_0 = const(0x70)
_REG_CTRL_GAS_1 = const(0x71)
_REG_CTRL_HUM = const(0x72)
_REG_CTRL_MEAS = const(0x74)
_REG_CONFIG = const(0x75)
_REG_CHIP_ID = const(0xD0)
_REG_RESET = const(0xE0)
_STARTUP_US = const(2000)

# Calibration: the published test vector in the team's design notes (a real chip's NVM).
T1 = 26041
T2 = 26469
T3 = 3
P1 = 36673
P2 = -10515
P3 = 88
P4 = 7310
P5 = -129
P6 = 30
P7 = 46
P8 = -3177
P9 = -2379
P10 = 30
H1 = 676
H2 = 1029
H3 = 0
H4 = 45
H5 = 20
H6 = 120
H7 = -100
GH1 = -30
GH2 = -24754
GH3 = 18
RES_HEAT_RANGE = 1
RES_HEAT_VAL = 48
RANGE_SW_ERR = 0

_K1 = (0.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0, -0.8, 0.0, 0.0, -0.2, -0.5, 0.0, -1.0, 0.0, 0.0)
_K2 = (0.0, 0.0, 0.0, 0.0, 0.1, 0.7, 0.0, -0.8, -0.1, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
_OS_CYCLES = (0, 1, 2, 4, 8, 16, 16, 16)
_FILTER = (0, 1, 3, 7, 15, 31, 63, 127)
_WAIT_FACTOR = (1, 4, 16, 64)


def _nvm(regs):
    # 0x89 block: index i is register 0x89 + i
    def put16(reg, v):
        struct.pack_into("<h" if v < 0 else "<H", regs, reg, v)

    put16(0x8A, T2)
    regs[0x8C] = T3 & 0xFF
    put16(0x8E, P1)
    put16(0x90, P2)
    regs[0x92] = P3 & 0xFF
    put16(0x94, P4)
    put16(0x96, P5)
    regs[0x98] = P7 & 0xFF
    regs[0x99] = P6 & 0xFF
    put16(0x9C, P8)
    put16(0x9E, P9)
    regs[0xA0] = P10 & 0xFF
    regs[0xE1] = (H2 >> 4) & 0xFF
    regs[0xE2] = ((H2 & 0x0F) << 4) | (H1 & 0x0F)
    regs[0xE3] = (H1 >> 4) & 0xFF
    regs[0xE4] = H3 & 0xFF
    regs[0xE5] = H4 & 0xFF
    regs[0xE6] = H5 & 0xFF
    regs[0xE7] = H6 & 0xFF
    regs[0xE8] = H7 & 0xFF
    put16(0xE9, T1)
    put16(0xEB, GH2)
    regs[0xED] = GH1 & 0xFF
    regs[0xEE] = GH3 & 0xFF
    regs[0x00] = RES_HEAT_VAL & 0xFF
    regs[0x02] = (RES_HEAT_RANGE & 0x03) << 4
    regs[0x04] = (RANGE_SW_ERR & 0x0F) << 4
    regs[_REG_CHIP_ID] = _CHIP_ID


# Bosch BME68x floating-point compensation (FPU branch), used forwards for the inversion.
def t_fine_of(adc_t):
    v1 = ((adc_t / 16384.0) - (T1 / 1024.0)) * T2
    v2 = ((adc_t / 131072.0) - (T1 / 8192.0)) ** 2 * (T3 * 16.0)
    return v1 + v2


def pressure_of(adc_p, t_fine):
    v1 = (t_fine / 2.0) - 64000.0
    v2 = v1 * v1 * (P6 / 131072.0)
    v2 = v2 + (v1 * P5 * 2.0)
    v2 = (v2 / 4.0) + (P4 * 65536.0)
    v1 = (((P3 * v1 * v1) / 16384.0) + (P2 * v1)) / 524288.0
    v1 = (1.0 + (v1 / 32768.0)) * P1
    p = 1048576.0 - adc_p
    if v1 == 0:
        return 0.0
    p = ((p - (v2 / 4096.0)) * 6250.0) / v1
    v1 = (P9 * p * p) / 2147483648.0
    v2 = p * (P8 / 32768.0)
    v3 = (p / 256.0) * (p / 256.0) * (p / 256.0) * (P10 / 131072.0)
    return p + (v1 + v2 + v3 + (P7 * 128.0)) / 16.0


def humidity_of(adc_h, t_fine):
    tc = t_fine / 5120.0
    v1 = adc_h - ((H1 * 16.0) + ((H3 / 2.0) * tc))
    v2 = v1 * ((H2 / 262144.0) * (1.0 + ((H4 / 16384.0) * tc) + ((H5 / 1048576.0) * tc * tc)))
    v3 = H6 / 16384.0
    v4 = H7 / 2097152.0
    return v2 + ((v3 + (v4 * tc)) * v2 * v2)


def _bisect(f, target, lo, hi, rising):
    # Smallest integer x in [lo, hi] with f(x) >= target (rising) or f(x) <= target.
    while lo < hi:
        mid = (lo + hi) >> 1
        v = f(mid)
        if (v >= target) if rising else (v <= target):
            hi = mid
        else:
            lo = mid + 1
    return lo


def raw_gas(ohms):
    """(adc, range) the chip would report for a gas resistance, auto-ranging like the chip."""
    v1 = 1340.0 + 5.0 * RANGE_SW_ERR
    for rng in range(16):
        var2 = v1 * (1.0 + _K1[rng] / 100.0)
        var3 = 1.0 + _K2[rng] / 100.0
        k = 1.0 / (ohms * var3 * 0.000000125 * (1 << rng))
        adc = int(512.0 + var2 * (k - 1.0) + 0.5)
        if adc <= 1023:
            return (adc if adc > 0 else 0), rng
    return 0, 15


class BME680:
    def __init__(self, addr):
        self.addr = addr
        self.regs = bytearray(256)
        _nvm(self.regs)
        self._ptr = 0
        self._iir_t = None
        self._iir_p = None
        self._done_at = None
        self._ready_at = time.ticks_us()  # power-on
        self._reset_regs()

    def _reset_regs(self):
        r = self.regs
        for reg in range(0x1D, 0x76):
            r[reg] = 0
        r[0x1F] = r[0x22] = r[0x25] = 0x80  # result registers' reset values
        self._iir_t = None
        self._iir_p = None
        self._done_at = None

    def _check_awake(self):
        if time.ticks_diff(time.ticks_us(), self._ready_at) < 0:
            raise OSError(19)  # still starting up after a reset: no ACK

    # I2C interface (called by machine.I2C)
    def i2c_write(self, parts):
        self._check_awake()
        n = 0
        first = True
        reg = None
        for part in parts:
            for b in part:
                n += 1
                if first:
                    self._ptr = b
                    first = False
                elif reg is None:
                    self._write_reg(self._ptr, b)
                    reg = -1
                elif reg == -1:
                    reg = b
                else:
                    self._write_reg(reg, b)
                    reg = -1
        return n

    def i2c_read(self, buf):
        self._check_awake()
        self._update()
        p = self._ptr
        for i in range(len(buf)):
            buf[i] = self.regs[(p + i) & 0xFF]
        self._ptr = (p + len(buf)) & 0xFF

    def _write_reg(self, reg, value):
        if reg == _REG_RESET:
            if value == 0xB6:
                self._reset_regs()
                self._ready_at = time.ticks_add(time.ticks_us(), _STARTUP_US)
            return
        if 0x50 <= reg <= 0x6D or reg in (_REG_CTRL_GAS_0, _REG_CTRL_GAS_1, _REG_CTRL_HUM):
            self.regs[reg] = value
        elif reg == _REG_CONFIG:
            self.regs[reg] = value & 0x1D
        elif reg == _REG_CTRL_MEAS:
            self._update()
            self.regs[reg] = value
            if value & 0x03 == 0x01:
                self._start()
        # other registers are read-only or reserved: the write is ignored

    def _start(self):
        r = self.regs
        osrs_t = (r[_REG_CTRL_MEAS] >> 5) & 7
        osrs_p = (r[_REG_CTRL_MEAS] >> 2) & 7
        osrs_h = r[_REG_CTRL_HUM] & 7
        cycles = _OS_CYCLES[osrs_t] + _OS_CYCLES[osrs_p] + _OS_CYCLES[osrs_h]
        us = cycles * 1963 + 477 * 4 + 477 * 5 + 500 + 1000
        if r[_REG_CTRL_GAS_1] & 0x10:
            us += self._gas_wait_ms() * 1000
        self._done_at = time.ticks_add(time.ticks_us(), us)
        status = 0x20
        if r[_REG_CTRL_GAS_1] & 0x10:
            status |= 0x40
        r[_REG_MEAS_STATUS] = status | (r[_REG_CTRL_GAS_1] & 0x0F)

    def _gas_wait_ms(self):
        w = self.regs[0x64 + (self.regs[_REG_CTRL_GAS_1] & 0x0F) % 10]
        return (w & 0x3F) * _WAIT_FACTOR[w >> 6]

    def _update(self):
        if self._done_at is None or time.ticks_diff(time.ticks_us(), self._done_at) < 0:
            return
        self._done_at = None
        self._measure()

    def _measure(self):
        r = self.regs
        t, h, p, g = env.truth()
        osrs_t = (r[_REG_CTRL_MEAS] >> 5) & 7
        osrs_p = (r[_REG_CTRL_MEAS] >> 2) & 7
        osrs_h = r[_REG_CTRL_HUM] & 7
        coeff = _FILTER[(r[_REG_CONFIG] >> 2) & 7]
        target = t * 5120.0
        adc_t = _bisect(t_fine_of, target, 0, 0xFFFFF, True)
        adc_p = _bisect(lambda a: pressure_of(a, target), p * 100.0, 0, 0xFFFFF, False)
        adc_h = _bisect(lambda a: humidity_of(a, target), h, 0, 0xFFFF, True)
        if coeff > 1:
            # Datasheet IIR: new = (old * (c - 1) + adc) / c, loaded directly the first time.
            if self._iir_t is not None:
                adc_t = (self._iir_t * (coeff - 1) + adc_t) // coeff
                adc_p = (self._iir_p * (coeff - 1) + adc_p) // coeff
            self._iir_t = adc_t
            self._iir_p = adc_p
        elif coeff == 0:
            # Without the filter the resolution is 16 bits + (oversampling setting - 1).
            adc_t &= ~((1 << (5 - min(max(osrs_t, 1), 5))) - 1)
            adc_p &= ~((1 << (5 - min(max(osrs_p, 1), 5))) - 1)
        if osrs_t == 0:
            adc_t = 0x80000
        if osrs_p == 0:
            adc_p = 0x80000
        if osrs_h == 0:
            adc_h = 0x8000
        r[0x1F] = adc_p >> 12
        r[0x20] = (adc_p >> 4) & 0xFF
        r[0x21] = (adc_p & 0x0F) << 4
        r[0x22] = adc_t >> 12
        r[0x23] = (adc_t >> 4) & 0xFF
        r[0x24] = (adc_t & 0x0F) << 4
        r[0x25] = adc_h >> 8
        r[0x26] = adc_h & 0xFF
        nb = r[_REG_CTRL_GAS_1] & 0x0F
        if r[_REG_CTRL_GAS_1] & 0x10:
            adc_g, rng = raw_gas(g)
            flags = 0x20  # gas_valid
            heater_on = not (r[_REG_CTRL_GAS_0] & 0x08)
            if heater_on and r[0x5A + nb % 10] and self._gas_wait_ms() >= 20:
                flags |= 0x10  # heat_stab: the heater reached its target in time
            r[0x2A] = adc_g >> 2
            r[0x2B] = ((adc_g & 3) << 6) | flags | rng
        else:
            r[0x2B] &= 0xCF  # no gas conversion: not valid, not stable
        r[_REG_MEAS_STATUS] = 0x80 | nb  # new_data_0, measurement index
        r[_REG_CTRL_MEAS] &= 0xFC  # back to sleep mode after a forced measurement
        env.log_truth("bme680", t, h, p, g)
