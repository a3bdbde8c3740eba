"""micropython-lib's real lora-sx127x/lora-sync driver against the SX1276 register model,
wired as shared/board.py says: a link between two boards, and the pitfalls DESIGN.md lists,
which come from the driver running on a faithful chip (nothing here models them)."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import REPO

from iiot_sim.process import ScriptRun, run_script

CFG = ('{"freq_khz": 915000, "sf": 7, "bw": "125", "coding_rate": 5, "crc_en": True, '
       '"preamble_len": 12, "output_power": 14, "tx_ant": "PA_BOOST", "syncword": 0x12, '
       '"implicit_header": False}')  # fmt: skip
PRELUDE = f"""
import json, time, board
from _simhw import hub
def out(**k):
    print("=" + json.dumps(k))
CFG = {CFG}
"""


def board_script(micropython: str, body: str, node: int, hub=None, **env: str) -> ScriptRun:
    full = dict(env, IIOT_SIM_NODE=str(node))
    if hub is not None:
        full["IIOT_SIM_HUB"] = str(hub.port)
    run = run_script(micropython, PRELUDE + body, [REPO / "shared"], full, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return run


class Background:
    def __init__(self, micropython: str, body: str, node: int, hub, **env: str) -> None:
        self.run: ScriptRun | None = None
        self.node = node
        self.hub = hub
        self._thread = threading.Thread(
            target=lambda: setattr(self, "run", board_script(micropython, body, node, hub, **env))
        )
        self._thread.start()

    def wait_listening(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not self.hub.listening(self.node):
            assert time.monotonic() < deadline, "the board did not start receiving"
            time.sleep(0.001)

    def results(self) -> list:
        self._thread.join(timeout=120)
        assert self.run is not None
        return self.run.results


def test_two_boards_talk_through_the_real_driver(micropython_bin, hub_factory) -> None:
    hub = hub_factory(rssi_dbm=-70, rssi_jitter_db=0, snr_db=8, snr_jitter_db=0)
    rx = Background(
        micropython_bin,
        """
m = board.radio(CFG)
got = []
for i in range(3):
    p = m.recv(timeout_ms=2000)
    got.append(None if p is None else [bytes(p).hex(), p.rssi, p.snr, p.crc_error])
out(got=got, crc_errors=m.crc_errors)
""",
        2,
        hub,
    )
    rx.wait_listening()
    board_script(
        micropython_bin,
        """
m = board.radio(CFG)
for i in range(3):
    m.send(bytes([i]) * 12)
    time.sleep_ms(100)
""",
        1,
        hub,
    )
    (out,) = rx.results()
    assert out["got"] == [[(bytes([i]) * 12).hex(), -70, 32, False] for i in range(3)]
    assert out["crc_errors"] == 0


def test_settings_left_out_keep_the_chip_reset_values(micropython_bin, hub_factory) -> None:
    hub = hub_factory()
    (out,) = board_script(
        micropython_bin,
        """
m = board.radio({"freq_khz": 915000, "sf": 7, "bw": "125", "tx_ant": "PA_BOOST"})
m.send(b"x" * 20)
out(toa=m.get_time_on_air_us(20))
""",
        1,
        hub,
    ).results
    chip = hub.settings(1)
    assert chip is not None and not chip.crc and chip.preamble_len == 8  # reset values
    # ... while the driver assumes CRC on and 12 preamble symbols for its time on air.
    assert out["toa"] > chip.time_on_air_us(20)


def test_output_power_20_on_pa_boost_radiates_about_10_dbm(micropython_bin, hub_factory):
    hub = hub_factory()
    for power, dbm in ((20, 10.0), (17, 17.0), (14, 14.0)):
        board_script(
            micropython_bin,
            f"m = board.radio(dict(CFG, output_power={power}))\nm.send(b'p')\n",
            1,
            hub,
        )
        assert hub.settings(1).tx_dbm == dbm  # 20 writes OutputPower 0x15: 5 + 2 + 3 dB


def test_rfo_at_915_mhz_reports_rssi_7_db_low(micropython_bin, hub_factory) -> None:
    hub = hub_factory()
    rx = Background(
        micropython_bin,
        """
