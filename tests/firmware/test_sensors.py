"""SHT3x and BME680 drivers in the MicroPython unix port, against datasheet values."""

from __future__ import annotations

import pytest
from fw_mp import MpError, MpRunner

# A fake I2C bus that answers like an SHT3x at 0x44 with fixed raw words.
SHT_BUS = """
import json, errno
import sht3x

class Bus:
    def __init__(self, answer):
        self.answer = bytes(answer)
        self.written = []
    def writeto(self, addr, buf):
        if addr != 0x44:
            raise OSError(errno.ENODEV)
        self.written.append(bytes(buf))
    def readfrom_into(self, addr, buf):
        buf[:] = self.answer

def out(**kw):
    print("=" + json.dumps(kw))
"""


def test_sht3x_crc_and_conversion(mp: MpRunner) -> None:
    results = mp.run(
        SHT_BUS
        + """
out(crc=sht3x.crc8(b"\\xbe\\xef"))
c = sht3x.crc8(b"\\x66\\x66")
bus = Bus([0x66, 0x66, c, 0x66, 0x66, c])
t, h = sht3x.SHT3x(bus).measure()
out(t=t, h=h, cmd=[list(w) for w in bus.written])
""",
        node="node2",
    )
    assert results[0]["crc"] == 0x92
    assert results[1]["t"] == pytest.approx(25.0, abs=1e-9)
    assert results[1]["h"] == pytest.approx(40.0, abs=1e-9)
    assert results[1]["cmd"] == [[0x24, 0x00]]


@pytest.mark.parametrize("bad", [2, 5])
def test_sht3x_bad_crc_is_an_error_not_a_reading(mp: MpRunner, bad: int) -> None:
    results = mp.run(
        SHT_BUS
        + f"""
c = sht3x.crc8(b"\\x66\\x66")
answer = [0x66, 0x66, c, 0x66, 0x66, c]
answer[{bad}] ^= 0x01
try:
    sht3x.SHT3x(Bus(answer)).measure()
    out(error=None)
except sht3x.SHT3xError as e:
    out(error="crc")
"""
    )
    assert results == [{"error": "crc"}]


def test_sht3x_absent_device_raises_oserror(mp: MpRunner) -> None:
    results = mp.run(
        SHT_BUS
        + """
try:
    sht3x.SHT3x(Bus(b"\\x00" * 6), addr=0x45).measure()
    out(error=None)
except OSError as e:
    out(error=e.errno == errno.ENODEV)
"""
    )
    assert results == [{"error": True}]


VECTOR = dict(
    t1=26041, t2=26469, t3=3, p1=36673, p2=-10515, p3=88, p4=7310, p5=-129, p6=30, p7=46,
    p8=-3177, p9=-2379, p10=30, h1=676, h2=1029, h3=0, h4=45, h5=20, h6=120, h7=-100,
    gh1=-30, gh2=-24754, gh3=18, res_heat_range=1, res_heat_val=48, range_sw_err=0,
)  # fmt: skip


def _cal_blocks(v: dict[str, int]) -> tuple[bytes, bytes, bytes]:
    """The register blocks a BME680 with calibration ``v`` holds at 0x89, 0xE1 and 0x00."""

    def le16(x: int) -> list[int]:
        x &= 0xFFFF
        return [x & 0xFF, x >> 8]

    c1 = [0] * 25
    c1[1:3] = le16(v["t2"])
    c1[3] = v["t3"] & 0xFF
    c1[5:7] = le16(v["p1"])
    c1[7:9] = le16(v["p2"])
    c1[9] = v["p3"] & 0xFF
    c1[11:13] = le16(v["p4"])
    c1[13:15] = le16(v["p5"])
    c1[15] = v["p7"] & 0xFF
    c1[16] = v["p6"] & 0xFF
    c1[19:21] = le16(v["p8"])
    c1[21:23] = le16(v["p9"])
    c1[23] = v["p10"]
    c2 = [0] * 16
    c2[0] = v["h2"] >> 4
    c2[1] = ((v["h2"] & 0x0F) << 4) | (v["h1"] & 0x0F)
    c2[2] = v["h1"] >> 4
    c2[3] = v["h3"] & 0xFF
    c2[4] = v["h4"] & 0xFF
    c2[5] = v["h5"] & 0xFF
    c2[6] = v["h6"]
    c2[7] = v["h7"] & 0xFF
    c2[8:10] = le16(v["t1"])
    c2[10:12] = le16(v["gh2"])
    c2[12] = v["gh1"] & 0xFF
    c2[13] = v["gh3"] & 0xFF
    c3 = [v["res_heat_val"] & 0xFF, 0, v["res_heat_range"] << 4, 0, (v["range_sw_err"] << 4) & 0xFF]
    return bytes(c1), bytes(c2), bytes(c3)


