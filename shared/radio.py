# The SX1276 behind micropython-lib's `lora` API, guarded: every call that fails is
# counted, and a radio that fails (or was never found) is initialised again later, with a
# growing pause, while the node keeps measuring and queueing.
#
# Only the driver's public API is used (constructor through the board's factory, send,
# recv, get_time_on_air_us, crc_errors).
#
# Bad-CRC packets, counted honestly. The driver drops them and counts them in crc_errors,
# but it counts every hardware RX timeout there too, and two of its quirks blur the sum:
# a timeout flag left set when a receive ends (its poll reads the IRQ flags before the
# mode) is counted by the next receive as well, and a bad packet still arriving at the
# deadline stretches the receive and is counted with no timeout beside it. So each
# receive expects one timeout count if it returned nothing within its time, or one bad
# packet if it returned nothing late (the chip only stays in receive past its symbol
# timeout for a packet it has locked on to); what the counter says beyond that is bad
# packets, and a missing timeout count is owed to the next receive, at most one.
import time

from console import oom
from micropython import const

_MAX_SYMBOL_TIMEOUT = const(1023)  # SX127x single-receive timeout limit, in symbols
_RETRY_FIRST_MS = const(1000)


class Radio:
    """Wraps a modem made by ``factory(lora_cfg)``; see the module comment. ``radio_cfg``
    is config.json's "radio" as config.load() gives it: every setting the driver relies on,
    explicitly (without crc_en and preamble_len the chip keeps its reset values, CRC off
    and a preamble of 8, while the driver assumes CRC on and 12 symbols)."""

    def __init__(self, factory, radio_cfg, retry_ms=30000):
        self.factory = factory
        self.cfg = radio_cfg  # the driver's lora_cfg: config.load() makes it complete
        self.retry_ms = retry_ms  # the longest pause between two init attempts
        self.modem = None
        self.errors = 0  # init, send and receive failures
        self.crc_errors = 0  # bad-CRC packets the driver dropped (see the module comment)
        self._owed = 0
        self._wait = _RETRY_FIRST_MS
        self._next_try = time.ticks_ms()
        t_sym_us = (1 << radio_cfg["sf"]) * 1000000 // int(float(radio_cfg["bw"]) * 1000)
        # Longest receive the chip times out in hardware: one timeout per recv() call.
        self.max_rx_ms = _MAX_SYMBOL_TIMEOUT * t_sym_us // 1000 - 1
        # A receive that ends this much past its deadline was stretched by a packet.
        self._late_ms = 2 * t_sym_us // 1000 + 6
        self.last_error = None

    def ready(self):
        """True when a modem is up; tries to bring one up when the retry time has come."""
        if self.modem is not None:
            return True
        now = time.ticks_ms()
        if time.ticks_diff(now, self._next_try) < 0:
            return False
        try:
            self.modem = self.factory(self.cfg)
            self._wait = _RETRY_FIRST_MS
        except Exception as e:  # RuntimeError (no chip), OSError (SPI), MemoryError, ...
            self._fail(e)
            return False
        return True

    def _fail(self, e):
        # A modem that raised is in an unknown state: build it again, after a pause that
        # doubles up to retry_ms so a missing chip costs little.
        if isinstance(e, MemoryError):
            oom("radio")
        self.errors += 1
        self.last_error = e
        self.modem = None
        self._next_try = time.ticks_add(time.ticks_ms(), self._wait)
        self._wait = min(self._wait * 2, self.retry_ms)

    def toa_us(self, n):
        if self.modem is None:
            return 0
        try:
            return self.modem.get_time_on_air_us(n)
        except Exception as e:
            self._fail(e)
            return 0

    def send(self, frame):
        """Transmit one frame; False (and counted) when the radio is down or failed."""
        if not self.ready():
            return False
        try:
            self.modem.send(frame)
            return True
        except Exception as e:
            self._fail(e)
            return False

    def recv(self, timeout_ms):
        """One packet or None. Packets with a bad radio CRC are dropped and counted."""
        if not self.ready():
            return None
        timeout_ms = max(1, min(timeout_ms, self.max_rx_ms))
        modem = self.modem
        t0 = time.ticks_ms()
        try:
            before = modem.crc_errors
            pkt = modem.recv(timeout_ms=timeout_ms)
            surplus = modem.crc_errors - before
        except Exception as e:
            self._fail(e)
            return None
        if pkt is None:
            surplus -= 1  # this receive's own timeout, or the bad packet that stretched it
            if time.ticks_diff(time.ticks_ms(), t0) > timeout_ms + self._late_ms:
                self.crc_errors += 1
        if self._owed and surplus > 0:
            surplus -= 1  # the timeout the previous receive left behind
        self._owed = 0
        if surplus > 0:
            self.crc_errors += surplus
        elif surplus < 0:
            self._owed = 1
        if pkt is not None and getattr(pkt, "crc_error", False):
            return None  # only returned in the driver's rx_crc_error mode; already counted
        return pkt