m = board.radio(dict(CFG, tx_ant="RFO", output_power=14))
p = m.recv(timeout_ms=3000)
out(rssi=p.rssi)
""",
        2,
        hub,
    )
    rx.wait_listening()
    tx = hub.inject(b"ping", to=[2], rssi_dbm=-60, snr_db=9)
    assert tx.done.wait(5)
    assert rx.results() == [{"rssi": -67}]  # the driver subtracts the LF offset for RFO


def test_rx_boost_alone_raises_key_error(micropython_bin) -> None:
    (out,) = board_script(
        micropython_bin,
        """
try:
    board.radio(dict(CFG, rx_boost=True))
except KeyError as e:
    out(error=str(e))
""",
        1,
    ).results
    assert out == {"error": "lna_boost_hf"}


def test_no_module_fitted_reads_0xff_and_the_driver_raises(micropython_bin) -> None:
    (out,) = board_script(
        micropython_bin,
        """
try:
    board.radio(CFG)
except RuntimeError as e:
    out(error=str(e))
""",
        1,
        IIOT_SIM_RADIO="0",
    ).results
    assert out == {"error": "Unexpected silicon version 255"}


def test_an_rx_timeout_is_counted_as_a_crc_error(micropython_bin) -> None:
    (out,) = board_script(
        micropython_bin,
        """
m = board.radio(CFG)
p = m.recv(timeout_ms=30)
out(packet=p, crc_errors=m.crc_errors, flags=m._get_irq())
""",
        1,
    ).results
    assert out == {"packet": None, "crc_errors": 1, "flags": 0}


RACE = """
m = board.radio(CFG)
m.recv(timeout_ms=5)
start = m._get_irq() & 0x80
last = m.crc_errors
deltas = []
for i in range(N):
    p = m.recv(timeout_ms=3)
    if p is not None:
        raise AssertionError("nothing is on the air")
    deltas.append(m.crc_errors - last)
    last = m.crc_errors
out(deltas=deltas, start=start, end=m._get_irq() & 0x80)
"""


def test_poll_race_counts_one_empty_receive_twice_sometimes(micropython_bin) -> None:
    # poll_recv() reads RegIrqFlags, then _check_recv() reads RegOpMode: a timeout that
    # falls between the two ends the receive with its RxTimeout flag still set, and the
    # next recv() counts it with its own. One hardware timeout per empty receive here.
    n = 2000
    (out,) = board_script(micropython_bin, RACE.replace("N)", f"{n})"), 1).results
    deltas = out["deltas"]
    twice = deltas.count(2)
    print(f"\nrace: {twice} of {n} empty receives counted 2 ({100 * twice / n:.2f} %)")
    assert set(deltas) <= {0, 1, 2}
    assert twice >= 1
    # A receive that counted nothing left its flag pending; the next one counted it.
    assert all(deltas[i + 1] >= 1 for i, d in enumerate(deltas[:-1]) if d == 0)
    # Every hardware timeout is counted once, early or late, never twice. One can go
    # uncounted: RegIrqFlags holds a bit, not a count, so when the host is held up for
    # the whole hardware timeout (4 symbols, 4.1 ms) before its first poll, a receive's
    # own timeout lands on the flag still pending from the previous receive, and two
    # timeouts read as one. Possible only after a receive that counted 0; seen in 2 of
    # about 35 runs on a loaded machine (1 of 2000 short each time).
    timeouts = n + (1 if out["start"] else 0) - (1 if out["end"] else 0)
    merged = timeouts - sum(deltas)
    print(f"race: {merged} timeouts merged with a pending one")
    assert 0 <= merged <= deltas.count(0)


def test_timeout_returns_stale_fifo_bytes_with_rx_crc_error(micropython_bin, hub_factory):
    hub = hub_factory()
    rx = Background(
        micropython_bin,
        """
m = board.radio(CFG)
m.rx_crc_error = True
first = m.recv(timeout_ms=3000)
again = m.recv(timeout_ms=50)          # nothing on air: the chip times out
m.rx_crc_error = False
third = m.recv(timeout_ms=50)
out(first=bytes(first).hex(), again=None if again is None else [bytes(again).hex(),
    again.crc_error], third=third, crc_errors=m.crc_errors)
