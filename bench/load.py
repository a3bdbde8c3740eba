"""The load generator: contract lines built with iiot_codec, written into a real pty.

Each frame is node telemetry with temperature, humidity, pressure, gas resistance and
voltage, and the line adds rssi and snr: 7 readings per frame. Frame i carries
``gas_resistance = GAS_BASE + i``, a unique id the taps use to match a delivered reading to
the moment its line was written.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import tty
from collections.abc import Iterable

import iiot_codec

METRICS = ("temperature", "humidity", "pressure", "gas_resistance", "voltage", "rssi", "snr")
READINGS_PER_FRAME = len(METRICS)
GAS_BASE = 100_000
# Several senders, as a gateway hears them; each one's frame counter only grows.
NODES = (1, 3, 4, 5, 6, 7, 8, 9)


class Load:
    """Pre-built serial lines for frames ``start .. start + count - 1``.

    ``first_n`` is the first line number: node2 numbers its lines from 1 after it boots,
    and the bridge expects them without gaps, so each bridge session counts from 1.
    """

    def __init__(
        self, count: int, start: int = 0, first_n: int = 1, nodes: Iterable[int] = NODES
    ) -> None:
        self.nodes = tuple(nodes)
        self.start = start
        self.first_n = first_n
        self.lines: list[bytes] = [self._line(i) for i in range(start, start + count)]

    def _line(self, i: int) -> bytes:
        src = self.nodes[i % len(self.nodes)]
        seq = 1 + i // len(self.nodes)  # this node's counter: 1, 2, 3, ...
        readings = {
            "temperature": 20.0 + (i % 1000) / 100,
            "humidity": 40.0 + (i % 500) / 50,
            "pressure": 1000.0 + (i % 300) / 10,
            "gas_resistance": GAS_BASE + i,
            "voltage": 3.3 - (i % 100) / 1000,
        }
        frame = iiot_codec.encode_telemetry(src, seq, readings)
        line = iiot_codec.encode_line(
            frame, rssi=-40 - i % 60, snr=7.5 - (i % 20) / 4, n=self.first_n + i - self.start
        )
        return line.encode() + b"\n"

    @staticmethod
    def gas_index(value: float) -> int:
        return int(value) - GAS_BASE

    def __len__(self) -> int:
        return len(self.lines)


class Pty:
    """A pty pair: the bridge opens ``port``, the benchmark writes lines into the master.

    A thread drains what the bridge writes back (its ``{"ack": n}`` lines), so the bridge
    never blocks on a full pty buffer.
    """

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        # Raw mode from the start: lines written before the bridge opens the port must not be
        # echoed back or have their newlines translated.
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.acks = bytearray()
        self._closed = False
        self._drain = threading.Thread(target=self._read_back, name="pty-drain", daemon=True)
        self._drain.start()

    def _read_back(self) -> None:
        while not self._closed:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                if self._closed:
                    return
                time.sleep(0.05)  # nobody has the port open: EIO until the bridge opens it
                continue
            if not data:
                time.sleep(0.05)
                continue
            if len(self.acks) < 1 << 20:
                self.acks += data

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.master, view)
            view = view[n:]

    def close(self) -> None:
        self._closed = True
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> Pty:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def blast(pty: Pty, lines: list[bytes], chunk: int = 32) -> tuple[int, int]:
    """Write ``lines`` as fast as the pty takes them; return (start, end) wall-clock ns."""
    t0 = time.time_ns()
    for k in range(0, len(lines), chunk):
        pty.write(b"".join(lines[k : k + chunk]))
    return t0, time.time_ns()


def paced(
    pty: Pty, lines: list[bytes], rate_hz: float, stop: threading.Event | None = None
) -> list[int]:
    """Write one line every 1/rate_hz s on a fixed schedule; return each line's write time (ns)."""
    written: list[int] = []
    period = 1.0 / rate_hz
    start = time.perf_counter()
    for k, line in enumerate(lines):
        if stop is not None and stop.is_set():
            break
        delay = start + k * period - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # pacing a schedule, not waiting for a condition
        written.append(time.time_ns())
        pty.write(line)
    return written
