"""Bridge identity (issue 15): names from host and gateways, and the state directory lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from iiot_bridge.identity import (
    MAX_NAME,
    IdentityError,
    StateLock,
    StateLocked,
    check_name,
    default_bridge_id,
    gateway_label,
    sanitize,
)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("pi4", "pi4"),
        ("my host.local", "my-host-local"),
        ("0671FF485550755187121046", "0671FF485550755187121046"),
        ("a/b+c#d", "a-b-c-d"),  # nothing of MQTT's wildcards or levels survives
        ("--édge__", "dge__"),
    ],
)
def test_sanitize_keeps_letters_digits_dash_underscore(text: str, name: str) -> None:
    assert sanitize(text) == name


def test_long_names_are_cut_but_stay_distinct() -> None:
    a, b = sanitize("x" * 100 + "a"), sanitize("x" * 100 + "b")
    assert len(a) == len(b) == MAX_NAME and a != b
    with pytest.raises(IdentityError):
        sanitize("/+#")


def test_an_explicit_bridge_id_must_be_clean() -> None:
    assert check_name("site-a_bridge1") == "site-a_bridge1"
    for bad in ("", "a b", "a/b", "-a", "x" * (MAX_NAME + 1)):
        with pytest.raises(IdentityError):
            check_name(bad)


def test_gateway_labels_come_from_the_udev_name_or_the_path() -> None:
    assert gateway_label("/dev/iiot-gateway-0671FF48") == "0671FF48"
    assert gateway_label("/dev/pts/3") == "pts-3"  # no USB serial: the path names it
    assert gateway_label("/run/iiot/gw100") == "gw100"


def test_the_default_id_names_the_host_and_the_gateways() -> None:
    assert default_bridge_id(["auto"], host="pi4") == "pi4"  # one bridge per host
    ports = ["/dev/iiot-gateway-AB12", "/dev/iiot-gateway-CD34"]
    assert default_bridge_id(ports, host="pi4") == "pi4-AB12-CD34"
    assert default_bridge_id(ports[:1], host="pi4") != default_bridge_id(ports[1:], host="pi4")


def test_a_second_holder_is_refused_with_the_first_ones_name(tmp_path: Path) -> None:
    with StateLock(tmp_path, "pi4-AB12"):
        with pytest.raises(StateLocked) as err:
            StateLock(tmp_path, "pi4-CD34").acquire()
        text = str(err.value)
        assert str(tmp_path) in text and "pi4-AB12" in text and f"pid {os.getpid()}" in text
    with StateLock(tmp_path, "pi4-CD34") as again:  # released: free again
        assert again.held


HOLD = """
import sys, time
from pathlib import Path
from iiot_bridge.identity import StateLock
StateLock(Path(sys.argv[1]), "other").acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_the_lock_is_across_processes_and_dies_with_its_holder(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(StateLocked, match=f"bridge other \\(pid {proc.pid}"):
            StateLock(tmp_path, "me").acquire()
        proc.send_signal(signal.SIGKILL)  # no clean-up runs: the kernel drops the lock
        proc.wait(10)
        deadline = time.monotonic() + 10
        while True:
            try:
                lock = StateLock(tmp_path, "me").acquire()
                break
            except StateLocked:
                assert time.monotonic() < deadline, "the lock outlived its holder"
                time.sleep(0.05)
        assert "bridge me" in (tmp_path / "lock").read_text()
        lock.release()
    finally:
        proc.kill()
        proc.wait(10)
