"""What the stand-ins (machine, the hub socket, the SX1276 model) cost the firmware's heap:
the share they report ("standin" in the heap event) against a measurement from outside,
and what their calls allocate compared with the board's own (nothing, for these)."""

from __future__ import annotations

import json
import os

import pytest
from conftest import REPO

from iiot_sim.paths import MP_DIR, compile_standins
from iiot_sim.process import BusProcess, run_script

WIRING = {"IIOT_SIM_SPI": "1:sx1276:cs=PB6,reset=PC7,dio0=PA10,dio1=PB3"}


@pytest.fixture
def bus(micropython_bin, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_SIM_")}
    env.update(MICROPYPATH=str(MP_DIR), IIOT_SIM_I2C="bme680@0x77", IIOT_SIM_ENV="{}")
    env.update(IIOT_SIM_TRUTH=str(tmp_path / "truth.log"), IIOT_SIM_DISPLAY_DIR=str(tmp_path))
    proc = BusProcess(micropython_bin, env, tmp_path)
    yield proc
    proc.stop()


def test_reported_share_matches_the_heap_the_standins_take(micropython_bin, tmp_path) -> None:
    # Compiled as the simulator runs them (compiling sources would leave garbage about).
    standins = compile_standins(tmp_path / "standins")
    (out,) = run_script(
        micropython_bin,
        """
import gc, json
gc.collect()
a = gc.mem_alloc()
import machine
spi = machine.SPI(1)
gc.collect()
total = gc.mem_alloc() - a
from _simhw import hub
print("=" + json.dumps({"total": total, "standin": hub.standin[0]}))
""",
        [REPO / "shared"],
        WIRING,
        standins=standins,
    ).results
    print(f"\nstand-ins with the SX1276 model: {out['total']} B, reported {out['standin']} B")
    # Unreported: the `machine` shim's own code and the SPI object the script holds.
    assert 0 <= out["total"] - out["standin"] <= 512


ALLOC = """
import gc, json, board, machine
from _simhw import hub
m = board.radio({"freq_khz": 915000})
i2c = machine.I2C(1)
b = bytearray(1)
r = m._reg_read
calls = {
    "spi_register_read": lambda: r(0x12),
    "service": hub.service,
    "i2c_readfrom_mem_into": lambda: i2c.readfrom_mem_into(0x77, 0xD0, b),
    "i2c_writeto_mem": lambda: i2c.writeto_mem(0x77, 0x72, b"\\x01"),
}
res = {}
for name, f in calls.items():
    f()
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for i in range(200):
        f()
    res[name] = (gc.mem_alloc() - a) / 200
    gc.enable()
print("=" + json.dumps(res))
"""


def test_bus_transactions_allocate_next_to_nothing(micropython_bin, hub_factory, bus) -> None:
    hub = hub_factory()
    env = {"IIOT_SIM_HUB": str(hub.port), "IIOT_SIM_BUS": str(bus.port), "IIOT_SIM_NODE": "4"}
    (out,) = run_script(micropython_bin, ALLOC, [REPO / "shared"], env).results
    print(f"\nbytes allocated per call: {out}")
    assert out["spi_register_read"] == 0 and out["service"] == 0
    # One 16-byte memoryview per I2C transaction (the datagram handed to sendto).
    assert out["i2c_readfrom_mem_into"] <= 16 and out["i2c_writeto_mem"] <= 16


def test_heap_event_carries_the_share_spi_count_and_receive_time(micropython_bin) -> None:
    run = run_script(
        micropython_bin,
        """
import board, machine, json
from _simhw import hub
m = board.radio({"freq_khz": 915000})
m.recv(timeout_ms=20)
m.recv(timeout_ms=100)
hub._heap[0] = hub._heap[1] = 0     # sample and report now
machine.WDT(timeout=5000).feed()
print("=" + json.dumps({"standin": hub.standin[0], "spi": hub.spi[0], "rx_ms": hub.rx_ms[0]}))
""",
        [REPO / "shared"],
    )
    (expected,) = run.results
    events = [line for line in run.stdout.splitlines() if line.startswith('@{"ev":"heap"')]
    last = json.loads(events[-1][1:])
    assert last["standin"] == expected["standin"] > 0
    assert 0 < last["spi"] <= expected["spi"]
    # Receiving for (at least) the two timeouts, rounded up to whole symbols.
    assert last["rx_ms"] == expected["rx_ms"] >= 120
