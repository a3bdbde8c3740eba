"""node2's serial port as a source of lines, surviving absence, unplug and replug.

``read_batch`` returns every complete line that arrived together (one ``read`` of what the
port has buffered), each with its receive time, so the pipeline can commit them in one
transaction. When the port is missing or fails, the source closes it, waits and reopens,
logging once per state change rather than once per attempt. ``auto`` finds the ST-LINK
virtual COM port by its USB vendor id (0483, STMicroelectronics). What is said on the port
(hello, which lines are stale, acknowledgements naming node2's boot) is the
``SerialSession``'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time

import serial
from serial.tools import list_ports

from ..stats import Stats
from .session import Line, SerialSession

log = logging.getLogger("iiot_bridge.serial")

ST_VENDOR_ID = 0x0483
MAX_LINE_BYTES = 4096  # far above a contract line (about 560 bytes); beyond is garbage
MAX_BATCH_LINES = 2000  # bounds one outbox transaction
RETRY_S = 0.5


def find_stlink() -> str | None:
    """Device path of the first ST-LINK virtual COM port, or None."""
    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    for port in ports:
        if port.vid == ST_VENDOR_ID:
            return str(port.device)
    return None


class SerialSource:
    def __init__(
        self,
        port: str,
        baud: int,
        stats: Stats,
        stop: threading.Event,
        session: SerialSession,
    ) -> None:
        self.port = port
        self.baud = baud
        self.stats = stats
        self.stop = stop
        self.session = session
        self._ser: serial.Serial | None = None
        self._buf = bytearray()
        self._state = ""  # last logged state: waiting | open | lost
        self._device = ""
        self._next_open = 0.0  # [gateways] non-blocking reads: when to try opening again

    @property
    def is_open(self) -> bool:
        return self._ser is not None

    def _announce(self, state: str, msg: str, *args: object, level: int = logging.INFO) -> None:
        if state != self._state:
            self._state = state
            log.log(level, msg, *args)

    def _open(self) -> bool:
        device = find_stlink() if self.port == "auto" else self.port
        if device is None:
            self._announce("waiting", "waiting for an ST-LINK serial port (USB vendor 0483)")
            return False
        if not os.path.exists(device):
            self._announce("waiting", "waiting for serial port %s to appear", device)
            return False
        try:
            ser = serial.Serial(device, self.baud, timeout=0.2, write_timeout=1.0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as err:
            self._announce("waiting", "cannot open %s yet: %s", device, err, level=logging.WARNING)
            return False
        self._ser = ser
        self._device = device
        self._buf.clear()
        self.stats.serial_opens += 1
        self.stats.serial_open = True
        self._announce("open", "serial port %s open at %d baud", device, self.baud)
        return self.write_line(self.session.opened())

    def _lost(self, err: Exception) -> None:
        self.close()
        self._announce(
            "lost",
            "serial port %s lost (%s); waiting for it",
            self._device,
            err,
            level=logging.WARNING,
        )

    def close(self) -> None:
        ser, self._ser = self._ser, None
        self.stats.serial_open = False
        self._buf.clear()  # a partial line from before the break is garbage now
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    def fileno(self) -> int | None:
        """[gateways] The open port's descriptor, to wait on several ports at once."""
        ser = self._ser
        return None if ser is None else int(ser.fileno())

    @property
    def ready(self) -> bool:
        """[gateways] Lines can be taken without waiting (held, or left in the buffer)."""
        return self.session.has_held or b"\n" in self._buf

    def read_batch(self, block: bool = True) -> list[Line]:
        """Complete lines to process now (blocks up to about 0.2 s when there are none;
        with ``block`` False it takes only what is there, and a closed port is tried again
        every RETRY_S without waiting: one of several ports)."""
        session = self.session
        held = session.take_held()
        if held:
            return session.admit(held)
        if self._ser is None:
            if not block and time.monotonic() < self._next_open:
                return []
            if not self._open():
                if block:
                    self.stop.wait(RETRY_S)
                else:
                    self._next_open = time.monotonic() + RETRY_S
                return []
        hello = session.due()
        if hello is not None and not self.write_line(hello):
            return []
        ser = self._ser
        assert ser is not None
        buf = self._buf
        try:
            if b"\n" in buf or not block:
                # Lines left over from a capped batch (or one of several ports): take what
                # is there without blocking.
                waiting = ser.in_waiting
                data = ser.read(waiting) if waiting else b""
            else:
                data = ser.read(max(1, ser.in_waiting))
                if data:
                    waiting = ser.in_waiting
                    if waiting:
                        data += ser.read(waiting)
        except (serial.SerialException, OSError) as err:
            self._lost(err)
            return []
        if not data and b"\n" not in buf:
            return []
        now = time.time_ns()
        buf += data
        lines: list[Line] = []
        start = 0
        while len(lines) < MAX_BATCH_LINES:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            lines.append((bytes(buf[start:end]).rstrip(b"\r"), now))
            start = end + 1
        del buf[:start]
        if len(buf) > MAX_LINE_BYTES and buf.find(b"\n") < 0:
            # No newline in sight: garbage on the line. Count it once and resynchronise.
            self.stats.lines += 1
            self.stats.malformed += 1
            buf.clear()
        return session.admit(lines)

    def write_ack(self, n: int) -> bool:
        """Tell node2 every line up to ``n`` is stored; False if it could not be written."""
        ser = self._ser
        if ser is None:
            self.stats.ack_failures += 1
            return False
        try:
            ser.write((self.session.ack(n) + "\n").encode())
        except serial.SerialTimeoutException:
            self.stats.ack_failures += 1
            return False
        except (serial.SerialException, OSError) as err:
            self.stats.ack_failures += 1
            self._lost(err)
            return False
        self.stats.acks_sent += 1
        return True

    def write_line(self, text: str) -> bool:
        """One host line to node2 (an ack, a setting); False if it could not be written."""
        ser = self._ser
        if ser is None:
            return False
        try:
            ser.write((text + "\n").encode())
        except serial.SerialTimeoutException:
            return False
        except (serial.SerialException, OSError) as err:
            self._lost(err)
            return False
        return True
