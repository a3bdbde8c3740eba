"""The live view's model and screens, without a terminal: topics to nodes, units, sparkline
scales, link figures, and the screens rendered at 80x24 and 160x50 from recorded traffic."""

from __future__ import annotations

import re
from typing import Any

import pytest
from rich.console import Console
from watch_kit import capture_nodes

from iiot_bridge.outputs.mqtt_config import MqttTarget
from iiot_bridge.watch_render import Header, Screen
from iiot_bridge.watch_session import read_keys, subscribe_command
from iiot_bridge.watch_state import WatchState
from iiot_bridge.watch_units import label, metric_sparkline, sparkline, value_text
from iiot_codec import LINK_ROWS, ROWS


def screen_text(screen: Screen, width: int, height: int, now: float) -> list[str]:
    console = Console(width=width, height=height, record=True, color_system=None)
    console.print(screen.render(console, now=now), end="")
    return console.export_text().rstrip("\n").split("\n")


def replayed(records: list[dict[str, Any]], start: float = 1000.0) -> WatchState:
    state = WatchState("iiot", now=start)
    for r in records:
        state.apply(r["topic"], r["payload"].encode(), now=start + r["t"], retained=r["retain"])
    state.set_connection(True)
    return state


def test_sparkline_scales_between_min_and_max_over_a_minimum_span() -> None:
    assert sparkline([1.0, 2.0, 3.0]) == "▁▅█"
    assert sparkline([5.0, 5.0]) == "▅▅"
    assert sparkline([]) == ""
    assert len(sparkline([float(i) for i in range(100)], width=20)) == 20
    # RSSI wobbling by 3 dB stays in the middle rows instead of filling the height...
    wobble = metric_sparkline("rssi", [-59.0, -62.0, -60.0, -61.0], 10)
    assert set(wobble) <= set("▃▄▅▆") and "▁" not in wobble and "█" not in wobble
    # ...while a real change of signal still spans it.
    assert metric_sparkline("rssi", [-50.0, -90.0], 10) == "█▁"
    # Gas resistance's span is relative to its magnitude (0.1 % noise is flat).
    assert set(metric_sparkline("gas_resistance", [122000.0, 122100.0], 10)) <= set("▄▅")


def test_every_metric_of_the_table_shows_its_unit() -> None:
    assert value_text("temperature", "27.60") == "27.60 °C"
    assert value_text("humidity", "48.80") == "48.80 %"
    assert value_text("pressure", "1008.10") == "1008.10 hPa"
    assert value_text("gas_resistance", "122352") == "122.4 kΩ"
    assert value_text("voltage", "3.300") == "3.300 V"
    assert value_text("rssi", "-60") == "-60 dBm"
    assert value_text("snr", "9.75") == "9.75 dB"
    assert value_text("uptime", "40") == "40 s"
    assert value_text("uptime", "3725") == "1h 02m"
    assert value_text("not_a_metric", "7") == "7"  # unknown to the table: the bare payload
    for _id, name, unit, *_rest in ROWS + LINK_ROWS:
        if unit != "count":  # counts are plain numbers
            assert value_text(name, "12") != "12", name
    assert label("rssi") == "RSSI" and label("crc_errors") == "CRC errors"
    assert label("interval_s") == "interval" and label("acks_rejected") == "ACKs rejected"


def test_topics_build_nodes_and_the_bridge() -> None:
    state = WatchState("iiot", now=100.0)
    state.apply("iiot/node1/temperature", b"27.60", now=90.0, retained=True)
    state.apply("iiot/node1/temperature", b"27.70", now=110.0)
    state.apply("iiot/node1/status", b"online", now=110.0)
    state.apply("iiot/node1/rssi", b"-41", now=110.0)
    state.apply("iiot/node2/humidity", b"48.80", now=111.0)
    state.apply("iiot/bridge/status", b"online", now=111.0)
    state.apply("iiot/bridge/lines", b"12", now=111.0)
    state.apply("other/node1/temperature", b"99", now=111.0)  # another prefix: ignored
    state.apply("iiot/node1/a/b", b"1", now=111.0)  # not <prefix>/<node>/<metric>: ignored
    state.apply("iiot//x", b"1", now=111.0)  # an empty level: ignored
    assert state.messages == 7
    node1 = state.nodes["node1"]
    assert node1.status == "online" and state.bridge_status == "online"
    assert node1.metrics["temperature"].values() == [27.6, 27.7]
    # The retained value counts neither as a frame nor as heard.
    assert node1.metrics["temperature"].live == 1 and node1.frames == 1
    assert node1.last_heard == 110.0
    assert state.bridge == {"lines": "12"}
    assert sorted(state.nodes) == ["node1", "node2"]


def test_link_figures_follow_counters_across_a_node_reboot() -> None:
    state = WatchState("iiot", now=0.0)
    state.apply("iiot/node1/retransmissions", b"10", now=0.0, retained=True)  # baseline
    for t in range(1, 11):
        state.apply("iiot/node1/rssi", b"-60", now=float(t))
    state.apply("iiot/node1/retransmissions", b"12", now=5.0)
    state.apply("iiot/node1/retransmissions", b"1", now=8.0)  # rebooted: counts from 0
    node = state.nodes["node1"]
    assert node.frames == 10
    assert node.retransmissions == 3  # 2 before the reboot, 1 after
    assert node.loss == pytest.approx(3 / 13)
    assert WatchState("iiot").nodes.get("node1") is None
    # No retransmission counter reported (older firmware): no loss figure rather than 0 %.
    state.apply("iiot/node3/rssi", b"-70", now=11.0)
    assert state.nodes["node3"].loss is None


