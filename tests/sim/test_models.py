"""Device models against datasheet facts, through the firmware's own drivers where they
exist (node1/bme680.py, shared/sht3x.py, node1/display.py), in the MicroPython unix port."""

from __future__ import annotations

import json

import pytest
from conftest import run_mp

from iiot_sim.display import DisplayImage

ENV = {"temperature": 23.456, "humidity": 41.23, "pressure": 1001.7, "gas": 87654.0, "drift": 0}


def models_env(tmp_path, devices: str, env: dict | None = None) -> dict[str, str]:
    return {
        "IIOT_SIM_I2C": devices,
        "IIOT_SIM_ENV": json.dumps(env or ENV),
        "IIOT_SIM_TRUTH": str(tmp_path / "truth.log"),
        "IIOT_SIM_DISPLAY_DIR": str(tmp_path),
    }


def truth_lines(tmp_path, sensor: str) -> list[list[float]]:
    rows = []
    for line in (tmp_path / "truth.log").read_text().splitlines():
        name, *values = line.split()
        if name == sensor:
            rows.append([float(v) for v in values[1:]])
    return rows


def bosch_float(regs: bytes, adc_t: int, adc_p: int, adc_h: int) -> tuple[float, float, float]:
    """Bosch's floating-point compensation (BME68x API), independent of the model's code."""

    def u16(i):
        return regs[i] | regs[i + 1] << 8  # noqa: E704

    def s16(i):
        return u16(i) - 65536 if u16(i) & 0x8000 else u16(i)  # noqa: E704

    def s8(i):
        return regs[i] - 256 if regs[i] & 0x80 else regs[i]  # noqa: E704

    t1, t2, t3 = u16(0xE9), s16(0x8A), s8(0x8C)
    p1, p2, p3, p4, p5 = u16(0x8E), s16(0x90), s8(0x92), s16(0x94), s16(0x96)
    p6, p7, p8, p9, p10 = s8(0x99), s8(0x98), s16(0x9C), s16(0x9E), regs[0xA0]
    h1 = regs[0xE3] << 4 | regs[0xE2] & 0x0F
    h2 = regs[0xE1] << 4 | regs[0xE2] >> 4
    h3, h4, h5, h6, h7 = s8(0xE4), s8(0xE5), s8(0xE6), regs[0xE7], s8(0xE8)
    v1 = (adc_t / 16384.0 - t1 / 1024.0) * t2
    v2 = (adc_t / 131072.0 - t1 / 8192.0) ** 2 * (t3 * 16.0)
    t_fine = v1 + v2
    v1 = t_fine / 2.0 - 64000.0
    v2 = v1 * v1 * (p6 / 131072.0) + v1 * p5 * 2.0
    v2 = v2 / 4.0 + p4 * 65536.0
    v1 = ((p3 * v1 * v1) / 16384.0 + p2 * v1) / 524288.0
    v1 = (1.0 + v1 / 32768.0) * p1
    p = ((1048576.0 - adc_p - v2 / 4096.0) * 6250.0) / v1
    p += (p9 * p * p / 2147483648.0 + p * (p8 / 32768.0) + (p / 256.0) ** 3 * (p10 / 131072.0)
          + p7 * 128.0) / 16.0  # fmt: skip
    tc = t_fine / 5120.0
    v1 = adc_h - (h1 * 16.0 + (h3 / 2.0) * tc)
    v2 = v1 * ((h2 / 262144.0) * (1.0 + (h4 / 16384.0) * tc + (h5 / 1048576.0) * tc * tc))
    h = v2 + (h6 / 16384.0 + (h7 / 2097152.0) * tc) * v2 * v2
    return tc, p, h


BME_RAW = """
import json, time
from machine import I2C, Pin
i2c = I2C(1, scl=Pin("PB8"), sda=Pin("PB9"))
regs = bytearray(256)
for start, n in ((0x89, 25), (0xE1, 16), (0x00, 5)):
    regs[start:start + n] = i2c.readfrom_mem(0x77, start, n)
print("=" + json.dumps({"id": i2c.readfrom_mem(0x77, 0xD0, 1)[0], "regs": bytes(regs).hex()}))
i2c.writeto_mem(0x77, 0xE0, b"\\xb6")
try:
    i2c.readfrom_mem(0x77, 0xD0, 1)
    print("=" + json.dumps({"after_reset": "ack"}))
except OSError as e:
    print("=" + json.dumps({"after_reset": e.args[0]}))
time.sleep_ms(10)
i2c.writeto_mem(0x77, 0x72, b"\\x02")           # humidity x2
i2c.writeto_mem(0x77, 0x74, bytes([(2 << 5) | (3 << 2) | 1]))  # T x2, P x4, forced
early = i2c.readfrom_mem(0x77, 0x1D, 1)[0]
time.sleep_ms(30)
d = i2c.readfrom_mem(0x77, 0x1D, 15)
print("=" + json.dumps({"early": early, "data": d.hex(),
                        "mode": i2c.readfrom_mem(0x77, 0x74, 1)[0] & 3}))
"""


