"""The SX1276 register model at its SPI bus, against datasheet facts: MicroPython scripts
drive machine.SPI and Pin frame by frame (no driver), the radio hub carries the air."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import REPO, FakeBoard

from iiot_sim.airtime import ChipSettings, symbol_us
from iiot_sim.process import ScriptRun, run_script

NODE = 5
WIRING = {"IIOT_SIM_SPI": "1:sx1276:cs=PB6,reset=PC7,dio0=PA10,dio1=PB3", "IIOT_SIM_NODE": "5"}
# Register helpers; `out(...)` prints one result line. LoRa mode: sleep, then standby.
PRELUDE = """
import json, time, machine
from machine import SPI, Pin
spi = SPI(1)
cs = Pin("PB6", Pin.OUT, value=1)
b2 = bytearray(2)
def rd(a):
    b2[0] = a; b2[1] = 0
    cs(0); spi.write_readinto(b2, b2); cs(1)
    return b2[1]
def wr(a, v):
    b2[0] = a | 0x80; b2[1] = v
    cs(0); spi.write(b2); cs(1)
def burst_rd(a, n):
    cs(0); spi.write(bytes([a])); d = spi.read(n); cs(1)
    return list(d)
def burst_wr(a, data):
    cs(0); spi.write(bytes([a | 0x80])); spi.write(bytes(data)); cs(1)
def out(**k):
    print("=" + json.dumps(k))
def lora():
    wr(0x01, 0x80); wr(0x01, 0x81)
def wait_flags(mask, ms=3000):
    t = time.ticks_ms()
    while not rd(0x12) & mask and time.ticks_diff(time.ticks_ms(), t) < ms:
        machine.idle()
    return rd(0x12)
def setup(frf=0xE4C000, mc1=0x72, mc2=0x74, preamble=12):
    lora()
    burst_wr(0x06, [frf >> 16, (frf >> 8) & 0xFF, frf & 0xFF])
    wr(0x1D, mc1); wr(0x1E, mc2); wr(0x20, preamble >> 8); wr(0x21, preamble & 0xFF)
"""


def chip(micropython: str, body: str, hub=None, **env: str) -> ScriptRun:
    full = dict(WIRING, **env)
    if hub is not None:
        full["IIOT_SIM_HUB"] = str(hub.port)
    run = run_script(micropython, PRELUDE + body, [REPO / "shared"], full, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


class Background:
    """A chip script running while the test plays the air (hub injections, FakeBoards)."""

    def __init__(self, micropython: str, body: str, hub, **env: str) -> None:
        self.run: ScriptRun | None = None
        self._thread = threading.Thread(
            target=lambda: setattr(self, "run", chip(micropython, body, hub, **env))
        )
        self._thread.start()
        self.hub = hub

    def wait_listening(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not self.hub.listening(NODE):
            assert time.monotonic() < deadline, "the chip did not start receiving"
            time.sleep(0.001)

    def results(self) -> list:
        self._thread.join(timeout=60)
        assert self.run is not None
        return self.run.results


def test_power_on_values_version_and_lora_mode_only_from_sleep(micropython_bin) -> None:
    (out,) = chip(
        micropython_bin,
        """
r = {"version": rd(0x42), "opmode": rd(0x01)}
wr(0x01, 0x81)                      # LongRangeMode from FSK standby: ignored
r["from_standby"] = rd(0x01)
wr(0x01, 0x80)                      # sleep: LongRangeMode accepted
r["sleep"] = rd(0x01)
wr(0x01, 0x81)
r["lora_standby"] = rd(0x01)
r["regs"] = burst_rd(0x06, 4) + [rd(a) for a in (0x0E, 0x0F, 0x1D, 0x1E, 0x1F, 0x20, 0x21,
                                                0x22, 0x23, 0x26, 0x39, 0x40, 0x4D)]
