"""Serial source details: finding the ST-LINK port, waiting for a missing port."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from bridge_kit import Gateway

from iiot_bridge.inputs import serial_source
from iiot_bridge.inputs.serial_source import SerialSource, find_stlink
from iiot_bridge.inputs.session import SerialSession
from iiot_bridge.stats import Stats


def test_auto_finds_the_st_link_by_usb_vendor(monkeypatch: pytest.MonkeyPatch) -> None:
    ports = [
        SimpleNamespace(device="/dev/ttyUSB0", vid=0x10C4),  # a CP210x adapter
        SimpleNamespace(device="/dev/ttyS0", vid=None),
        SimpleNamespace(device="/dev/ttyACM1", vid=0x0483),  # the NUCLEO's ST-LINK
    ]
    monkeypatch.setattr(serial_source.list_ports, "comports", lambda: ports)
    assert find_stlink() == "/dev/ttyACM1"
    monkeypatch.setattr(serial_source.list_ports, "comports", lambda: ports[:2])
    assert find_stlink() is None


def test_waits_for_a_missing_port_and_logs_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = Stats()
    session = SerialSession(stats, lambda: None)  # [gateways] a source needs its session
    source = SerialSource(str(tmp_path / "gateway"), 115200, stats, threading.Event(), session)
    serial_source.RETRY_S = 0.01
    with caplog.at_level("INFO"):
        for _ in range(5):
            assert source.read_batch() == []
    assert sum("waiting for serial port" in r.message for r in caplog.records) == 1
    gw = Gateway(tmp_path / "gateway")
    try:
        assert source.read_batch() == [] and source.is_open and stats.serial_opens == 1
        for _ in range(100):  # [gateways] node2 answers the hello: frame lines count again
            gw.pump()
            source.read_batch()
            if not session.greeting:
                break
        gw.write_raw(b'{"f":"00"}\r\npartial')
        lines = []
        for _ in range(20):
            lines += source.read_batch()
            if lines:
                break
        assert [raw for raw, _ in lines] == [b'{"f":"00"}']
        assert source.write_ack(7)
        gw.pump()
        assert gw.acks == [7]
    finally:
        source.close()
        gw.close()
