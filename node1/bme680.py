# Bosch BME680 gas/pressure/temperature/humidity sensor over I2C.
#
# Forced mode with the earlier system's settings: oversampling H x2, P x4, T x2, IIR
# filter 3, gas heater 300 C for 150 ms. Compensation is Bosch's floating-point variant
# (BME68x API, FPU branch), with the BME680 gas resistance formula that uses
# range_sw_err and the two range constant tables.
import time

try:
    from micropython import const
except ImportError:  # CPython (tests)

    def const(x):
        return x


_ADDR = const(0x77)  # SDO high; 0x76 with SDO low
_CHIP_ID = const(0x61)

_REG_CHIP_ID = const(0xD0)
_REG_RESET = const(0xE0)
_SOFT_RESET = const(0xB6)
_REG_COEFF1 = const(0x89)  # 25 bytes
_REG_COEFF2 = const(0xE1)  # 16 bytes
_REG_COEFF3 = const(0x00)  # 5 bytes: res_heat_val, -, res_heat_range, -, range_sw_err
_REG_FIELD0 = const(0x1D)  # 15 bytes of measurement data, status first
_REG_CTRL_GAS0 = const(0x70)
_REG_CTRL_GAS1 = const(0x71)
_REG_CTRL_HUM = const(0x72)
_REG_CTRL_MEAS = const(0x74)
_REG_CONFIG = const(0x75)
_REG_RES_HEAT0 = const(0x5A)
_REG_GAS_WAIT0 = const(0x64)

_OS_X2 = const(2)
_OS_X4 = const(3)
_FILTER_3 = const(2)  # IIR coefficient 3 is filter code 2
_RUN_GAS = const(0x10)  # BME680 (variant 0): run_gas is bit 4 of ctrl_gas_1
_MODE_FORCED = const(1)

_NEW_DATA = const(0x80)
_GAS_VALID = const(0x20)
_HEAT_STAB = const(0x10)

_HEATER_C = const(300)
_HEATER_MS = const(150)

# BME680 gas range tables (Bosch API, floating-point branch): corrections per range, in
# tenths of a percent (-1.0 % is -10), integers being the smaller constants on the board.
_K1_RANGE = (0, 0, 0, 0, 0, -10, 0, -8, 0, 0, -2, -5, 0, -10, 0, 0)
_K2_RANGE = (0, 0, 0, 0, 1, 7, 0, -8, -1, 0, 0, 0, 0, 0, 0, 0)


# The device is not a BME680, or it produced no new data.
BME680Error = RuntimeError


def _u16(buf, lsb):
    return buf[lsb] | (buf[lsb + 1] << 8)


def _s16(buf, lsb):
    v = buf[lsb] | (buf[lsb + 1] << 8)
    return v - 0x10000 if v & 0x8000 else v


def _s8(v):
    return v - 0x100 if v & 0x80 else v


class Calibration:
    """The calibration coefficients, named as in Bosch's API (_calibration sets them:
    t1..t3, p1..p10, h1..h7, gh1..gh3, res_heat_range, res_heat_val, range_sw_err)."""


def _calibration(c1, c2, c3):
    """Calibration from the blocks at 0x89 (25 bytes), 0xE1 (16 bytes) and 0x00 (5 bytes)."""
    k = Calibration()
    k.t2 = _s16(c1, 1)
    k.t3 = _s8(c1[3])
    k.p1 = _u16(c1, 5)
    k.p2 = _s16(c1, 7)
    k.p3 = _s8(c1[9])
    k.p4 = _s16(c1, 11)
    k.p5 = _s16(c1, 13)
    k.p7 = _s8(c1[15])
    k.p6 = _s8(c1[16])
    k.p8 = _s16(c1, 19)
    k.p9 = _s16(c1, 21)
    k.p10 = c1[23]
    k.h2 = (c2[0] << 4) | (c2[1] >> 4)
    k.h1 = (c2[2] << 4) | (c2[1] & 0x0F)
    k.h3 = _s8(c2[3])
    k.h4 = _s8(c2[4])
    k.h5 = _s8(c2[5])
    k.h6 = c2[6]
    k.h7 = _s8(c2[7])
    k.t1 = _u16(c2, 8)
    k.gh2 = _s16(c2, 10)
    k.gh1 = _s8(c2[12])
    k.gh3 = _s8(c2[13])
    k.res_heat_val = _s8(c3[0])
    k.res_heat_range = (c3[2] & 0x30) >> 4
    k.range_sw_err = _s8(c3[4] & 0xF0) // 16
    return k


def temperature(k, adc_t):
    """(temperature C, t_fine) from the raw 20-bit temperature."""
    var1 = ((adc_t / 16384.0) - (k.t1 / 1024.0)) * k.t2
    d = (adc_t / 131072.0) - (k.t1 / 8192.0)
    var2 = d * d * (k.t3 * 16.0)
    t_fine = var1 + var2
    return t_fine / 5120.0, t_fine


def pressure(k, t_fine, adc_p):
    """Pressure in Pa from the raw 20-bit pressure."""
    var1 = (t_fine / 2.0) - 64000.0
    var2 = var1 * var1 * (k.p6 / 131072.0)
    var2 = var2 + (var1 * k.p5 * 2.0)
    var2 = (var2 / 4.0) + (k.p4 * 65536.0)
    var1 = (((k.p3 * var1 * var1) / 16384.0) + (k.p2 * var1)) / 524288.0
    var1 = (1.0 + (var1 / 32768.0)) * k.p1
    if var1 == 0.0:
        return 0.0  # Bosch's guard against division by zero (an unprogrammed chip)
    p = 1048576.0 - adc_p
    p = ((p - (var2 / 4096.0)) * 6250.0) / var1
    var1 = (k.p9 * p * p) / 2147483648.0
    var2 = p * (k.p8 / 32768.0)
    q = p / 256.0
    var3 = q * q * q * (k.p10 / 131072.0)
    return p + (var1 + var2 + var3 + (k.p7 * 128.0)) / 16.0