wr(0x42, 0x55); wr(0x13, 0x55)      # read-only
r["ro"] = [rd(0x42), rd(0x13)]
out(**r)
""",
    ).results
    assert out["version"] == 0x12 and out["opmode"] == 0x09  # FSK/OOK standby, LF mode
    assert out["from_standby"] == 0x01 and out["sleep"] == 0x80 and out["lora_standby"] == 0x81
    # Frf 434 MHz, RegPaConfig 0x4F (RFO), FifoTxBaseAddr 0x80, FifoRxBaseAddr 0, BW125
    # CR4/5 explicit, SF7 CRC off, SymbTimeout 0x64, preamble 8, payload length 1, max
    # 0xFF, AGC on, sync word 0x12, DIO mapping 0, PaDac 0x84.
    assert out["regs"] == [0x6C, 0x80, 0x00, 0x4F, 0x80, 0x00, 0x72, 0x70, 0x64, 0x00, 0x08,
                           0x01, 0xFF, 0x04, 0x12, 0x00, 0x84]  # fmt: skip
    assert out["ro"] == [0x12, 0x00]


def test_fifo_pointer_bursts_and_sleep_clearing_the_fifo(micropython_bin) -> None:
    (out,) = chip(
        micropython_bin,
        """
lora()
wr(0x0D, 0x10)
burst_wr(0x00, [1, 2, 3, 4, 5])    # burst at RegFifo: FifoAddrPtr advances, not the address
r = {"ptr": rd(0x0D)}
wr(0x0D, 0x10)
r["back"] = burst_rd(0x00, 5)
r["ptr2"] = rd(0x0D)
r["frf"] = burst_rd(0x06, 3)       # elsewhere the address increments
wr(0x01, 0x80)                     # sleep clears the FIFO, which is not accessible there
wr(0x0D, 0x10)
burst_wr(0x00, [9, 9])
wr(0x01, 0x81)
wr(0x0D, 0x10)
r["after_sleep"] = burst_rd(0x00, 5)
out(**r)
""",
    ).results
    assert out == {"ptr": 0x15, "back": [1, 2, 3, 4, 5], "ptr2": 0x15,
                   "frf": [0x6C, 0x80, 0x00], "after_sleep": [0, 0, 0, 0, 0]}  # fmt: skip


def test_single_receive_times_out_after_symb_timeout_symbols_on_dio1(micropython_bin) -> None:
    tsym = symbol_us(7, 125_000)
    (out,) = chip(
        micropython_bin,
        """
hits = []
Pin("PB3", Pin.IN).irq(lambda p: hits.append(time.ticks_us()), trigger=Pin.IRQ_RISING)
setup()
wr(0x1F, 40)                          # RegSymbTimeout: 40 symbols
wr(0x40, 0x00)                        # DIO0 RxDone, DIO1 RxTimeout
t0 = time.ticks_us()
wr(0x01, 0x86)                        # RXSINGLE
f = wait_flags(0x80)
r = {"flags": f, "mode": rd(0x01), "dio1": Pin("PB3").value()}
time.sleep_ms(2)                      # the soft IRQ has run by now
r["irq_us"] = [time.ticks_diff(h, t0) for h in hits]
wr(0x12, 0x40)                        # writing 1 to another bit clears nothing
r["kept"] = rd(0x12)
wr(0x12, 0x80)
r["cleared"] = rd(0x12)
r["dio1_after"] = Pin("PB3").value()
wr(0x11, 0x80)                        # masked: the timeout sets no flag, the mode still ends
wr(0x01, 0x86)
t = time.ticks_ms()
while rd(0x01) == 0x86 and time.ticks_diff(time.ticks_ms(), t) < 2000:
    machine.idle()