def test_node_health_and_gateway_counters_are_not_readings() -> None:
    state = WatchState("iiot", now=0.0)
    for name in ("temperature", "queue_depth", "free_heap", "rssi"):
        state.apply(f"iiot/node1/{name}", b"5", now=1.0)
    state.apply("iiot/node2/packets_received", b"50", now=1.0)
    node1, node2 = state.nodes["node1"], state.nodes["node2"]
    assert node1.readings() == ["temperature"]
    assert node1.health() == ["free_heap", "queue_depth"]
    assert not node1.gateway and node2.gateway and not node2.over_air


@pytest.mark.parametrize(("width", "height"), [(80, 24), (160, 50), (100, 30), (60, 15)])
def test_every_screen_fits_the_terminal(
    capture: list[dict[str, Any]], width: int, height: int
) -> None:
    state = replayed(capture)
    header = Header("mqtt://demo@127.0.0.1:1883", "http://127.0.0.1:8428", "mosquitto_sub ...")
    screen = Screen(state, header)
    now = 1000.0 + capture[-1]["t"]
    for view in "123":
        screen.key(view)
        for _page in range(screen.pages + 1):
            lines = screen_text(screen, width, height, now)
            assert len(lines) == height, "\n".join(lines)
            assert all(len(line) <= width for line in lines)
            assert lines[0].startswith("iiot-watch") and "q quit" in lines[-1]
            screen.key("n")


def test_the_screens_show_every_node_with_units(capture: list[dict[str, Any]]) -> None:
    state = replayed(capture)
    screen = Screen(state, Header("mqtt://127.0.0.1:1883"))
    now = 1000.0 + capture[-1]["t"]
    overview = "\n".join(screen_text(screen, 80, 24, now))
    for node in capture_nodes(capture):
        assert node in overview
    for column in ("RSSI", "SNR", "frames", "retx", "loss", "heard", "queued"):
        assert column in overview
    assert "dBm" in overview and "Bridge online" in overview
    # The nodes report retransmissions and queue depth (STATS frames): figures, not dashes.
    row = re.compile(
        r"^node1\s+online\s+-\d+ dBm\s+[\d.]+ dB\s+\d+\s+\d+\s+[\d.]+ %\s+.+ago\s+\d+$"
    )
    assert any(row.match(line) for line in overview.splitlines()), overview
    # Bridge counters explained: lines = frames + the rest, database points vs readings.
    assert "serial lines" in overview and "frames +" in overview
    assert "points = readings + bridge backlog points" in overview
    big = "\n".join(screen_text(screen, 160, 50, now))  # overview and readings at once
    for text in ("RSSI trend", "°C", "%", "hPa", "kΩ", "V", "Gateway node2", "packets received"):
        assert text in big, text
    screen.key("3")
    health = "\n".join(screen_text(screen, 80, 24, now))
    assert "Node health" in health and "retransmissions" in health and "KiB" in health


def test_keys_switch_views_and_pages() -> None:
    state = WatchState("iiot", now=0.0)
    for n in range(1, 40):  # more nodes than 24 lines hold
        state.apply(f"iiot/node{n}/rssi", b"-60", now=1.0)
    screen = Screen(state, Header("mqtt://127.0.0.1:1883"))
    first = "\n".join(screen_text(screen, 80, 24, 2.0))
    assert screen.pages > 1 and "page 1/" in first and "node1 " in first
    assert screen.key("n")
    second = "\n".join(screen_text(screen, 80, 24, 2.0))
    assert "page 2/" in second and "node1 " not in second
    screen.key("p")
    screen.key("\t")
    assert screen.view == 1 and screen.page == 0
    assert screen.key("q") is False


def test_subscribe_command_and_keys() -> None:
    target = MqttTarget("127.0.0.1", 1884, False, "demo")
    shown = subscribe_command(target, "iiot", "s3cret", show_password=True)
    assert shown == "mosquitto_sub -h 127.0.0.1 -p 1884 -u demo -P s3cret -t 'iiot/#' -v"
    hidden = subscribe_command(target, "iiot", "s3cret", show_password=False)
    assert "s3cret" not in hidden and '-P "$IIOT_MQTT_PASSWORD"' in hidden
    anonymous = subscribe_command(MqttTarget("h", 1883, False, None), "a/b", None, False)
    assert anonymous == "mosquitto_sub -h h -p 1883 -t 'a/b/#' -v"


def test_read_keys_names_escape_sequences(tmp_path: Any) -> None:
    import os

    r, w = os.pipe()
    os.write(w, b"2\x1b[6~q\x1b[D")
    with os.fdopen(r) as stream:
        assert read_keys(stream) == ["2", "pgdn", "q", "left"]
    os.close(w)
