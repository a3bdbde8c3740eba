"""Settings sent down to the nodes in the live view: the value in effect (the node's own
report), a request not taken yet, the one the bridge keeps pending, a refusal; on the
overview at 80x24 with the rest of a real deployment's traffic."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from iiot_bridge.downlink import Pending
from iiot_bridge.watch_render import Header, Screen
from iiot_bridge.watch_state import WatchState
from iiot_bridge.watch_views import setting_text

SET = "iiot/node1/set/interval_s"


def pending(value: int, since: float) -> bytes:
    return Pending(value, int(since * 1e9)).payload().encode()


def test_a_request_is_requested_then_pending_then_in_effect() -> None:
    state = WatchState("iiot", now=0.0)
    state.apply("iiot/node1/interval_s", b"10", now=1.0, retained=True)
    node = state.nodes["node1"]
    assert node.setting_names() == ["interval_s"]
    assert setting_text("interval_s", node, 2.0) == "interval 10 s"
    state.apply(SET, b"30", now=3.0)  # someone asks; the bridge has not taken it yet
    assert setting_text("interval_s", node, 3.0) == "interval 10 s (requested 30 s)"
    state.apply(SET + "/pending", pending(30, 1000.0), now=3.1, retained=True)
    assert setting_text("interval_s", node, 1065.0) == "interval 10 s (pending 30 s for 65 s)"
    state.apply(SET, b"45", now=4.0)  # a newer one, on its way while 30 is pending
    assert (
        setting_text("interval_s", node, 1065.0)
        == "interval 10 s (requested 45 s, pending 30 s for 65 s)"
    )
    state.apply(SET + "/pending", pending(45, 1070.0), now=4.1)
    state.apply("iiot/node1/interval_s", b"45", now=6.0)  # the node confirms...
    state.apply(SET + "/pending", b"", now=6.1)  # ...and the bridge forgets it
    assert setting_text("interval_s", node, 1100.0) == "interval 45 s"
    assert node.metrics["interval_s"].text == "45"  # the value in effect is the node's


def test_refusals_withdrawals_and_foreign_payloads() -> None:
    state = WatchState("iiot", now=0.0)
    state.apply(SET, b"0", now=1.0)
    state.apply(SET + "/error", b"interval_s must be 1..86400, got 0", now=1.1)
    node = state.nodes["node1"]
    # Never reported in effect (no STATS yet): a dash, and why the request was refused.
    assert setting_text("interval_s", node, 2.0) == (
        "interval - (refused: interval_s must be 1..86400, got 0)"
    )
    state.apply(SET, b"20", now=3.0)  # a new request replaces the refusal
    assert setting_text("interval_s", node, 3.0) == "interval - (requested 20 s)"
    state.apply(SET + "/pending", pending(20, 10.0), now=3.1)
    state.apply(SET, b"", now=4.0)  # withdrawn
    assert setting_text("interval_s", node, 20.0) == (
        "interval - (withdrawing, pending 20 s for 10 s)"
    )
    state.apply(SET + "/pending", b"", now=4.1)
    assert setting_text("interval_s", node, 20.0) == "interval -"
    # A payload the bridge does not write leaves what is known; other levels are ignored.
    state.apply(SET + "/pending", b"{not json", now=5.0)
    state.apply(SET + "/pending", b'{"value": "x"}', now=5.0)
    state.apply(SET + "/other", b"1", now=5.0)
    state.apply("iiot/bridge/set/interval_s", b"1", now=5.0)
    assert setting_text("interval_s", node, 20.0) == "interval -"
    assert "bridge" not in state.nodes
    # A pending payload without a time (an older bridge) still shows the value.
    state.apply(SET + "/pending", b'{"value": 7}', now=6.0)
    assert setting_text("interval_s", node, 20.0) == "interval - (pending 7 s)"


def render(state: WatchState, width: int, height: int, now: float) -> list[str]:
    console = Console(width=width, height=height, record=True, color_system=None)
    screen = Screen(state, Header("mqtt://127.0.0.1:1883", None, "mosquitto_sub ..."))
    console.print(screen.render(console, now=now), end="")
    return console.export_text().rstrip("\n").split("\n")


def test_the_overview_shows_every_nodes_settings_in_80x24(capture: list[dict[str, Any]]) -> None:
    start = 1000.0
    state = WatchState("iiot", now=start)
    for r in capture:
        state.apply(r["topic"], r["payload"].encode(), now=start + r["t"], retained=r["retain"])
    state.set_connection(True)
    end = start + capture[-1]["t"]
    # The node1 instances report the interval they run at in their STATS frames.
    in_effect = {
        r["topic"].split("/")[1]: r["payload"]
        for r in capture
        if r["topic"].count("/") == 2 and r["topic"].endswith("/interval_s")
    }
    assert {"node3", "node4"} <= set(in_effect) and len(in_effect) >= 3
    state.apply("iiot/node3/set/interval_s/pending", pending(30, end - 125), now=end)
    state.apply("iiot/node4/set/interval_s", b"0", now=end)
    state.apply("iiot/node4/set/interval_s/error", b"interval_s must be 1..86400", now=end)
    lines = render(state, 80, 24, end)
    assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    assert "Settings" in text and "Bridge online" in text and "page 1/" not in text
    for node, value in in_effect.items():
        assert f"{node} interval {value} s" in text, node
    assert f"node3 interval {in_effect['node3']} s (pending 30 s for 2m 05s)" in text
    assert f"node4 interval {in_effect['node4']} s (refused: interval_s must be 1..86400)" in text