r["masked"] = [rd(0x12), rd(0x01), len(hits)]
out(**r)
""",
    ).results
    assert out["flags"] == 0x80 and out["mode"] == 0x81  # RxTimeout, back to standby
    assert out["dio1"] == 1 and len(out["irq_us"]) == 1
    assert out["irq_us"][0] >= 40 * tsym  # not before 40 symbols
    assert out["kept"] == 0x80 and out["cleared"] == 0 and out["dio1_after"] == 0
    assert out["masked"] == [0, 0x81, 1]


def test_transmission_uses_fifo_and_register_settings(micropython_bin, hub_factory) -> None:
    hub = hub_factory()
    listener = FakeBoard(hub, 2, ChipSettings(freq_hz=868_100_000, sf=9, bw_hz=250_000,
                                              coding_rate=6, crc=True, preamble_len=10,
                                              syncword=0x34))  # fmt: skip
    listener.listen()
    (out,) = chip(
        micropython_bin,
        """
# 868.1 MHz, BW250 CR4/6 explicit, SF9 CRC on, preamble 10, sync 0x34, PA_BOOST 17 dBm
setup(frf=0xD90666, mc1=0x84, mc2=0x94, preamble=10)
wr(0x39, 0x34); wr(0x09, 0x8F)
wr(0x0E, 0x40); wr(0x0D, 0x40)
burst_wr(0x00, b"radio!")
wr(0x22, 6)
wr(0x40, 0x40)                    # DIO0: TxDone
t0 = time.ticks_us()
wr(0x01, 0x83)
f = wait_flags(0x08)
out(flags=f, mode=rd(0x01), dio0=Pin("PA10").value(), us=time.ticks_diff(time.ticks_us(), t0))
""",
        hub,
    ).results
    settings = hub.settings(NODE)
    expected = ChipSettings(freq_hz=868_099_975, sf=9, bw_hz=250_000, coding_rate=6, crc=True,
                            preamble_len=10, syncword=0x34, tx_dbm=17.0)  # fmt: skip
    assert settings == expected
    tx = next(t for t in hub.transmissions if t.src == NODE)
    assert tx.payload == b"radio!"
    assert out["flags"] == 0x08 and out["mode"] == 0x81 and out["dio0"] == 1
    assert out["us"] >= settings.time_on_air_us(6)  # TxDone only after the time on air
    assert listener.packet()["payload"] == b"radio!"


@pytest.mark.parametrize(
    ("pa_config", "pa_dac", "antenna", "dbm"),
    [
        (0x8F, 0x84, "PA_BOOST", 17.0),  # PA_BOOST: 2 + OutputPower
        (0x8F, 0x87, "PA_BOOST", 20.0),  # +3 dB with the high-power PaDac setting
        (0x8C, 0x84, "PA_BOOST", 14.0),
        (0x7F, 0x84, "RFO", 15.0),  # RFO: 10.8 + 0.6 * MaxPower - (15 - OutputPower)
        (0x0F, 0x84, "RFO", 10.8),
        (0x7F, 0x84, "PA_BOOST", -15.0),  # RFO selected, but the module wires PA_BOOST
    ],
)
def test_output_power_and_pin_from_pa_registers(
    micropython_bin, hub_factory, pa_config, pa_dac, antenna, dbm
) -> None:
    hub = hub_factory()
    chip(
        micropython_bin,
        f"setup(); wr(0x09, {pa_config}); wr(0x4D, {pa_dac}); wr(0x22, 1); wr(0x01, 0x83)\n"
        "wait_flags(0x08)\n",
        hub,
        IIOT_SIM_ANT=antenna,
    )
    assert hub.settings(NODE).tx_dbm == pytest.approx(dbm)


RECEIVE = """
setup(frf=FRF)
wr(0x0F, 0x20)                        # FifoRxBaseAddr
wr(0x1F, 0xFF); wr(0x1E, 0x74 | 3)   # the longest single-receive timeout (1023 symbols)
wr(0x01, MODE)
got = []
for i in range(COUNT):
    f = wait_flags(0x40, 5000)
    wr(0x12, 0xFF)
    n = rd(0x13)
    cur = rd(0x10)
    wr(0x0D, cur)
    got.append({"flags": f, "n": n, "cur": cur, "data": bytes(burst_rd(0x00, n)).hex(),
                "snr": rd(0x19), "rssi": rd(0x1A), "mode": rd(0x01), "byte_addr": rd(0x25),
                "valid": [rd(0x15), rd(0x17)]})
