"""The radio hub: delivery after time on air, half duplex, loss, corruption, collisions,
sensitivity, settings mismatch, injection and the watchdog."""

from __future__ import annotations

import threading
import time

from conftest import SF7, FakeBoard

from iiot_sim.airtime import ChipSettings


def test_packet_reaches_a_listening_board_after_its_time_on_air(hub_factory) -> None:
    hub = hub_factory(rssi_jitter_db=0, snr_jitter_db=0, rssi_dbm=-70, snr_db=8)
    a, b = FakeBoard(hub, 1), FakeBoard(hub, 2)
    session = b.listen()
    start = time.monotonic()
    tx = a.transmit(b"hello world")
    got = b.packet()
    elapsed = time.monotonic() - start
    assert got is not None and got["payload"] == b"hello world"
    assert got["session"] == session and not got["crc_error"]
    assert got["rssi"] == -70 and got["snr"] == 8
    # Delivered at the end of the packet, not before (SF7/125k, 11 bytes: 41 ms).
    assert elapsed >= SF7.time_on_air_us(11) / 1e6 * 0.95
    assert tx.done.wait(1) and tx.receptions[2].outcome == "delivered"


def test_a_board_that_is_not_listening_or_transmitting_hears_nothing(hub_factory) -> None:
    hub = hub_factory()
    a, b, c = FakeBoard(hub, 1), FakeBoard(hub, 2), FakeBoard(hub, 3)
    c.listen()
    c.transmit(b"x" * 40)  # c transmits: half duplex, it stops listening
    tx = a.transmit(b"ping")
    assert tx.done.wait(2)
    outcomes = {n: r.outcome for n, r in tx.receptions.items()}
    assert outcomes == {2: "not_listening", 3: "busy"}
    assert b.packet(timeout=0.2) is None


def test_receiver_must_listen_before_the_preamble_ends(hub_factory) -> None:
    hub = hub_factory()
    a, b = FakeBoard(hub, 1), FakeBoard(hub, 2)
    tx = a.transmit(b"y" * 60)
    time.sleep(SF7.preamble_us() / 1e6 + 0.01)  # too late: the preamble has gone by
    b.listen()
    assert tx.done.wait(2)
    assert tx.receptions[2].outcome == "not_listening"


def test_loss_is_seeded_and_close_to_the_probability(hub_factory) -> None:
    hub = hub_factory(loss=0.3)
    a, b = FakeBoard(hub, 1), FakeBoard(hub, 2)
    outcomes = []
    for i in range(200):
        b.listen()
        tx = a.transmit(bytes([i]))
        assert tx.done.wait(2)
        outcomes.append(tx.receptions[2].outcome)
        if outcomes[-1] == "delivered":
            assert b.packet() is not None
        else:
            b.standby()
    lost = outcomes.count("lost")
    assert set(outcomes) == {"lost", "delivered"}
    assert 40 <= lost <= 80  # 30 % of 200, well inside the binomial spread


def test_corruption_flips_bits_and_sets_the_crc_flag_when_the_sender_used_crc(
    hub_factory,
) -> None:
    hub = hub_factory(corrupt=1.0)
    no_crc = ChipSettings(**{**SF7.__dict__, "crc": False})
    a, b, c = FakeBoard(hub, 1), FakeBoard(hub, 2), FakeBoard(hub, 3, no_crc)
    b.listen()
    a.transmit(b"\x00" * 16)
    got = b.packet()
    assert got["crc_error"] and got["payload"] != b"\x00" * 16
    # Without a CRC on air the receiver's chip cannot tell: garbage is passed on as good.
    d = FakeBoard(hub, 4, no_crc)
    d.listen()
    c.transmit(b"\x00" * 16)
    got = d.packet()
    assert got is not None and not got["crc_error"] and got["payload"] != b"\x00" * 16


def test_overlapping_packets_collide_unless_one_is_much_stronger(hub_factory) -> None:
    hub = hub_factory(rssi_jitter_db=0)
    a, b, gw = FakeBoard(hub, 1), FakeBoard(hub, 3), FakeBoard(hub, 2)
    gw.listen()
    a.transmit(b"a" * 30)
    time.sleep(0.02)  # b starts while a's packet is still on air
    tx = b.transmit(b"b" * 30)
    got = gw.packet()
    assert got is not None and got["crc_error"]  # both lost: the first one arrives garbled
    assert tx.done.wait(2) and tx.receptions[2].outcome == "collision"


def test_boards_with_other_radio_settings_do_not_hear_each_other(hub_factory) -> None:
    hub = hub_factory()
    sf9 = ChipSettings(**{**SF7.__dict__, "sf": 9})
    a, b = FakeBoard(hub, 1), FakeBoard(hub, 2, sf9)
    b.listen()
    tx = a.transmit(b"hi")
    assert tx.done.wait(2)
    assert tx.receptions[2].outcome == "mismatch"


def test_signal_below_sensitivity_is_not_received(hub_factory) -> None:
    hub = hub_factory(rssi_dbm=-130, rssi_jitter_db=0)  # SF7 needs about -123 dBm
    a, b = FakeBoard(hub, 1), FakeBoard(hub, 2)
    b.listen()
    tx = a.transmit(b"far")
    assert tx.done.wait(2)
    assert tx.receptions[2].outcome == "weak"


def test_injected_packet_reaches_only_its_targets(hub_factory) -> None:
    hub = hub_factory(loss=1.0)  # the link loses everything, but injection bypasses it
    a, b = FakeBoard(hub, 1), FakeBoard(hub, 2)
    a.listen()
    b.listen()
    tx = hub.inject(b"forged", to=[2], rssi_dbm=-50, snr_db=5)
    assert tx.done.wait(2)
    assert tx.delivered_to() == [2]
    got = b.packet()
    assert got["payload"] == b"forged" and got["rssi"] == -50
    assert a.packet(timeout=0.2) is None


def test_a_missed_watchdog_feed_is_reported_once(hub_factory) -> None:
    hub = hub_factory()
    fired: list[int] = []
    done = threading.Event()
    hub.config.wdt_grace_ms = 50
    hub.on_wdt_expired = lambda node: (fired.append(node), done.set())
    a = FakeBoard(hub, 1)
    a.send(b"W" + (200).to_bytes(4, "big"))
    for _ in range(5):
        time.sleep(0.1)
        a.send(b"F")
    assert not fired  # fed in time
    assert done.wait(2)
    time.sleep(0.4)
    assert fired == [1]
