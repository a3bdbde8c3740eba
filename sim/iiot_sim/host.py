"""A host on node2's serial port, for tests and measurements that run the firmware without
the bridge: it speaks the serial session (shared/iiot_codec/line.py) as the bridge does."""

from __future__ import annotations

import contextlib
import json
import threading
import time

import serial

import iiot_codec


class AckingHost:
    """A host on node2's serial port (the pty): says hello when it opens it, ignores what
    comes before node2's answer (lines left in the link's buffers), then acknowledges each
    gap-free run of lines, as the bridge does."""

    NONCE = 42
    HELLO_EVERY_S = 2.0

    def __init__(self, path: str) -> None:
        self.port = serial.Serial(path, 115200, timeout=0.1)
        self.lines: list[str] = []
        self._boot: int | None = None
        self._end = 0  # last line number of the gap-free run
        self._restart = False
        self._stop = threading.Event()
        self._write(iiot_codec.encode_hello(self.NONCE))
        self._thread = threading.Thread(target=self._run, name="acking-host", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = b""
        hello_at = time.monotonic()
        while not self._stop.is_set():
            if self._boot is None and time.monotonic() - hello_at > self.HELLO_EVERY_S:
                # Unanswered: node2 was not reading yet (still booting) when it was written.
                hello_at = time.monotonic()
                self._write(iiot_codec.encode_hello(self.NONCE))
            try:
                buf += self.port.read(4096)
            except (serial.SerialException, OSError):
                return
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                self._line(raw.decode(errors="replace").strip())

    def _line(self, line: str) -> None:
        if not line.startswith("{"):
            return
        try:
            obj = json.loads(line)
        except ValueError:
            return
        if not isinstance(obj, dict):
            return
        session = iiot_codec.session_from_object(obj)
        if session is not None:
            if session.nonce == self.NONCE or (self._boot is not None and session.nonce is None):
                # node2 now sends its stream again from its oldest line not acknowledged:
                # the next numbered line starts the gap-free run, whatever its number.
                self._restart = True
                self._boot = session.boot
            return
        if self._boot is None:
            return  # before node2's answer: may have sat in a buffer
        self.lines.append(line)
        n = obj.get("n")
        if isinstance(n, int) and self._restart:
            self._restart = False
            self._end = n - 1
        if isinstance(n, int) and n <= self._end + 1:
            self._end = max(self._end, n)
            self._write(iiot_codec.encode_host_ack(self._end, self._boot))

    def _write(self, line: str) -> None:
        # A failed write: the port is closing, and close() ends the thread.
        with contextlib.suppress(serial.SerialException, OSError):
            self.port.write((line + "\n").encode())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.port.close()

    def __enter__(self) -> AckingHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
