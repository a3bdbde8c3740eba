"""tools/make_config.py writes config.json values the boards' own settings table accepts,
and refuses the others with the make variable's name (ranges come from that table)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from iiot_codec.settings import RADIO_SETTINGS, SETTINGS


def run(repo: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(repo / "tools" / "make_config.py"), "-o", str(tmp / "c.json"), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def limits(table: tuple[tuple[str, object, str, object, object], ...], name: str) -> tuple:
    (row,) = [r for r in table if r[0] == name]
    return row[3], row[4]


def test_values_are_written_as_the_firmware_reads_them(repo_root: Path, tmp_path: Path) -> None:
    args = "--node-id 3 --gateway-id 2 --freq-khz 868100 --sf 9 --bw 125 --power 14 --interval 30"
    result = run(repo_root, tmp_path, *args.split())
    assert result.returncode == 0, result.stderr
    cfg = json.loads((tmp_path / "c.json").read_text())
    assert cfg == {
        "node_id": 3,
        "gateway_id": 2,
        "interval_s": 30,
        "duty_cycle_pct": 1,  # 868 MHz: EU868's 1 % unless told otherwise
        "radio": {"freq_khz": 868100, "sf": 9, "bw": "125", "output_power": 14},
    }


def test_out_of_range_values_are_refused_by_the_boards_table(
    repo_root: Path, tmp_path: Path
) -> None:
    sf_low, sf_high = limits(RADIO_SETTINGS, "sf")
    power_low, power_high = limits(RADIO_SETTINGS, "output_power")
    node_low, _ = limits(SETTINGS, "node_id")
    for args, needle in (
        (["--node-id", "1", "--sf", str(int(sf_high) + 1)], f"SF (sf) must be {sf_low}..{sf_high}"),
        (["--node-id", "1", "--power", str(int(power_high) + 1)], "POWER (output_power)"),
        (["--node-id", str(int(node_low) - 1)], "NODE_ID"),
        (["--node-id", "1", "--bw", "100"], "BW must be one of"),
        (["--node-id", "1", "--key", "00"], "32 hex digits"),
    ):
        result = run(repo_root, tmp_path, *args)
        assert result.returncode == 2 and needle in result.stderr, (args, result.stderr)
    assert power_low < power_high