out(got=got)
"""


def run_receive(micropython, hub, packets, frf=0xE4C000, mode=0x86, **inject) -> list[dict]:
    body = RECEIVE.replace("FRF", hex(frf)).replace("MODE", hex(mode))
    board = Background(micropython, body.replace("COUNT", str(len(packets))), hub)
    for payload in packets:
        board.wait_listening()
        tx = hub.inject(payload, to=[NODE], **inject)
        assert tx.done.wait(5)
        time.sleep(0.05)
    return board.results()[0]["got"]


def test_single_receive_writes_the_packet_and_its_rssi_and_snr(micropython_bin, hub_factory):
    hub = hub_factory()
    FakeBoard(hub, 9)  # another board, so injected packets take the chip's settings
    (got,) = run_receive(micropython_bin, hub, [b"hello chip"], rssi_dbm=-80, snr_db=7.5)
    assert got["flags"] == 0x50  # RxDone + ValidHeader
    assert got["n"] == 10 and got["cur"] == 0x20 and bytes.fromhex(got["data"]) == b"hello chip"
    assert got["snr"] == 30  # dB x4
    assert got["rssi"] == -80 + 157  # HF port offset at 915 MHz
    assert got["mode"] == 0x81 and got["valid"] == [1, 1]


def test_rssi_below_the_noise_and_the_low_frequency_port(micropython_bin, hub_factory) -> None:
    hub = hub_factory()
    (got,) = run_receive(micropython_bin, hub, [b"x"], frf=0x6C8000, rssi_dbm=-120, snr_db=-8)
    # LF port (434 MHz): offset 164; with a negative SNR the strength is -164 + PacketRssi
    # + PacketSnr / 4 (datasheet 5.5.5), so the register holds 8 dB more.
    assert got["rssi"] == -120 + 164 + 8 and got["snr"] == (-32) & 0xFF


def test_continuous_receive_writes_each_packet_after_the_previous(micropython_bin, hub_factory):
    hub = hub_factory()
    first, second = run_receive(micropython_bin, hub, [b"first", b"second!"], mode=0x85)
    assert first["cur"] == 0x20 and second["cur"] == 0x25 and second["byte_addr"] == 0x2C
    assert bytes.fromhex(second["data"]) == b"second!"
    assert first["mode"] == second["mode"] == 0x85  # still receiving


def test_a_detected_preamble_holds_off_the_single_receive_timeout(micropython_bin, hub_factory):
    hub = hub_factory()
    tsym = symbol_us(7, 125_000)
    board = Background(
        micropython_bin,
        """
setup()
wr(0x1F, 30)                         # 30 symbols (31 ms); the packet lasts about 100 ms
wr(0x01, 0x86)
f = wait_flags(0xC0)
out(flags=f, n=rd(0x13))
""",
        hub,
    )
    board.wait_listening()
    tx = hub.inject(b"p" * 60, to=[NODE])
    assert tx.settings.time_on_air_us(60) > 2 * 30 * tsym
    assert tx.done.wait(5) and tx.receptions[NODE].outcome == "delivered"
    assert board.results() == [{"flags": 0x50, "n": 60}]  # received, no RxTimeout


def test_reset_line_restores_power_on_values(micropython_bin) -> None:
    (out,) = chip(
        micropython_bin,
        """
rst = Pin("PC7", Pin.OUT, value=1)
setup()
wr(0x39, 0x34)
r = {"before": [rd(0x01), rd(0x39)]}
rst(0)
r["in_reset"] = rd(0x42)
time.sleep_ms(1)
rst(1)
r["starting"] = rd(0x42)             # not answering yet
time.sleep_ms(5)
r["after"] = [rd(0x42), rd(0x01)]
lora()
r["sync"] = rd(0x39)
out(**r)
""",
    ).results
    assert out == {"before": [0x81, 0x34], "in_reset": 0, "starting": 0,
                   "after": [0x12, 0x09], "sync": 0x12}  # fmt: skip
