"""A setting request on its way to a node is visible (issue 13): retained on
``<prefix>/<node>/set/<setting>/pending`` with the value and since when, the same after a
bridge restart, cleared once the node confirms it or the request is withdrawn, and a stale
one left on the broker is cleared; Home Assistant's number entity keeps showing the value
in effect. Real broker, real bridge, node2 on a pty."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import datetime

import paho.mqtt.publish as publish
import pytest
from bridge_kit import Gateway, Observer, SmallDisk, retained, wait_for

from iiot_bridge.downlink import Downlink, Pending, PendingTopics, parse, parse_pending
from iiot_bridge.outbox import Outbox
from iiot_codec import encode_stats
from iiot_sim.localservers import Mosquitto

TOPIC = "iiot/node1/set/interval_s"
PENDING = TOPIC + "/pending"
STATE = "iiot/node1/interval_s"
NUMBER = "homeassistant/number/iiot_node1_interval_s_set/config"


def kept(port: int) -> dict[str, bytes]:
    return retained(port, "#", settle=0.3)


def ask(port: int, payload: str, check: Callable[[], object], what: str) -> object:
    """Publish a request until ``check`` holds: the bridge may not have subscribed yet."""
    for _ in range(5):
        publish.single(TOPIC, payload, hostname="127.0.0.1", port=port)
        try:
            return wait_for(check, 3, what)
        except AssertionError:
            continue
    raise AssertionError(f"never saw {what}")


def pending_of(port: int) -> tuple[int, float | None] | None:
    return parse_pending(kept(port).get(PENDING, b""))


def test_a_request_is_pending_until_the_node_confirms_it(
    broker: Mosquitto, gateway: Gateway, start_bridge
) -> None:
    port = broker.port
    # Left by an earlier run whose request is long gone: nothing is pending in this state.
    publish.single(PENDING, '{"value": 99}', retain=True, hostname="127.0.0.1", port=port)
    bridge = start_bridge("--no-influx", "--ha-discovery")
    bridge.wait_log("MQTT connected")
    wait_for(lambda: PENDING not in kept(port), 10, "the stale pending topic cleared")
    gateway.wait_session()

    # node1 reports it runs at 10 s: the value in effect, Home Assistant's number state.
    gateway.send_frame(encode_stats(1, 1, {"interval_s": 10}, full_counter=True))
    gateway.wait_acked()
    wait_for(lambda: kept(port).get(STATE) == b"10", 10, "the value in effect")

    before = time.time()
    ask(port, "30", lambda: pending_of(port), "the request pending")
    after = time.time()
    shown = kept(port)
    value, since = parse_pending(shown[PENDING]) or (None, None)
    assert value == 30 and since is not None
    assert math.floor(before) <= since <= after  # "since" is to the second
    raw = json.loads(shown[PENDING])
    assert datetime.fromisoformat(raw["since"]).utcoffset() is not None  # a UTC time
    # Home Assistant: the number entity's state stays the value the node runs at.
    number = json.loads(shown[NUMBER])
    assert number["state_topic"] == STATE and number["command_topic"] == TOPIC
    assert shown[STATE] == b"10"

    # The same request, the same since, after a restart.
    assert bridge.terminate() == 0
    watcher = Observer(port, PENDING)
    bridge = start_bridge("--no-influx", "--ha-discovery")
    bridge.wait_log("MQTT connected")
    gateway.wait_session()
    wait_for(lambda: len(watcher.payloads(PENDING)) >= 2, 10, "the pending topic said again")
    assert {parse_pending(p) for p in watcher.payloads(PENDING)} == {(30, since)}
    watcher.close()

    # node1 applies it and confirms in a STATS frame: the topic is cleared, the state is 30.
    watcher = Observer(port, PENDING)
    gateway.send_frame(encode_stats(1, 2, {"interval_s": 30}, full_counter=True))
    gateway.wait_acked()
    bridge.wait_log("node1 confirmed interval_s = 30")
    wait_for(
        lambda: PENDING not in (r := kept(port)) and r.get(STATE) == b"30",
        10,
        "the pending topic cleared and the new value in effect",
    )
    wait_for(lambda: b"" in watcher.payloads(PENDING), 5, "the empty retained payload")
    watcher.close()

    # A withdrawn request is cleared too; a refused one is never pending.
    ask(port, "40", lambda: (pending_of(port) or (0,))[0] == 40, "the second request pending")
    ask(port, "", lambda: PENDING not in kept(port), "the withdrawal")
    errors = Observer(port, TOPIC + "/error")
    ask(port, "0", lambda: errors.payloads(TOPIC + "/error"), "a refusal")
    errors.close()
    assert PENDING not in kept(port)
    bridge.assert_running()


def test_a_request_the_outbox_cannot_keep_is_answered_on_the_error_topic(
    small_disk: SmallDisk,
) -> None:
    """The real outbox on a file system that fills up: the request is not sent, not shown
    as pending, and the reason is published for whoever asked."""
    outbox = Outbox(small_disk.path / "outbox.db", ["mqtt"])
    downlink = Downlink(outbox)
    topics = PendingTopics("iiot", downlink)
    published: list[tuple[str, str, bool]] = []

    def record(topic: str, payload: str, retain: bool) -> None:
        published.append((topic, payload, retain))

    topics.on_connect(record)
    assert published == []  # nothing pending
    try:
        small_disk.fill(leave_kb=0)
        downlink.request(parse("node1", "interval_s", b"30"))
        assert downlink.due(0.0, 1) == []  # not stored, so not sent
        topics.on_tick(record)
        ((topic, why, retain),) = published
        assert topic == TOPIC + "/error" and not retain and "not kept" in why
        small_disk.empty()
        downlink.request(parse("node1", "interval_s", b"30"))
        assert len(downlink.due(0.0, 1)) == 1
        topics.on_tick(record)
        assert published[-1][0] == PENDING and published[-1][2] is True
        assert parse_pending(published[-1][1].encode()) is not None
        topics.on_tick(record)  # nothing changed: nothing said again
        assert len(published) == 2
    finally:
        small_disk.empty()
        outbox.close()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", None),
        (b'{"value": 30}', (30, None)),
        (Pending(30, 1_700_000_000 * 10**9).payload().encode(), (30, 1_700_000_000.0)),
    ],
)
def test_pending_payloads_read_back(payload: bytes, expected: object) -> None:
    assert parse_pending(payload) == expected


@pytest.mark.parametrize("payload", [b"30", b"{", b'{"value": "30"}', b'{"value": true}', b"[]"])
def test_foreign_pending_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(ValueError, match="not a pending request"):
        parse_pending(payload)