def test_bme680_registers_follow_the_datasheet_and_invert_bosch_compensation(
    micropython_bin, tmp_path
) -> None:
    out = run_mp(micropython_bin, BME_RAW, models_env(tmp_path, "bme680@0x77"))
    regs = bytes.fromhex(out[0]["regs"])
    assert out[0]["id"] == 0x61
    # The published vector is the chip's calibration: T1=26041 T2=26469 ... GH3=18.
    assert regs[0xE9] | regs[0xEA] << 8 == 26041 and regs[0x8A] | regs[0x8B] << 8 == 26469
    assert (regs[0xE3] << 4 | regs[0xE2] & 0x0F) == 676 and regs[0xEE] == 18
    assert regs[0x00] == 48 and (regs[0x02] >> 4) & 3 == 1
    assert out[1]["after_reset"] == 19  # still starting up: no ACK (ENODEV)
    assert out[2]["early"] & 0x20 and not out[2]["early"] & 0x80  # measuring, no new data
    assert out[2]["mode"] == 0  # back to sleep after the forced measurement
    d = bytes.fromhex(out[2]["data"])
    assert d[0] & 0x80  # new_data_0
    adc_p = d[2] << 12 | d[3] << 4 | d[4] >> 4
    adc_t = d[5] << 12 | d[6] << 4 | d[7] >> 4
    adc_h = d[8] << 8 | d[9]
    t, p, h = bosch_float(regs, adc_t, adc_p, adc_h)
    assert t == pytest.approx(ENV["temperature"], abs=0.005)
    assert p / 100 == pytest.approx(ENV["pressure"], abs=0.01)
    assert h == pytest.approx(ENV["humidity"], abs=0.01)


def test_published_vector_through_the_reference_compensation() -> None:
    regs = bytearray(256)
    for reg, value in ((0x8A, 26469), (0x8E, 36673), (0x90, -10515), (0x94, 7310),
                       (0x96, -129), (0x9C, -3177), (0x9E, -2379), (0xE9, 26041)):  # fmt: skip
        regs[reg : reg + 2] = (value & 0xFFFF).to_bytes(2, "little")
    regs[0x8C], regs[0x92], regs[0x99], regs[0x98], regs[0xA0] = 3, 88, 30, 46, 30
    regs[0xE1], regs[0xE2], regs[0xE3] = 1029 >> 4, (1029 & 15) << 4 | (676 & 15), 676 >> 4
    regs[0xE4:0xE9] = bytes((0, 45, 20, 120, (-100) & 0xFF))
    t, p, h = bosch_float(bytes(regs), 501240, 353485, 19019)
    assert round(t, 2) == 26.69 and round(h, 2) == 42.41 and abs(p - 98717) < 1


BME_DRIVER = """
import json
from machine import I2C, Pin
from bme680 import BME680
s = BME680(I2C(1, scl=Pin("PB8"), sda=Pin("PB9")), addr=0x77)
for _ in range(3):
    print("=" + json.dumps(s.measure()))
"""


def test_firmware_bme680_driver_reads_the_truth_back(micropython_bin, tmp_path) -> None:
    out = run_mp(micropython_bin, BME_DRIVER, models_env(tmp_path, "bme680@0x77"))
    truths = truth_lines(tmp_path, "bme680")
    assert len(out) == len(truths) == 3
    for (t, h, p, g), (tt, th, tp, tg) in zip(out, truths, strict=True):
        assert t == pytest.approx(tt, abs=0.01)
        assert h == pytest.approx(th, abs=0.02)
        assert p == pytest.approx(tp, abs=0.01)
        assert g == pytest.approx(tg, rel=0.01)  # 10-bit gas ADC


