"""The serial session with node2 on one port (the protocol is in shared/iiot_codec/line.py).

A line that reaches the bridge is not always fresh: lines written while the bridge was away
sit in the link's buffers (the VCP's, a pty's) and arrive after the port is reopened, dated
by their hold ``h`` as of when they were written, not of now. And line numbers only mean
something within one boot of node2. So on every opening the bridge says hello with a new
nonce and discards the frame lines that come before node2's answer (counted as
``stale_lines``): node2 answers with the nonce and its boot, then restarts its stream from
its oldest line not yet acknowledged, with fresh holds. The boot then tags every
acknowledgement, so an acknowledgement meant for one boot never releases another's lines.

The first numbered line after node2's answer, or after node2 announces a new boot, starts
the acknowledgement run again (``on_new_run``): node2 resends from its oldest line, so
everything before it is stored already.

Earlier firmware does not answer: a line of the earlier Rust firmware ends the wait at
once, and after ``ANSWER_WAIT_S`` without an answer (our own older firmware, or node2 not
running) the lines are processed without a session, with one warning.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from iiot_codec import CodecError, encode_hello, encode_host_ack, parse_object, session_from_object

from ..processors.legacy import is_legacy
from ..stats import Stats

log = logging.getLogger("iiot_bridge.serial")

HELLO_EVERY_S = 2.0  # node2 may have been resetting when the last hello was written
ANSWER_WAIT_S = 10.0  # then go on without a session: firmware that does not answer

Line = tuple[bytes, int]  # (line without its newline, receive time ns)

_GREETING, _OPEN = "greeting", "open"


class SerialSession:
    def __init__(
        self,
        stats: Stats,
        on_new_run: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
        nonces: random.Random | None = None,
    ) -> None:
        self.stats = stats
        self.on_new_run = on_new_run
        self.clock = clock
        self._nonces = nonces or random.SystemRandom()
        self.boot: int | None = None  # node2's boot, once it has named it
        # Bumped whenever node2 may have forgotten what the host sent it (a new opening, a
        # new boot): the downlink sends its pending requests again.
        self.generation = 0
        self._state = _OPEN
        self._nonce = 0
        self._opened_at = 0.0
        self._hello_at = 0.0
        self._held: list[Line] = []  # lines after a session line, for the next batch

    @property
    def greeting(self) -> bool:
        """Waiting for node2's answer to the hello."""
        return self._state == _GREETING

    def opened(self) -> str:
        """The port was (re)opened: the hello line to write."""
        self._state = _GREETING
        self._nonce = self._nonces.randrange(1, 1 << 31)
        self._opened_at = self._hello_at = self.clock()
        self._held.clear()
        self.generation += 1
        return encode_hello(self._nonce)

    def due(self) -> str | None:
        """A hello to write again now, if node2 has not answered yet."""
        if self._state != _GREETING:
            return None
        now = self.clock()
        if now - self._opened_at >= ANSWER_WAIT_S:
            self._state = _OPEN
            log.warning(
                "node2 did not answer the hello within %.0f s (firmware without the serial "
                "session, or node2 not running): taking its lines without one",
                ANSWER_WAIT_S,
            )
            return None
        if now - self._hello_at >= HELLO_EVERY_S:
            self._hello_at = now
            return encode_hello(self._nonce)
        return None

    def ack(self, n: int) -> str:
        """The acknowledgement line for every line up to ``n`` of node2's current boot."""
        return encode_host_ack(n, self.boot)

    @property
    def has_held(self) -> bool:
        """[gateways] Lines wait for the next batch (after a session line)."""
        return bool(self._held)

    def take_held(self) -> list[Line]:
        held, self._held = self._held, []
        return held

    def admit(self, lines: list[Line]) -> list[Line]:
        """The lines of this batch to process now. A session line ends the batch: the lines
        before it are processed and acknowledged under the boot they belong to before the
        session line and the lines after it are looked at (``take_held``)."""
        admitted: list[Line] = []
        for i, (raw, recv_ns) in enumerate(lines):
            # A cheap test first: frame lines are hex and numbers, never this word.
            if b'"boot"' in raw:
                if admitted:
                    self._held = lines[i:] + self._held
                    return admitted
                if self._session_line(raw):
                    continue
            if self._state == _GREETING and not self._ends_wait(raw):
                self.stats.lines += 1
                self.stats.stale_lines += 1
                continue
            admitted.append((raw, recv_ns))
        return admitted

    def _ends_wait(self, raw: bytes) -> bool:
        """While greeting: True for a line to take anyway (console output, or a line of the
        earlier firmware, which never answers: the wait ends at once)."""
        if not raw.startswith(b"{"):
            return True  # console output: shown, never stale data
        try:
            obj = parse_object(raw)
        except CodecError:
            return True  # the pipeline counts it as malformed
        if obj is not None and "f" not in obj and is_legacy(obj):
            self._state = _OPEN
            log.info("earlier firmware on the serial port: no serial session")
            return True
        return False

    def _session_line(self, raw: bytes) -> bool:
        """Apply a session line; False when the line is something else."""
        try:
            obj = parse_object(raw)
        except CodecError:
            return False
        session = None if obj is None else session_from_object(obj)
        if session is None:
            return False
        self.stats.lines += 1
        if session.nonce is not None and session.nonce != self._nonce:
            return True  # the answer to an earlier hello, left in a buffer
        if session.nonce is None and self._state == _GREETING:
            return True  # a boot announced before the answer: possibly an old one, buffered
        if session.boot != self.boot:
            if self.boot is not None:
                log.info("node2 restarted (boot %d, was %d)", session.boot, self.boot)
            self.stats.node2_boots += 1
            self.boot = session.boot
            self.generation += 1
        self._state = _OPEN
        self.on_new_run()
        return True