""",
        2,
        hub,
    )
    rx.wait_listening()
    assert hub.inject(b"real packet", to=[2]).done.wait(5)
    (out,) = rx.results()
    assert out["first"] == b"real packet".hex()
    assert out["again"] == [b"real packet".hex(), False]  # stale bytes, not None
    assert out["third"] is None and out["crc_errors"] == 2


def test_continuous_receive_reads_after_a_dropped_packet_from_the_wrong_offset(
    micropython_bin, hub_factory
) -> None:
    hub = hub_factory()
    rx = Background(
        micropython_bin,
        """
m = board.radio(CFG)
m.start_recv(continuous=True)
got = []
t = time.ticks_ms()
while len(got) < 1 and time.ticks_diff(time.ticks_ms(), t) < 5000:
    r = m.poll_recv()
    if r is not True and r:
        got.append(bytes(r).hex())
    time.sleep_ms(1)
m.standby()
out(got=got, crc_errors=m.crc_errors)
""",
        2,
        hub,
    )
    rx.wait_listening()
    hub.update_link(corrupt=1.0)
    bad = hub.inject(b"A" * 16, to=[2], apply_link=True)  # fails its CRC: dropped, unread
    assert bad.done.wait(5) and bad.receptions[2].outcome == "crc_error"
    hub.update_link(corrupt=0.0)
    rx.wait_listening()
    good = hub.inject(b"B" * 16, to=[2])
    assert good.done.wait(5) and good.receptions[2].outcome == "delivered"
    (out,) = rx.results()
    (read,) = out["got"]
    # The driver reads RegRxNbBytes bytes at FifoAddrPtr (still 0) instead of at
    # FifoRxCurrentAddr (16): it returns the garbled first packet, not the second.
    data = bytes.fromhex(read)
    assert data != b"B" * 16
    assert sum(bin(a ^ b).count("1") for a, b in zip(data, b"A" * 16, strict=True)) <= 3
    assert out["crc_errors"] == 1


def test_sync_driver_polls_every_millisecond_once_an_irq_has_fired(micropython_bin) -> None:
    (out,) = board_script(
        micropython_bin,
        """
m = board.radio(CFG)
def spi_during(ms):
    s = hub.spi[0]
    m.recv(timeout_ms=ms)
    return hub.spi[0] - s
fresh = spi_during(300)      # no IRQ yet: the driver idles up to 100 times between polls
after = spi_during(300)      # the timeout's IRQ time is never cleared: a poll per idle()
m.standby()                  # standby() clears it, then sets it again (its "soft ISR")
standby = spi_during(300)
out(fresh=fresh, after=after, standby=standby)
""",
        1,
    ).results
    print(f"\nSPI transactions in a 300 ms receive: {out}")
    assert out["after"] > 5 * out["fresh"] and out["standby"] > 5 * out["fresh"]


def test_bad_crc_packet_ending_after_the_deadline_counts_without_a_timeout(
    micropython_bin, hub_factory
) -> None:
    hub = hub_factory(corrupt=1.0)
    rx = Background(
        micropython_bin,
        """
m = board.radio(CFG)
t = time.ticks_ms()
p = m.recv(timeout_ms=40)
out(packet=p, ms=time.ticks_diff(time.ticks_ms(), t), crc_errors=m.crc_errors)
""",
        2,
        hub,
    )
    rx.wait_listening()
    tx = hub.inject(b"z" * 120, to=[2], apply_link=True)  # about 190 ms on air
    assert tx.done.wait(5) and tx.receptions[2].outcome == "crc_error"
    (out,) = rx.results()
    # The detected preamble held the chip's timeout off past the 40 ms deadline; the
    # driver waited for the packet, dropped it and counted its CRC error only.
    assert out["packet"] is None and out["crc_errors"] == 1
    assert out["ms"] >= tx.settings.time_on_air_us(120) // 1000 - 40


@pytest.mark.parametrize("sync", [0x34, 0x12])
def test_boards_hear_each_other_only_with_the_same_sync_word(
    micropython_bin, hub_factory, sync
) -> None:
    hub = hub_factory()
    rx = Background(
        micropython_bin,
        "m = board.radio(CFG)\np = m.recv(timeout_ms=1500)\nout(got=p is not None)\n",
        2,
        hub,
    )
    rx.wait_listening()
    board_script(micropython_bin, f"board.radio(dict(CFG, syncword={sync})).send(b'hi')\n", 1, hub)
    assert rx.results() == [{"got": sync == 0x12}]