def _bme_bus(adc_t: int, adc_p: int, adc_h: int, gas: int, gas_range: int, flags: int) -> str:
    c1, c2, c3 = _cal_blocks(VECTOR)
    field = [0] * 15
    field[0] = 0x80
    field[2:5] = [adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0x0F) << 4]
    field[5:8] = [adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0x0F) << 4]
    field[8:10] = [adc_h >> 8, adc_h & 0xFF]
    field[13] = gas >> 2
    field[14] = ((gas & 0x03) << 6) | flags | gas_range
    return f"""
import json, errno
import bme680

class Bus:
    # A BME680 register file at 0x77: calibration blocks and one measurement.
    def __init__(self):
        self.regs = bytearray(256)
        self.regs[0xD0] = 0x61
        self.regs[0x89:0x89 + 25] = {c1!r}
        self.regs[0xE1:0xE1 + 16] = {c2!r}
        self.regs[0x00:0x05] = {c3!r}
        self.regs[0x1D:0x1D + 15] = {bytes(field)!r}
        self.writes = {{}}
    def readfrom_mem_into(self, addr, reg, buf):
        if addr != 0x77:
            raise OSError(errno.ENODEV)
        buf[:] = self.regs[reg:reg + len(buf)]
    def writeto_mem(self, addr, reg, buf):
        if addr != 0x77:
            raise OSError(errno.ENODEV)
        self.writes[reg] = buf[0]

def out(**kw):
    print("=" + json.dumps(kw))
"""


def test_bme680_compensation_matches_published_vector(mp: MpRunner) -> None:
    bus = _bme_bus(501240, 353485, 19019, 500, 5, 0x30)
    results = mp.run(
        bus
        + """
bus = Bus()
s = bme680.BME680(bus)
k = s.cal
out(cal={n: getattr(k, n) for n in dir(k) if not n.startswith("_")})
t, h, p, g = s.measure()
out(t=t, h=h, p=p, g=g, writes=bus.writes)
out(res_heat=bme680.heater_resistance(k, 320, 25), wait=bme680.heater_duration(150))
"""
    )
    cal, meas, heat = results
    assert cal["cal"] == VECTOR
    assert meas["t"] == pytest.approx(26.69, abs=0.005)
    assert meas["p"] * 100 == pytest.approx(98717, abs=1)
    assert meas["h"] == pytest.approx(42.41, abs=0.005)
    # gas: Bosch float formula for adc 500, range 5 (k1 -1 %, k2 +0.7 %), range_sw_err 0
    var2 = 1340.0 * (1 - 0.01)
    expected = 1 / (1.007 * 0.000000125 * 32 * ((500 - 512) / var2 + 1))
    assert meas["g"] == pytest.approx(expected, rel=1e-9)
    assert heat == {"res_heat": 106, "wait": 0x65}
    w = {int(k): v for k, v in meas["writes"].items()}
    assert w[0xE0] == 0xB6  # soft reset
    assert w[0x72] == 0b010  # humidity x2
    assert w[0x74] == (0b010 << 5) | (0b011 << 2) | 1  # T x2, P x4, forced
    assert w[0x75] == 2 << 2  # IIR filter coefficient 3
    assert w[0x71] == 0x10  # run_gas, heater profile 0
    assert w[0x64] == 0x65  # 150 ms


def test_bme680_unstable_heater_gives_no_gas_but_other_values(mp: MpRunner) -> None:
    results = mp.run(
        _bme_bus(501240, 353485, 19019, 500, 5, 0x20)
        + """
t, h, p, g = bme680.BME680(Bus()).measure()
out(t=t, g=g)
"""
    )
    assert results[0]["g"] is None
    assert results[0]["t"] == pytest.approx(26.69, abs=0.005)


def test_bme680_wrong_chip_id_raises(mp: MpRunner) -> None:
    results = mp.run(
        _bme_bus(0, 0, 0, 0, 0, 0)
        + """
bus = Bus()
bus.regs[0xD0] = 0x60
try:
    bme680.BME680(bus)
    out(error=None)
except bme680.BME680Error:
    out(error="chip")
"""
    )
    assert results == [{"error": "chip"}]


def test_runner_reports_micropython_failures(mp: MpRunner) -> None:
    with pytest.raises(MpError):
        mp.run("raise ValueError('boom')")