def humidity(k, t_fine, adc_h):
    """Relative humidity in % (clamped to 0..100) from the raw 16-bit humidity."""
    tc = t_fine / 5120.0
    var1 = adc_h - ((k.h1 * 16.0) + ((k.h3 / 2.0) * tc))
    var2 = var1 * (
        (k.h2 / 262144.0) * (1.0 + ((k.h4 / 16384.0) * tc) + ((k.h5 / 1048576.0) * tc * tc))
    )
    var3 = k.h6 / 16384.0
    var4 = k.h7 / 2097152.0
    h = var2 + ((var3 + (var4 * tc)) * var2 * var2)
    if h > 100.0:
        return 100.0
    if h < 0.0:
        return 0.0
    return h


def gas_resistance(k, adc_gas, gas_range):
    """Gas resistance in ohms (BME680 formula with range_sw_err and the range tables)."""
    var1 = 1340.0 + (5.0 * k.range_sw_err)
    var2 = var1 * (1.0 + _K1_RANGE[gas_range] / 1000.0)
    var3 = 1.0 + (_K2_RANGE[gas_range] / 1000.0)
    return 1.0 / (var3 * 0.000000125 * (1 << gas_range) * (((adc_gas - 512.0) / var2) + 1.0))


def heater_resistance(k, target_c, ambient_c):
    """The res_heat_x register value for a heater target temperature (max 400 C)."""
    if target_c > 400:
        target_c = 400
    var1 = (k.gh1 / 16.0) + 49.0
    var2 = ((k.gh2 / 32768.0) * 0.0005) + 0.00235
    var3 = k.gh3 / 1024.0
    var4 = var1 * (1.0 + (var2 * target_c))
    var5 = var4 + (var3 * ambient_c)
    r = 3.4 * (
        (var5 * (4.0 / (4.0 + k.res_heat_range)) * (1.0 / (1.0 + (k.res_heat_val * 0.002)))) - 25
    )
    return int(r) & 0xFF


def heater_duration(ms):
    """The gas_wait_x register value: 6-bit factor times a power of 4 (150 ms -> 0x65)."""
    if ms >= 0xFC0:
        return 0xFF
    factor = 0
    while ms > 0x3F:
        ms //= 4
        factor += 1
    return ms + factor * 64


class BME680:
    """One BME680. I2C failures surface as OSError; a wrong chip or no data as BME680Error."""

    def __init__(self, i2c, addr=_ADDR):
        self.i2c = i2c
        self.addr = addr
        self.ambient_c = 25.0  # heater setpoint uses the last measured temperature
        self._data = bytearray(15)
        self._one = bytearray(1)
        if self._read8(_REG_CHIP_ID) != _CHIP_ID:
            raise BME680Error("no BME680 at %d" % addr)
        self._write8(_REG_RESET, _SOFT_RESET)
        time.sleep_ms(10)
        c1 = bytearray(25)
        c2 = bytearray(16)
        c3 = bytearray(5)
        i2c.readfrom_mem_into(addr, _REG_COEFF1, c1)
        i2c.readfrom_mem_into(addr, _REG_COEFF2, c2)
        i2c.readfrom_mem_into(addr, _REG_COEFF3, c3)
        self.cal = _calibration(c1, c2, c3)
        self._write8(_REG_CTRL_HUM, _OS_X2)
        self._write8(_REG_CONFIG, _FILTER_3 << 2)
        self._write8(_REG_GAS_WAIT0, heater_duration(_HEATER_MS))
        self._write8(_REG_CTRL_GAS0, 0)  # heater on (heat_off = 0)
        self._write8(_REG_CTRL_GAS1, _RUN_GAS)  # nb_conv 0: heater profile 0

    def _read8(self, reg):
        self.i2c.readfrom_mem_into(self.addr, reg, self._one)
        return self._one[0]

    def _write8(self, reg, value):
        self._one[0] = value
        self.i2c.writeto_mem(self.addr, reg, self._one)

    def measure(self):
        """One forced-mode measurement: (temperature C, humidity %, pressure hPa, gas ohms).

        gas is None when the heater did not reach a stable temperature or the gas reading
        is not valid (the other values still are).
        """
        k = self.cal
        self._write8(_REG_RES_HEAT0, heater_resistance(k, _HEATER_C, self.ambient_c))
        self._write8(_REG_CTRL_MEAS, (_OS_X2 << 5) | (_OS_X4 << 2) | _MODE_FORCED)
        # TPH conversion (~20 ms at these oversamplings) plus the heater time.
        time.sleep_ms(_HEATER_MS + 25)
        d = self._data
        for _ in range(10):
            self.i2c.readfrom_mem_into(self.addr, _REG_FIELD0, d)
            if d[0] & _NEW_DATA:
                break
            time.sleep_ms(10)
        else:
            raise BME680Error("BME680: no new data")
        adc_p = (d[2] << 12) | (d[3] << 4) | (d[4] >> 4)
        adc_t = (d[5] << 12) | (d[6] << 4) | (d[7] >> 4)
        adc_h = (d[8] << 8) | d[9]
        adc_g = (d[13] << 2) | (d[14] >> 6)
        t, t_fine = temperature(k, adc_t)
        self.ambient_c = t
        h = humidity(k, t_fine, adc_h)
        p = pressure(k, t_fine, adc_p) / 100.0
        g = None
        if (d[14] & _GAS_VALID) and (d[14] & _HEAT_STAB):
            g = gas_resistance(k, adc_g, d[14] & 0x0F)
        return t, h, p, g
