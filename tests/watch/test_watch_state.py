"""The live view's model: topics to per-node tables, without a terminal."""

from __future__ import annotations

from rich.console import Console

from iiot_bridge.watch import WatchState, parse_mqtt_url, sparkline


def render_text(state: WatchState, now: float) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(state.render(now=now))
    return console.export_text()


def test_sparkline_scales_between_min_and_max() -> None:
    assert sparkline([1.0, 2.0, 3.0]) == "▁▅█"
    assert sparkline([5.0, 5.0]) == "▅▅"
    assert sparkline([]) == ""
    assert len(sparkline([float(i) for i in range(100)], width=20)) == 20


def test_messages_build_node_and_bridge_tables() -> None:
    state = WatchState("iiot")
    state.apply("iiot/node1/temperature", b"27.60", now=100.0)
    state.apply("iiot/node1/temperature", b"27.70", now=110.0)
    state.apply("iiot/node1/status", b"online", now=110.0)
    state.apply("iiot/node1/rssi", b"-41", now=110.0)
    state.apply("iiot/node2/humidity", b"48.80", now=111.0)
    state.apply("iiot/bridge/status", b"online", now=111.0)
    state.apply("other/node1/temperature", b"99", now=111.0)  # another prefix: ignored
    state.apply("iiot/node1/a/b", b"1", now=111.0)  # not <prefix>/<node>/<metric>: ignored

    assert state.messages == 6
    assert state.nodes["node1"].status == "online"
    assert [v for _, v in state.nodes["node1"].metrics["temperature"].history] == [27.6, 27.7]
    text = render_text(state, now=115.0)
    assert "node1" in text and "online" in text and "27.70" in text and "5 s" in text
    assert "-41" in text and "node2" in text and "48.80" in text
    assert "bridge" in text
    assert "99" not in text


def test_history_is_bounded_by_the_window() -> None:
    state = WatchState("iiot", window_s=60)
    for i in range(200):
        state.apply("iiot/node1/temperature", str(20 + i / 100).encode(), now=float(i))
    history = state.nodes["node1"].metrics["temperature"].history
    assert history[0][0] >= 199 - 60
    assert len(history) == 61


def test_mqtt_url_parsing() -> None:
    assert parse_mqtt_url("mqtt://iiot@broker:1884") == ("broker", 1884, "iiot", False)
    assert parse_mqtt_url("mqtts://broker") == ("broker", 8883, None, True)
    for bad in ("http://broker", "mqtt://", "broker:1883"):
        try:
            parse_mqtt_url(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
