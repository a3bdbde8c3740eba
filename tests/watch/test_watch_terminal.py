"""iiot-watch in a real terminal (tmux): what is on screen at 80x24 and 160x50, the keys, and
Ctrl-C, against a real broker carrying a real deployment's recorded traffic."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import time
from typing import Any

from watch_kit import USER, WATCH_BIN, Replayer, Tmux, capture_nodes, wait_for

from iiot_sim.localservers import Mosquitto

UNITS = ("°C", "%", "hPa", "kΩ", "V")
LINK_COLUMNS = ("RSSI", "SNR", "frames", "retx", "loss", "heard", "queued")


def start_view(
    tmux: Tmux, name: str, broker: Mosquitto, size: tuple[int, int], *extra: str
) -> None:
    argv = [WATCH_BIN, "--mqtt-url", broker.user_url(), "--influx-url", "http://127.0.0.1:8428"]
    env = {"IIOT_MQTT_PASSWORD": broker.users[USER]}
    tmux.start(name, [*argv, *extra], size[0], size[1], env)


def framed(tmux: Tmux, name: str, height: int) -> list[str]:
    """The screen, checked to be whole: header on the first line, key line on the last."""
    lines = tmux.lines(name)
    assert len(lines) == height, lines
    assert lines[0].startswith("iiot-watch"), lines
    assert "1 overview" in lines[-1] and "q quit" in lines[-1], lines
    return lines


def all_pages(tmux: Tmux, name: str, height: int) -> str:
    """Every page of the current view (n turns pages), as one text."""
    first = "\n".join(framed(tmux, name, height))
    if "page 1/" not in first:
        return first
    count = int(first.split("page 1/")[1].split()[0])
    pages = [first]
    for number in range(2, count + 1):
        tmux.keys(name, "n")
        pages.append(wait_for(lambda n=number: _page(tmux, name, n), 5, f"page {number}"))
    return "\n".join(pages)


def _page(tmux: Tmux, name: str, number: int) -> str:
    text = tmux.screen(name)
    return text if f"page {number}/" in text else ""


def test_view_fits_80x24_and_uses_160x50(
    tmux: Tmux, broker: Mosquitto, replay: Replayer, capture: list[dict[str, Any]]
) -> None:
    nodes = capture_nodes(capture)
    assert len(nodes) >= 4  # node1, node2 (the gateway), node3, node4
    start_view(tmux, "small", broker, (80, 24), "--show-password")
    start_view(tmux, "big", broker, (160, 50))

    def complete(name: str) -> str:
        text = tmux.screen(name)
        ready = "Bridge online" in text and "serial lines" in text and "dBm" in text
        return text if ready and all(n in text for n in nodes) else ""

    small = wait_for(lambda: complete("small"), 30, "the overview at 80x24")
    framed(tmux, "small", 24)
    # The header: addresses and the exact command to watch the same topics elsewhere.
    password = broker.users[USER]
    assert f"broker {broker.user_url()} connected" in small
    assert "database http://127.0.0.1:8428" in small
    assert f"mosquitto_sub -h 127.0.0.1 -p {broker.port} -u {USER} -P {password}" in small
    # The link of every node, with units.
    for column in LINK_COLUMNS:
        assert column in small, column
    assert " dB " in small and " ago" in small
    assert "gw" in small  # node2, the gateway, marked
    assert re.search(r"\d+\.\d %", small), small  # a loss rate from reported retransmissions
    # Every node's readings with units, on the readings view (2), over its pages.
    tmux.keys("small", "2")
    wait_for(lambda: "recent" in tmux.screen("small"), 5, "the readings view")
    readings = all_pages(tmux, "small", 24)
    for node in nodes:
        assert node in readings, node
    for unit in UNITS:
        assert unit in readings, unit
    # Health (3): the gateway's counters and every bridge counter with its meaning.
    tmux.keys("small", "3")
    wait_for(lambda: "Gateway node2" in tmux.screen("small"), 5, "the health view")
    health = all_pages(tmux, "small", 24)
    assert "packets received" in health and "serial lines read" in health
    tmux.keys("small", "q")
    assert tmux.exit_status("small") == 0

    # 160x50: overview and readings together, and an RSSI sparkline per node.
    big = wait_for(lambda: complete("big"), 30, "the overview at 160x50")
    if "kΩ" not in tmux.screen("big"):
        print(tmux.screen("big"))
    wait_for(lambda: "kΩ" in tmux.screen("big"), 10, "readings at 160x50")
    big = "\n".join(framed(tmux, "big", 50))
    assert "RSSI trend" in big and "recent" in big
    for unit in (*UNITS, "dBm"):
        assert unit in big, unit
    assert '-P "$IIOT_MQTT_PASSWORD"' in big  # no password on screen unless asked for
    assert "page 1/" not in big


def test_ctrl_c_always_exits_cleanly(tmux: Tmux, broker: Mosquitto, replay: Replayer) -> None:
    """20 of 20: Ctrl-C from the terminal, half the time followed at once by a second SIGINT
    (what the demo sends its view), at a random moment while messages keep arriving."""
    rng = random.Random(16)
    for attempt in range(20):
        name = f"try{attempt}"
        start_view(tmux, name, broker, (80, 24))
        wait_for(lambda n=name: "Bridge" in tmux.screen(n), 20, f"{name}: the first screen")
        pid = tmux.pid(name)
        time.sleep(rng.uniform(0.0, 0.6))  # not a wait for anything: a random moment
        tmux.keys(name, "C-c")
        if attempt % 2:
            # Soon after, as the demo does: while the view handles the first, or already
            # on its way out (the interpreter's shutdown).
            time.sleep(rng.uniform(0.0, 0.3))
            with contextlib.suppress(ProcessLookupError):  # gone already
                os.kill(pid, signal.SIGINT)
        status = tmux.exit_status(name)
        text = tmux.screen(name, history=True)
        assert status == 0, f"{name}: exit status {status}\n{text}"
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
        tmux.kill(name)
