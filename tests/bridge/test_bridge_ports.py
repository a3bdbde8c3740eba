"""Several ports as one source (inputs/ports.py, issue 15) on real ptys: ``--serial auto``
picks up every ST-LINK by its USB serial number, copies written together come in one
round, each port has its own session and acknowledgements."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from bridge_kit import Gateway

from iiot_bridge import identity
from iiot_bridge.inputs import ports as ports_module
from iiot_bridge.inputs.ports import PortSet
from iiot_bridge.inputs.session import SerialSession
from iiot_bridge.stats import Stats
from iiot_codec import encode_telemetry


def port_set(serials: list[str], stats: Stats) -> PortSet:
    return PortSet(
        serials, 115200, stats, threading.Event(), lambda label: SerialSession(stats, lambda: None)
    )


def read_until(ports: PortSet, gateways: list[Gateway], count: int) -> dict[str, list[bytes]]:
    """Lines per port label until ``count`` lines came (the gateways answer hellos)."""
    got: dict[str, list[bytes]] = {}
    deadline = time.monotonic() + 15
    while sum(map(len, got.values())) < count:
        assert time.monotonic() < deadline, f"only {got}"
        for gw in gateways:
            gw.pump()
        for port, lines in ports.read(0.05):
            got.setdefault(port.label, []).extend(raw for raw, _ in lines)
    return got


def test_auto_takes_every_stlink_and_finds_one_again_under_a_new_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = Gateway(tmp_path / "a"), Gateway(tmp_path / "b")
    present = [(str(a.path), "SERIAL-A")]
    monkeypatch.setattr(identity, "stlinks", lambda: list(present))
    stats = Stats()
    ports = port_set(["auto"], stats)
    try:
        ports.scan(now=0.0)
        assert list(ports.ports) == ["SERIAL-A"]
        present.append((str(b.path), "SERIAL-B"))  # plugged in later
        ports.scan(now=0.0)  # not yet: looked for every SCAN_S
        assert list(ports.ports) == ["SERIAL-A"]
        ports.scan(now=ports_module.SCAN_S + 1)
        assert sorted(ports.ports) == ["SERIAL-A", "SERIAL-B"]
        frame = encode_telemetry(4, 1, {"temperature": 21.0})
        read_until(ports, [a, b], 0)  # open both, say hello
        for gw in (a, b):
            gw.send_frame(frame, rssi=-60)
        got = read_until(ports, [a, b], 2)
        assert {k: len(v) for k, v in got.items()} == {"SERIAL-A": 1, "SERIAL-B": 1}
        assert stats.serial_open and stats.gateway("SERIAL-B").open
        # B unplugged and back under another device name: found again by its serial number.
        b.unplug()
        deadline = time.monotonic() + 10
        while ports.ports["SERIAL-B"].source.is_open:  # the next read finds it gone
            assert time.monotonic() < deadline
            ports.read(0.05)
        moved = Gateway(tmp_path / "b2")
        present[1] = (str(moved.path), "SERIAL-B")
        ports.scan(now=time.monotonic() + ports_module.SCAN_S + 1)  # reads scan too
        assert ports.ports["SERIAL-B"].source.port == str(moved.path)
        moved.close()
    finally:
        ports.close()
        a.close()
        b.close()


def test_lines_written_together_on_two_ports_come_in_one_round(tmp_path: Path) -> None:
    a, b = Gateway(tmp_path / "gwA"), Gateway(tmp_path / "gwB")
    ports = port_set([str(a.path), str(b.path)], Stats())
    try:
        assert sorted(ports.ports) == ["gwA", "gwB"]  # named by their paths: no USB serial
        read_until(ports, [a, b], 0)
        deadline = time.monotonic() + 15
        while not all(gw.hellos for gw in (a, b)):  # both sessions said hello
            assert time.monotonic() < deadline
            for gw in (a, b):
                gw.pump()
            ports.read(0.05)
        for gw in (a, b):
            gw.pump()
        frame = encode_telemetry(4, 2, {"temperature": 21.0})
        a.send_frame(frame, rssi=-80)
        time.sleep(0.01)  # the second gateway's copy a little later, as on air
        b.send_frame(frame, rssi=-70)
        rounds = []
        while sum(len(lines) for r in rounds for _, lines in r) < 2:
            assert time.monotonic() < deadline + 15
            got = ports.read(0.2)
            if got:
                rounds.append(got)
        assert len(rounds) == 1 and sorted(p.label for p, _ in rounds[0]) == ["gwA", "gwB"]
        for port, _ in rounds[0]:
            assert port.source.write_ack(1)
        deadline = time.monotonic() + 10
        while not (a.acks and b.acks):
            assert time.monotonic() < deadline, "an ack did not reach its node2"
            for gw in (a, b):
                gw.pump()
            time.sleep(0.01)
        assert a.acks[-1] == b.acks[-1] == 1
    finally:
        ports.close()
        a.close()
        b.close()
