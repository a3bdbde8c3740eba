"""`iiot-sim` end to end on a minimal stand-in firmware (tests/sim/fakefw): the pty, the
capture, the report, SIGTERM; and the delivery analysis on synthetic data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import serial
from conftest import FAKE_FW, REPO

import iiot_codec
from iiot_sim.cli import build_parser, config_from_args
from iiot_sim.report import SerialFrame, analyze_delivery


def test_cli_options_become_the_simulation_config(tmp_path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# node keys\n1=000102030405060708090a0b0c0d0e0f\n")
    args = build_parser().parse_args(
        ["--nodes", "3", "--loss", "0.3", "--corrupt", "0.01", "--rssi=-80:3", "--snr", "5",
         "--key-file", str(keys), "--interval-ms", "250", "--link", "1:2:loss=0.9", "--bw", "250"]
    )  # fmt: skip
    cfg = config_from_args(args)
    assert [s.node_id for s in cfg.boards()] == [2, 1, 3, 4]
    assert cfg.channel.link.loss == 0.3 and cfg.channel.link.rssi_dbm == -80
    assert cfg.channel.link.rssi_jitter_db == 3 and cfg.channel.links[(1, 2)].loss == 0.9
    board1 = cfg.board_config(cfg.boards()[1])
    assert board1["key"] == "000102030405060708090a0b0c0d0e0f" and board1["interval_ms"] == 250
    assert board1["radio"]["bw"] == "250" and board1["gateway_id"] == 2
    assert cfg.board_config(cfg.boards()[0])["keys"] == {"1": "000102030405060708090a0b0c0d0e0f"}


def test_cli_runs_boards_serves_the_pty_and_writes_the_report(tmp_path) -> None:
    report, capture, link = tmp_path / "r.json", tmp_path / "serial.log", tmp_path / "tty"
    proc = subprocess.Popen(
        [sys.executable, "-m", "iiot_sim.cli", "--repo", str(FAKE_FW), "--shared-dir",
         str(REPO / "shared"), "--interval-ms", "200", "--report", str(report), "--capture",
         str(capture), "--pty-link", str(link)],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    try:
        first = proc.stdout.readline()
        assert first.startswith("serial: /dev/pts/")
        port = serial.Serial(link.as_posix(), 115200, timeout=0.2)
        got: list[bytes] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(got) < 5:
            line = port.readline()
            if line.startswith(b"{"):
                got.append(line)
                port.write(b'{"ack":%d}\n' % json.loads(line)["n"])
        port.close()
        assert len(got) == 5
        frames = [iiot_codec.decode(iiot_codec.decode_line(g).frame) for g in got]
        assert {f.src for f in frames} == {1} and all(f.kind == "telemetry" for f in frames)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "delivered once" in out
    data = json.loads(report.read_text())
    assert data["totals"]["delivered_once"] >= 4, data["totals"]
    assert data["serial"] == first.split()[1]
    assert b'{"f":' in capture.read_bytes() and not link.exists()


def test_delivery_analysis_tells_missing_duplicated_repeated_and_unmatched() -> None:
    report = {"nodes": {"1": {"readings": [
        {"boot": 0, "rn": 0, "t": 1.0, "tx": [10], "dropped": False},
        {"boot": 0, "rn": 1, "t": 2.0, "tx": [11, 12], "dropped": False},
        {"boot": 0, "rn": 2, "t": 3.0, "tx": [13], "dropped": False},
        {"boot": 0, "rn": 3, "t": 4.0, "tx": [], "dropped": True},
        {"boot": 0, "rn": 4, "t": 9.0, "tx": [], "dropped": False},
    ]}}}  # fmt: skip
    frames = [
        SerialFrame(1, "telemetry", 10, 10, n=1),
        SerialFrame(1, "telemetry", 11, 11, n=2),
        SerialFrame(1, "telemetry", 12, 12, n=3),  # same reading, second counter
        SerialFrame(1, "telemetry", 10, 10, n=7),  # same counter again
        SerialFrame(1, "telemetry", 99, None, n=8),  # nobody sent that
        SerialFrame(2, "stats", 1, None, n=9),
    ]
    r = analyze_delivery(report, frames, until_t=5.0)
    assert r.once == [(1, 0, 0)] and r.duplicated == [(1, 0, 1)] and r.missing == [(1, 0, 2)]
    assert r.repeated == {(1, 10): 1} and r.dropped == [(1, 0, 3)]
    assert [f.seq for f in r.unmatched] == [99] and r.stats_frames == 1