def test_firmware_bme680_driver_follows_a_drifting_truth(micropython_bin, tmp_path) -> None:
    env = dict(ENV, drift=1, period_s=2.0)  # a fast swing: values move between readings
    out = run_mp(micropython_bin, BME_DRIVER, models_env(tmp_path, "bme680@0x77", env))
    truths = truth_lines(tmp_path, "bme680")
    temps = [r[0] for r in out]
    assert max(temps) - min(temps) > 0.05
    # The chip's IIR filter (coefficient 3) smooths temperature and pressure: the reading
    # lags the truth but stays within the swing.
    assert min(r[0] for r in truths) - 0.5 < temps[-1] < max(r[0] for r in truths) + 0.5
    # Humidity is not filtered, but its compensation uses the filtered temperature.
    assert out[-1][1] == pytest.approx(truths[-1][1], abs=0.3)


SHT = """
import json, time
from machine import I2C, Pin
from sht3x import SHT3x
i2c = I2C(1, scl=Pin("PB8"), sda=Pin("PB9"))
print("=" + json.dumps(SHT3x(i2c).measure()))
i2c.writeto(0x44, b"\\x24\\x00")
try:
    i2c.readfrom(0x44, 6)
    early = "ack"
except OSError as e:
    early = e.args[0]
time.sleep_ms(16)
raw = i2c.readfrom(0x44, 6)
try:
    i2c.writeto(0x44, b"\\x12\\x34")
    bad = "ack"
except OSError as e:
    bad = e.args[0]
print("=" + json.dumps({"early": early, "raw": raw.hex(), "bad": bad}))
"""


def crc8(data: bytes) -> int:
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc << 1 ^ 0x31) & 0xFF if crc & 0x80 else crc << 1 & 0xFF
    return crc


def test_sht3x_single_shot_crc_and_timing(micropython_bin, tmp_path) -> None:
    assert crc8(b"\xbe\xef") == 0x92  # datasheet example
    out = run_mp(micropython_bin, SHT, models_env(tmp_path, "sht3x@0x44"))
    t, h = out[0]
    truth = truth_lines(tmp_path, "sht3x")[0]
    assert t == pytest.approx(truth[0], abs=1e-4) and h == pytest.approx(truth[1], abs=1e-4)
    assert t == pytest.approx(ENV["temperature"], abs=0.003)
    assert out[1]["early"] == 19  # read before the measurement is done: no ACK
    assert out[1]["bad"] == 5  # unknown command: data NACK (EIO)
    raw = bytes.fromhex(out[1]["raw"])
    assert crc8(raw[0:2]) == raw[2] and crc8(raw[3:5]) == raw[5]


UNPLUG = """
import json
from machine import I2C, Pin
from _simhw import i2cbus, control
i2c = I2C(1, scl=Pin("PB8"), sda=Pin("PB9"))
res = {"scan": i2c.scan()}
control.dispatch(b'{"op": "unplug", "addr": 68}')
try:
    i2c.readfrom(0x44, 6)
except OSError as e:
    res["unplugged"] = e.args[0]
res["scan2"] = i2c.scan()
control.dispatch(b'{"op": "plug", "addr": 68}')
control.dispatch(b'{"op": "fail", "addr": 68, "n": 1, "errno": 5}')
try:
    i2c.writeto(0x44, b"\\x24\\x00")
except OSError as e:
    res["fail"] = e.args[0]
res["after"] = i2c.writeto(0x44, b"\\x24\\x00")
print("=" + json.dumps(res))
"""


def test_unplugged_and_failing_devices_raise_the_stm32_errors(micropython_bin, tmp_path) -> None:
    (out,) = run_mp(micropython_bin, UNPLUG, models_env(tmp_path, "sht3x@0x44,bme680@0x77"))
    assert out == {"scan": [0x44, 0x77], "unplugged": 19, "scan2": [0x77], "fail": 5, "after": 2}


DISPLAY = """
from machine import I2C, Pin
from display import Display
d = Display(lambda: I2C(1, scl=Pin("PB8"), sda=Pin("PB9")))
ok = d.update({"temperature": 21.5, "humidity": 40.2, "pressure": 1001.2}, 42, -61, 9.5, 3, 7)
print("=" + str(int(ok)))
"""


def test_display_shows_what_the_firmware_drew(micropython_bin, tmp_path) -> None:
    out = run_mp(micropython_bin, DISPLAY, models_env(tmp_path, "ssd1306@0x3c"))
    assert out == [1]
    image = DisplayImage.load(tmp_path / "display_3c.bin")
    assert image.on and not image.inverted
    lines = [text for _, _, text in image.text_lines()]
    assert lines[:2] == ["T 21.5C H 40.2%", "P 1001.2hPa"]
    assert "#42 Q3" in lines and "RSSI -61 SNR 9.5" in lines and "next 7s" in lines
    assert image.text_lines()[1][:2] == (0, 8)  # second text line at x=0, y=8
