"""The serial session on one port (bridge/iiot_bridge/inputs/session.py), line by line:
what is stale, when the acknowledgement run restarts, which boot the acks name.

The end-to-end check with the real node2 firmware is tests/sim/test_custody.py."""

from __future__ import annotations

import json
import random

from iiot_bridge.inputs.session import ANSWER_WAIT_S, HELLO_EVERY_S, SerialSession
from iiot_bridge.processors.acks import AckTracker
from iiot_bridge.stats import Stats
from iiot_codec import decode_host_line, encode_line, encode_session


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def frame_line(n: int) -> tuple[bytes, int]:
    return encode_line(bytes([1, 2, 3, n & 0xFF]), rssi=-70, snr=7.5, n=n).encode(), n


def make() -> tuple[SerialSession, AckTracker, Stats, Clock, int]:
    stats, clock, acks = Stats(), Clock(), AckTracker()
    session = SerialSession(stats, acks.restart, clock, random.Random(1))
    hello = decode_host_line(session.opened())
    assert hello is not None and hello[0] == "hello"
    return session, acks, stats, clock, hello[1]


def answer(nonce: int | None, boot: int) -> tuple[bytes, int]:
    return encode_session(boot, nonce).encode(), 0


def test_lines_before_the_answer_are_stale_and_the_run_restarts_after_it() -> None:
    session, acks, stats, _, nonce = make()
    assert session.greeting
    # Left in the link's buffers: an old line, an old boot announcement, an old answer.
    assert session.admit([frame_line(40), answer(None, 3), answer(nonce + 1, 3)]) == []
    assert stats.stale_lines == 1 and session.greeting
    got = session.admit([answer(nonce, 9), frame_line(41), frame_line(42)])
    assert [n for _, n in got] == [41, 42] and not session.greeting
    assert [acks.saw(n) for _, n in got] == [True, True]  # no gap before node2's oldest line
    assert acks.ack() == 42
    assert decode_host_line(session.ack(42)) == ("ack", 42, 9)


def test_a_new_boot_ends_the_batch_so_old_lines_are_acked_under_the_old_boot() -> None:
    session, acks, stats, _, nonce = make()
    session.admit([answer(nonce, 9)])
    generation = session.generation
    first = session.admit([frame_line(7), frame_line(8), answer(None, 11), frame_line(1)])
    assert [n for _, n in first] == [7, 8]
    assert all(acks.saw(n) for _, n in first)
    assert decode_host_line(session.ack(acks.ack())) == ("ack", 8, 9)  # still boot 9's
    rest = session.admit(session.take_held())
    assert [n for _, n in rest] == [1] and session.boot == 11
    assert acks.saw(1) and decode_host_line(session.ack(acks.ack())) == ("ack", 1, 11)
    assert session.generation > generation  # the downlink sends its requests again
    assert stats.node2_boots == 2


def test_the_hello_is_repeated_then_given_up_for_firmware_without_a_session() -> None:
    session, _, stats, clock, nonce = make()
    assert session.due() is None
    clock.t += HELLO_EVERY_S
    again = session.due()
    assert again is not None and decode_host_line(again) == ("hello", nonce)
    clock.t += ANSWER_WAIT_S
    assert session.due() is None and not session.greeting
    assert [n for _, n in session.admit([frame_line(5)])] == [5]
    assert decode_host_line(session.ack(5)) == ("ack", 5, None)  # no boot to name
    assert stats.stale_lines == 0


def test_earlier_firmware_and_console_lines_pass_while_greeting() -> None:
    session, _, stats, _, _ = make()
    console = (b"MicroPython v1.28 on 2026-01-01", 0)
    assert session.admit([console]) == [console] and session.greeting
    legacy = (json.dumps({"ts": 1, "id": "N2", "n1": {"t": 21.5}, "n2": {}}).encode(), 0)
    assert session.admit([legacy]) == [legacy] and not session.greeting
    assert stats.stale_lines == 0


def test_a_reopened_port_greets_again_with_a_new_nonce() -> None:
    session, _, _, _, nonce = make()
    session.admit([answer(nonce, 9)])
    hello = decode_host_line(session.opened())
    assert hello is not None and hello[1] != nonce and session.greeting
    assert session.admit([answer(nonce, 9), frame_line(3)]) == []  # the old answer, buffered
    assert session.greeting
