"""The load generator: serial lines written into a real pty, paced like node2's link.

Two line formats carry the frames. :class:`Load` builds contract lines with iiot_codec
(node telemetry with temperature, humidity, pressure, gas resistance and voltage, and the
line adds rssi and snr: 7 readings per frame). :class:`LegacyLoad` builds the earlier Rust
gateway's JSON lines (node1's temperature, humidity and gas resistance, node2's temperature
and humidity, rssi, snr, and node2's two packet counters: 9 readings per line), the format
the Node-RED peer reads and the bridge also accepts. Frame i carries
``gas_resistance = GAS_BASE + i`` in both, a unique id the taps use to match a delivered
reading to the moment its line was written.

:func:`paced` writes on a fixed line rate; :func:`paced_link` at the byte rate of node2's
serial link (115200 baud, 8N1: 10 bits on the wire per byte), i.e. a saturated link.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import tty
from collections.abc import Iterable

import iiot_codec

METRICS = ("temperature", "humidity", "pressure", "gas_resistance", "voltage", "rssi", "snr")
READINGS_PER_FRAME = len(METRICS)
# The earlier firmware's line: n1 {t, h, g}, n2 {t, h}, sig {rssi, snr}, sts {rx, err}.
LEGACY_METRICS = (
    "temperature", "humidity", "gas_resistance", "rssi", "snr", "packets_received", "crc_errors"
)  # fmt: skip
LEGACY_READINGS_PER_FRAME = 9
ALL_METRICS = tuple(dict.fromkeys(METRICS + LEGACY_METRICS))
LINK_BAUD = 115200
BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit
GAS_BASE = 100_000
# Several senders, as a gateway hears them; each one's frame counter only grows.
NODES = (1, 3, 4, 5, 6, 7, 8, 9)


class Load:
    """Pre-built serial lines for frames ``start .. start + count - 1``.

    ``first_n`` is the first line number: node2 numbers its lines from 1 after it boots,
    and the bridge expects them without gaps, so each bridge session counts from 1.
    """

    readings_per_frame = READINGS_PER_FRAME

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


class LegacyLoad(Load):
    """The same frames as earlier-firmware JSON lines (no line counter, no acknowledgement).

    The lines end with a plain newline: the earlier gateway sometimes printed a literal
    backslash-n before it, which the bridge ignores but Node-RED's json node would refuse.
    """

    readings_per_frame = LEGACY_READINGS_PER_FRAME

    def _line(self, i: int) -> bytes:
        obj = {
            "ts": 1000 * (i - self.start + 1),
            "id": "N2",
            "n1": {
                "t": round(20.0 + (i % 1000) / 100, 2),
                "h": round(40.0 + (i % 500) / 50, 2),
                "g": GAS_BASE + i,
            },
            "n2": {"t": round(21.0 + (i % 700) / 100, 2), "h": round(45.0 + (i % 400) / 40, 2)},
            "sig": {"rssi": -40 - i % 60, "snr": 7.5 - (i % 20) / 4},
            "sts": {"rx": i - self.start + 1, "err": i % 3},
        }
        return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def link_rate(lines: list[bytes], baud: int = LINK_BAUD) -> float:
    """Lines per second that fill a ``baud`` 8N1 link with these lines."""
    total = sum(len(line) for line in lines)
    return len(lines) * baud / (BITS_PER_BYTE * total)


def session_line(boot: int, nonce: int | None = None) -> bytes:
    """node2's ``{"boot": B}`` line, or its answer to the host's ``{"hello": X}``."""
    encode = getattr(iiot_codec, "encode_session", None)
    if encode is not None:
        return str(encode(boot, nonce)).encode() + b"\n"
    obj = {"boot": boot} if nonce is None else {"hello": nonce, "boot": boot}
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


class Pty:
    """A pty pair: the bridge opens ``port``, the benchmark writes lines into the master.

    A thread drains what the bridge writes back (its ``{"ack": n}`` lines), so the bridge
    never blocks on a full pty buffer. With ``boot`` it speaks node2's session protocol:
    :meth:`announce` writes ``{"boot": B}`` as node2 does when it starts, and every
    ``{"hello": X}`` the host writes (on opening the port) is answered with
    ``{"hello": X, "boot": B}`` and counted in ``hellos`` (node2 then sends its lines again).
    """

    def __init__(self, boot: int | None = None) -> None:
        self.master, self._slave = os.openpty()
        # Raw mode from the start: lines written before the bridge opens the port must not be
        # echoed back or have their newlines translated.
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self.boot = boot
        self.acks = bytearray()
        self.hellos = 0
        self._seen = 0
        self._closed = False
        self._lock = threading.Lock()
        self._drain = threading.Thread(target=self._read_back, name="pty-drain", daemon=True)
        self._drain.start()

    def announce(self) -> None:
        if self.boot is not None:
            self.write(session_line(self.boot))

    def _answer_hellos(self) -> None:
        data = bytes(self.acks[self._seen :])
        cut = data.rfind(b"\n") + 1
        self._seen += cut
        for line in data[:cut].splitlines():
            if b'"hello"' not in line:
                continue
            try:
                nonce = json.loads(line)["hello"]
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(nonce, int) and self.boot is not None:
                self.write(session_line(self.boot, nonce))
                self.hellos += 1

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
                if self.boot is not None:
                    self._answer_hellos()

    def write(self, data: bytes) -> None:
        with self._lock:  # the drain thread answers hellos: lines never interleave
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


def _schedule(
    pty: Pty, lines: list[bytes], starts: Iterable[float], stop: threading.Event | None
) -> list[int]:
    written: list[int] = []
    start = time.perf_counter()
    for offset, line in zip(starts, lines, strict=False):
        if stop is not None and stop.is_set():
            break
        delay = start + offset - time.perf_counter()
        if delay > 0:
            time.sleep(delay)  # pacing a schedule, not waiting for a condition
        written.append(time.time_ns())
        pty.write(line)
    return written


def paced(
    pty: Pty, lines: list[bytes], rate_hz: float, stop: threading.Event | None = None
) -> list[int]:
    """Write one line every 1/rate_hz s on a fixed schedule; return each line's write time (ns)."""
    return _schedule(pty, lines, (k / rate_hz for k in range(len(lines))), stop)


def paced_link(
    pty: Pty, lines: list[bytes], baud: int = LINK_BAUD, stop: threading.Event | None = None
) -> list[int]:
    """Write each line when a saturated ``baud`` 8N1 link would have finished sending it
    (bytes per second, not lines per second); return each line's write time (ns)."""
    byte_s = BITS_PER_BYTE / baud
    ends: list[float] = []
    sent = 0
    for line in lines:
        sent += len(line)
        ends.append(sent * byte_s)
    return _schedule(pty, lines, ends, stop)
