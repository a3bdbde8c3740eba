"""config.json on the board (shared/config.py) in the MicroPython unix port, and its table
in docs/hardware.md (generated from iiot_codec.settings)."""

from __future__ import annotations

import json
import subprocess
import sys

from fw_mp import REPO, MpRunner

LOAD = """
import json, config
cfg = config.load()
print("=" + json.dumps({"interval_s": cfg["interval_s"], "interval_ms": cfg["interval_ms"],
    "radio": cfg["radio"], "key": cfg["key"] is not None, "keys": sorted(cfg["keys"]),
    "downlink": {str(t): list(v) for t, v in cfg["downlink"].items()},
    "path": cfg["downlink_path"], "max_retries": cfg["max_retries"]}))
"""


def test_settings_sent_down_win_and_bad_values_take_their_defaults(mp: MpRunner) -> None:
    (mp.cwd / "config.json").write_text(
        json.dumps(
            {
                "interval_ms": 400,
                "max_retries": "three",  # bad: the default, with a console line
                "key": "00" * 16,
                "keys": {"1": "11" * 16, "x": "22" * 16, "3": "zz"},
                "radio": {"bw": 125, "sf": 9},
            }
        )
    )
    (mp.cwd / "downlink.json").write_text('{"interval_s": 5}')
    proc = mp.script(LOAD)
    assert proc.returncode == 0, proc.stdout
    out = proc.results[0]
    # an interval sent down replaces the configured one, interval_ms included
    assert out["interval_s"] == 5 and out["interval_ms"] is None
    assert out["max_retries"] == 3 and "bad max_retries" in proc.stdout
    assert out["radio"]["bw"] == "125" and out["radio"]["sf"] == 9
    assert out["radio"]["crc_en"] is True and out["radio"]["implicit_header"] is False
    assert out["key"] is True and out["keys"] == [1, 3]  # node 3's bad key: refused, kept
    assert "bad node id 'x'" in proc.stdout
    assert out["downlink"] == {"1": ["interval_s", 1, 86400]} and out["path"] == "downlink.json"


def test_a_bad_downlink_file_is_ignored(mp: MpRunner) -> None:
    (mp.cwd / "downlink.json").write_text('{"interval_s": 0}')
    proc = mp.script(LOAD)
    out = proc.results[0]
    assert out["interval_s"] == 10 and "bad interval_s" in proc.stdout


def test_the_settings_table_in_the_docs_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "settings_doc.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
