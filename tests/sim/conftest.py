"""Fixtures for the simulator's tests: fake boards on the hub, MicroPython scripts, runs."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from iiot_sim.airtime import ChipSettings
from iiot_sim.channel import ChannelConfig, Hub, LinkParams
from iiot_sim.paths import MP_DIR, mplib_dir

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FAKE_FW = HERE / "fakefw"

SF7 = ChipSettings(freq_hz=915_000_000, sf=7, bw_hz=125_000, coding_rate=5, crc=True,
                   preamble_len=12, tx_dbm=14.0)  # fmt: skip


def chip_message(s: ChipSettings) -> bytes:
    fields = [s.freq_hz, s.sf, s.bw_hz, s.coding_rate, int(s.crc), int(s.implicit_header),
              s.preamble_len, s.syncword, s.tx_dbm, int(s.invert_iq_rx),
              int(s.invert_iq_tx)]  # fmt: skip
    return b"C" + json.dumps(fields).encode()


class FakeBoard:
    """A board's radio as the hub sees it: one UDP socket speaking the stand-in's protocol."""

    def __init__(self, hub: Hub, node: int, settings: ChipSettings = SF7) -> None:
        self.hub = hub
        self.node = node
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(2.0)
        self.session = 0
        self.send(b'H{"node":%d}' % node)
        self.send(chip_message(settings))
        deadline = time.monotonic() + 2
        while node not in hub.boards() or hub.settings(node) != settings:
            assert time.monotonic() < deadline, "hub did not register the board"
            time.sleep(0.005)

    def send(self, data: bytes) -> None:
        self.sock.sendto(data, ("127.0.0.1", self.hub.port))

    def listen(self) -> int:
        self.session += 1
        self.send(b"R" + struct.pack(">I", self.session))
        deadline = time.monotonic() + 2
        while not self.hub.listening(self.node):
            assert time.monotonic() < deadline
            time.sleep(0.002)
        return self.session

    def standby(self) -> None:
        self.send(b"S" + struct.pack(">I", self.session))

    def transmit(self, payload: bytes):
        """Start a transmission; returns the hub's record of it once the hub has it."""
        before = self.hub.stats.get("sent", 0)
        self.send(b"T" + struct.pack(">I", 0) + payload)
        deadline = time.monotonic() + 2
        while self.hub.stats.get("sent", 0) <= before:
            assert time.monotonic() < deadline, "the hub did not see the transmission"
            time.sleep(0.001)
        return next(t for t in reversed(self.hub.transmissions) if t.src == self.node)

    def receive(self, timeout: float = 2.0) -> tuple[bytes, bytes] | None:
        """(kind, message) of the next P or D, or None."""
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(1024)
        except TimeoutError:
            return None
        return data[:1], data

    def packet(self, timeout: float = 2.0) -> dict | None:
        """The next delivered packet (skipping preamble notices)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.receive(max(0.01, deadline - time.monotonic()))
            if got is None:
                return None
            kind, data = got
            if kind == b"P":
                session, rssi, snr, flags = struct.unpack_from(">IhbB", data, 1)
                return {"session": session, "rssi": rssi, "snr": snr / 4,
                        "crc_error": bool(flags & 1), "payload": data[9:]}  # fmt: skip

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def hub_factory() -> Iterator:
    hubs: list[Hub] = []

    def make(**link: float) -> Hub:
        collisions = bool(link.pop("collisions", True))
        cfg = ChannelConfig(link=LinkParams(**link), seed=7, collisions=collisions)
        hub = Hub(cfg).start()
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.stop()


def run_mp(
    micropython: str, script: str, env: dict[str, str] | None = None, timeout: float = 60
) -> list[dict]:
    """Run a MicroPython script with the stand-ins and the firmware on the path; return
    the JSON objects it printed on lines starting with '='."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_SIM_")}
    full["MICROPYPATH"] = ":".join(
        [str(MP_DIR), str(REPO / "node1"), str(REPO / "shared"), str(mplib_dir())]
    )
    full.update(env or {})
    proc = subprocess.run(
        [micropython, "-X", "heapsize=1M", "-c", script],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(f"micropython failed:\n{proc.stdout}\n{proc.stderr}")
    return [json.loads(line[1:]) for line in proc.stdout.splitlines() if line.startswith("=")]
