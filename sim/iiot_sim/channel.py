"""The radio channel: a hub in the orchestrator that every simulated SX1276 talks to over UDP.

Each board's SX1276 register model (behind micropython-lib's real driver) has one UDP socket
on 127.0.0.1 and sends the hub its chip settings, the start of every receive and
transmission, and its watchdog feeds. The hub
delivers each packet to every other board that is listening when the packet's preamble
arrives and still listening when it ends (time on air computed like the chip), with loss,
bit corruption, latency, RSSI/SNR per link, receiver sensitivity and collisions. Half duplex
like the real chip: a board that is transmitting hears nothing.

Tests inject raw packets (`Hub.inject`), read what went over the air (`Hub.transmissions`),
and send control messages to a board (`Hub.control`: unplug a sensor, press the button).
The wire format is described in mp/_simhw/hub.py.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import json
import logging
import os
import random
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from .airtime import ChipSettings

log = logging.getLogger(__name__)

INJECTOR = 0  # source id of packets a test injects


@dataclass(frozen=True)
class LinkParams:
    """Propagation between two boards. RSSI is for a 14 dBm transmitter."""

    loss: float = 0.0
    corrupt: float = 0.0
    latency_ms: float = 0.0
    rssi_dbm: float = -60.0
    rssi_jitter_db: float = 2.0
    snr_db: float = 9.0
    snr_jitter_db: float = 1.0

    def __post_init__(self) -> None:
        for name in ("loss", "corrupt"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability 0..1, got {value}")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")


@dataclass
class ChannelConfig:
    link: LinkParams = field(default_factory=LinkParams)
    links: dict[tuple[int, int], LinkParams] = field(default_factory=dict)  # (src, dst)
    seed: int = 1
    collisions: bool = True
    capture_db: float = 6.0  # a packet this much stronger survives an overlap
    wdt_grace_ms: int = 500  # scheduling slack before a missed feed resets a board


@dataclass
class Reception:
    """What happened to one transmission at one receiver."""

    node: int
    outcome: str  # delivered|crc_error|lost|weak|busy|collision|not_listening|mismatch|...
    rssi: float | None = None
    snr: float | None = None
    note: str = ""  # e.g. how long a board had not been listening


@dataclass
class Transmission:
    id: int
    src: int
    payload: bytes
    start: float
    end: float
    settings: ChipSettings
    injected: bool = False
    receptions: dict[int, Reception] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def delivered_to(self) -> list[int]:
        return [n for n, r in self.receptions.items() if r.outcome == "delivered"]


@dataclass
class _Board:
    node: int
    addr: tuple[str, int]
    settings: ChipSettings = field(default_factory=ChipSettings)
    rx_session: int | None = None  # listening with this session, or None
    rx_ended: float = 0.0  # when it last stopped listening
    tx_until: float = 0.0
    locked: Transmission | None = None  # packet being demodulated
    locked_rssi: float = 0.0
    doomed: bool = False  # the locked packet was hit by a collision
    wdt_timeout_ms: int | None = None
    wdt_last: float = 0.0


class Hub:
    """The radio hub. Use as a context manager or call start()/stop()."""

    def __init__(self, config: ChannelConfig | None = None) -> None:
        self.config = config or ChannelConfig()
        self._rng = random.Random(self.config.seed)
        self._lock = threading.RLock()
        self._boards: dict[int, _Board] = {}
        self._by_addr: dict[tuple[str, int], int] = {}
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._tx_ids = itertools.count(1)
        self.transmissions: deque[Transmission] = deque(maxlen=20000)
        self.stats: dict[str, int] = {}
        self.by_receiver: dict[int, dict[str, int]] = {}  # node -> outcome -> count
        self.listeners: list[Callable[[Transmission], None]] = []
        self.on_wdt_expired: Callable[[int], None] | None = None
        self.on_reset_request: Callable[[int, str], None] | None = None
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- lifetime ------------------------------------------------------------------------
    def start(self) -> Hub:
        self._thread = threading.Thread(target=self._run, name="radio-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> Hub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- public API ----------------------------------------------------------------------
    def boards(self) -> list[int]:
        with self._lock:
            return sorted(self._boards)

    def settings(self, node: int) -> ChipSettings | None:
        with self._lock:
            board = self._boards.get(node)
            return board.settings if board else None

    def listening(self, node: int) -> bool:
        with self._lock:
            board = self._boards.get(node)
            return bool(board and board.rx_session is not None)

    def set_link(self, params: LinkParams, src: int | None = None, dst: int | None = None) -> None:
        """Change the default link, or the one from ``src`` to ``dst``, during a run."""
        with self._lock:
            if src is None and dst is None:
                self.config.link = params
                self.config.links.clear()
            elif src is not None and dst is not None:
                self.config.links[(src, dst)] = params
            else:
                raise ValueError("give both src and dst, or neither")

    def update_link(self, **changes: float) -> None:
        """Change fields of every link (e.g. ``loss=0``) during a run."""
        with self._lock:
            self.config.link = replace(self.config.link, **changes)
            for key, params in list(self.config.links.items()):
                self.config.links[key] = replace(params, **changes)

    def control(self, node: int, msg: dict[str, object]) -> None:
        """Send a control message to a board (handled in its stand-in, see mp/_simhw)."""
        with self._lock:
            board = self._boards.get(node)
            if board is None:
                raise KeyError(f"node {node} has not registered with the hub")
            self._sock.sendto(b"K" + json.dumps(msg).encode(), board.addr)

    def forget(self, node: int) -> None:
        """A board's process is gone (reset): drop its radio and watchdog state."""
        with self._lock:
            board = self._boards.pop(node, None)
            if board is not None:
                self._by_addr.pop(board.addr, None)

    def inject(
        self,
        payload: bytes,
        *,
        settings: ChipSettings | None = None,
        to: Iterable[int] | None = None,
        rssi_dbm: float | None = None,
        snr_db: float | None = None,
        apply_link: bool = False,
    ) -> Transmission:
        """Put a raw packet on the air now, as if from another transmitter.

        ``settings`` defaults to those of the first receiver in ``to`` (or any board), so
        the packet is compatible. Without ``apply_link`` it is neither lost nor corrupted.
        Wait on ``tx.done`` and read ``tx.receptions`` to see who got it.
        """
        payload = bytes(payload)
        targets = None if to is None else set(to)
        with self._lock:
            if settings is None:
                pool = sorted(targets) if targets else sorted(self._boards)
                known = [self._boards[n].settings for n in pool if n in self._boards]
                settings = known[0] if known else ChipSettings()
            tx = self._begin(INJECTOR, payload, settings, time.monotonic(), injected=True)
            self._fan_out(tx, targets, rssi_dbm, snr_db, apply_link)
        self._wake()
        return tx

    # ---- internals -----------------------------------------------------------------------
    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _at(self, when: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), fn))

    def _link(self, src: int, dst: int) -> LinkParams:
        return self.config.links.get((src, dst), self.config.link)

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._sock, selectors.EVENT_READ, "sock")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stop.is_set():
                with self._lock:
                    now = time.monotonic()
                    while self._events and self._events[0][0] <= now:
                        _, _, fn = heapq.heappop(self._events)
                        fn()
                    self._check_watchdogs(now)
                    timeout = 0.05
                    if self._events:
                        timeout = min(timeout, max(0.0, self._events[0][0] - now))
                for key, _ in sel.select(timeout):
                    if key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                    else:
                        self._drain()
        finally:
            sel.close()

    def _drain(self) -> None:
        while True:
            try:
                data, addr = self._sock.recvfrom(512)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            with self._lock:
                try:
                    self._handle(data, addr, time.monotonic())
                except Exception:  # one bad datagram must not stop the radio
                    log.exception("bad datagram from %s", addr)

    def _handle(self, data: bytes, addr: tuple[str, int], now: float) -> None:
        kind = data[:1]
        if kind == b"H":
            hello = json.loads(data[1:])
            node = int(hello["node"])
            old = self._boards.get(node)
            if old is not None:
                self._by_addr.pop(old.addr, None)
            self._boards[node] = _Board(node=node, addr=addr)
            self._by_addr[addr] = node
            return
        known = self._by_addr.get(addr)
        if known is None:
            return  # a board that has been forgotten (restarting)
        node = known
        board = self._boards[node]
        if kind == b"C":
            board.settings = ChipSettings.from_message(json.loads(data[1:]))
        elif kind == b"R":
            (session,) = struct.unpack_from(">I", data, 1)
            board.rx_session = session
            board.locked = None
            board.doomed = False
        elif kind == b"S":
            (session,) = struct.unpack_from(">I", data, 1)
            if board.rx_session == session:
                board.rx_session = None
                board.locked = None
                board.rx_ended = now
        elif kind == b"T":
            payload = data[5:]
            board.rx_session = None
            board.locked = None
            tx = self._begin(node, payload, board.settings, now)
            board.tx_until = tx.end
            self._fan_out(tx, None, None, None, True)
        elif kind == b"W":
            (board.wdt_timeout_ms,) = struct.unpack_from(">I", data, 1)
            board.wdt_last = now
        elif kind == b"F":
            board.wdt_last = now
        elif kind == b"X":
            self._count("resets")
            if self.on_reset_request:
                self.on_reset_request(node, data[1:].decode(errors="replace"))

    def _begin(
        self, src: int, payload: bytes, settings: ChipSettings, now: float, injected: bool = False
    ) -> Transmission:
        toa = settings.time_on_air_us(len(payload)) / 1e6
        tx = Transmission(
            id=next(self._tx_ids),
            src=src,
            payload=bytes(payload),
            start=now,
            end=now + toa,
            settings=settings,
            injected=injected,
        )
        self.transmissions.append(tx)
        self._count("injected" if injected else "sent")
        for listener in list(self.listeners):
            try:
                listener(tx)
            except Exception:
                log.exception("transmission listener failed")
        return tx

    def _fan_out(
        self,
        tx: Transmission,
        targets: set[int] | None,
        rssi_dbm: float | None,
        snr_db: float | None,
        apply_link: bool,
    ) -> None:
        receivers = [n for n in self._boards if n != tx.src and (targets is None or n in targets)]
        if not receivers:
            tx.done.set()
            return
        pending = {"n": len(receivers)}

        def finished() -> None:
            pending["n"] -= 1
            if pending["n"] <= 0:
                tx.done.set()

        toa = tx.end - tx.start
        # The chip needs a few preamble symbols to detect a packet: a receiver must be
        # listening by then.
        detect_after = max(0.0, tx.settings.preamble_us() - 6 * tx.settings.symbol_us) / 1e6
        for node in receivers:
            link = self._link(tx.src, node)
            start = tx.start + link.latency_ms / 1000.0
            rssi = rssi_dbm
            if rssi is None:
                power = tx.settings.tx_dbm - 14.0
                rssi = link.rssi_dbm + power + self._rng.gauss(0, link.rssi_jitter_db)
            snr = snr_db
            if snr is None:
                snr = link.snr_db + self._rng.gauss(0, link.snr_jitter_db)
            lost = apply_link and self._rng.random() < link.loss
            corrupt = apply_link and self._rng.random() < link.corrupt
            self._at(
                start + detect_after,
                functools.partial(
                    self._detect, tx, node, rssi, snr, lost, corrupt, start + toa, finished
                ),
            )

    def _outcome(
        self,
        tx: Transmission,
        node: int,
        outcome: str,
        rssi: float | None = None,
        snr: float | None = None,
    ) -> None:
        tx.receptions[node] = Reception(node, outcome, rssi, snr)
        self._count(outcome)
        per = self.by_receiver.setdefault(node, {})
        per[outcome] = per.get(outcome, 0) + 1

    def _detect(
        self,
        tx: Transmission,
        node: int,
        rssi: float,
        snr: float,
        lost: bool,
        corrupt: bool,
        end: float,
        finished: Callable[[], None],
    ) -> None:
        board = self._boards.get(node)
        if board is None:
            self._outcome(tx, node, "gone")
            finished()
            return
        now = time.monotonic()
        if not board.settings.hears(tx.settings):
            self._outcome(tx, node, "mismatch")
        elif board.tx_until > now:
            self._outcome(tx, node, "busy")  # transmitting: half duplex
        elif lost:
            self._outcome(tx, node, "lost")
        elif rssi < board.settings.sensitivity_dbm:
            self._outcome(tx, node, "weak")
        elif board.locked is not None:
            # Already demodulating another packet: they overlap at this receiver.
            if not self.config.collisions:
                self._outcome(tx, node, "busy")
            else:
                if board.locked_rssi - rssi < self.config.capture_db:
                    board.doomed = True  # the first packet is garbled too
                self._outcome(tx, node, "collision", rssi, snr)
        elif board.rx_session is None:
            self._outcome(tx, node, "not_listening")
            tx.receptions[node].note = f"idle for {(now - board.rx_ended) * 1000:.1f} ms"
        else:
            board.locked = tx
            board.locked_rssi = rssi
            board.doomed = False
            session = board.rx_session
            remaining_ms = max(0, int((end - now) * 1000) + 1)
            notice = struct.pack(">cIH", b"D", session, min(remaining_ms, 0xFFFF))
            self._sock.sendto(notice, board.addr)
            self._at(end, lambda: self._end(tx, node, session, rssi, snr, corrupt, finished))
            return
        finished()

    def _end(
        self,
        tx: Transmission,
        node: int,
        session: int,
        rssi: float,
        snr: float,
        corrupt: bool,
        finished: Callable[[], None],
    ) -> None:
        try:
            board = self._boards.get(node)
            if board is None or board.locked is not tx or board.rx_session != session:
                self._outcome(tx, node, "aborted")  # the receiver stopped listening or reset
                return
            board.locked = None
            payload = tx.payload
            garbled = corrupt or board.doomed
            board.doomed = False
            if garbled:
                payload = self._flip_bits(payload)
            flags = 1 if garbled and tx.settings.crc else 0
            snr_x4 = max(-128, min(127, round(snr * 4)))
            rssi_i = max(-32768, min(32767, round(rssi)))
            header = struct.pack(">cIhbB", b"P", session, rssi_i, snr_x4, flags)
            self._sock.sendto(header + payload, board.addr)
            if flags:
                self._outcome(tx, node, "crc_error", rssi, snr)
            else:
                # Without a CRC on air the chip passes a garbled packet on as good.
                self._outcome(tx, node, "garbled" if garbled else "delivered", rssi, snr)
                board.rx_session = None  # single receive ends with a packet
                board.rx_ended = time.monotonic()
        finally:
            finished()

    def _flip_bits(self, payload: bytes) -> bytes:
        if not payload:
            return payload
        data = bytearray(payload)
        for _ in range(self._rng.randint(1, 3)):
            bit = self._rng.randrange(len(data) * 8)
            data[bit // 8] ^= 1 << (bit % 8)
        return bytes(data)

    def _check_watchdogs(self, now: float) -> None:
        for board in list(self._boards.values()):
            if board.wdt_timeout_ms is None:
                continue
            late = (now - board.wdt_last) * 1000 - board.wdt_timeout_ms
            if late > self.config.wdt_grace_ms:
                board.wdt_timeout_ms = None  # fire once; the reset re-registers the board
                self._count("wdt_expired")
                log.warning("node %d: watchdog not fed for %d ms", board.node, late)
                if self.on_wdt_expired:
                    self.on_wdt_expired(board.node)
