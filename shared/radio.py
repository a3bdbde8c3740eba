# The SX1276 behind micropython-lib's `lora` API, guarded: every call that fails is
# counted, and a radio that fails (or was never found) is initialised again later while
# the node keeps measuring and queueing.
#
# Only the driver's public API is used (constructor through the board's factory,
# configure, send, recv, get_time_on_air_us, standby, crc_errors), so the same code runs
# on the real driver and on the simulator's stand-in.
import time

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_MAX_SYMBOL_TIMEOUT = const(1023)  # SX127x single-receive timeout limit, in symbols


def lora_cfg(radio):
    """The driver's lora_cfg from config.json's "radio": every setting we rely on, explicitly.

    Without crc_en and preamble_len the chip keeps its reset values (CRC off, preamble 8)
    while the driver assumes CRC on and 12 symbols (DESIGN.md pitfalls).
    """
    power = radio["output_power"]
    return {
        "freq_khz": radio["freq_khz"],
        "sf": radio["sf"],
        "bw": str(radio["bw"]),
        "coding_rate": radio["coding_rate"],
        "implicit_header": False,
        "crc_en": True,
        "preamble_len": radio["preamble_len"],
        "output_power": power if power <= 17 else 17,
        "tx_ant": radio["tx_ant"],
        "syncword": radio["syncword"],
    }


class Radio:
    """Wraps a modem made by ``factory(lora_cfg)``; see the module comment."""

    def __init__(self, factory, radio_cfg, retry_ms=30000):
        self.factory = factory
        self.cfg = lora_cfg(radio_cfg)
        self.retry_ms = retry_ms
        self.modem = None
        self.init_failures = 0
        self.send_errors = 0
        self.recv_errors = 0
        self.timeouts = 0
        self.crc_errors = 0  # bad-CRC packets the driver dropped (its counter minus timeouts)
        self._next_try = time.ticks_ms()
        # Longest receive the chip times out in hardware: one timeout per recv() call keeps
        # modem.crc_errors (which also counts timeouts) separable from real CRC errors.
        t_sym_us = (1 << radio_cfg["sf"]) * 1000000 // int(float(radio_cfg["bw"]) * 1000)
        self.max_rx_ms = _MAX_SYMBOL_TIMEOUT * t_sym_us // 1000 - 1
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
        except Exception as e:  # RuntimeError (no chip), OSError (SPI), ValueError (config)
            self.init_failures += 1
            self.last_error = e
            self._next_try = time.ticks_add(now, self.retry_ms)
            return False
        return True

    def _fail(self, e):
        # A modem that raised is in an unknown state: build it again at the next chance.
        self.last_error = e
        self.modem = None
        self._next_try = time.ticks_ms()

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
            self.send_errors += 1
            self._fail(e)
            return False

    def recv(self, timeout_ms):
        """One packet or None. Packets with a bad radio CRC are dropped and counted."""
        if not self.ready():
            return None
        if timeout_ms > self.max_rx_ms:
            timeout_ms = self.max_rx_ms
        if timeout_ms < 1:
            timeout_ms = 1
        modem = self.modem
        try:
            before = modem.crc_errors
            pkt = modem.recv(timeout_ms=timeout_ms)
            counted = modem.crc_errors - before
        except Exception as e:
            self.recv_errors += 1
            self._fail(e)
            return None
        if pkt is None:
            self.timeouts += 1
            counted -= 1  # the driver counts its own RX timeout as a CRC error
        if counted > 0:
            self.crc_errors += counted
        if pkt is not None and getattr(pkt, "crc_error", False):
            return None  # only returned in the driver's rx_crc_error mode; already counted
        return pkt
