"""What the boards say on their consoles, gathered for the report.

Every board prints console events (`@{"ev": ...}` lines, see docs/simulator.md); node2 also
prints its serial contract lines (`{"f": ...}`). `EventLog` keeps, per node and boot, every
reading, the frame counters it went out under, acks, queue drops, heap samples, and node2's
forwarded frames, so the report can prove end-to-end delivery.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import iiot_codec


@dataclass
class Reading:
    node: int
    boot: int
    rn: int
    t: float
    values: dict[str, float]
    tx: list[tuple[int, float]] = field(default_factory=list)  # (fcnt, t)
    queued: bool = False
    dropped: bool = False

    def as_dict(self, acked: set[int]) -> dict[str, Any]:
        fcnts = [f for f, _ in self.tx]
        return {
            "boot": self.boot,
            "rn": self.rn,
            "t": round(self.t, 3),
            "r": self.values,
            "tx": fcnts,
            "acked": [f for f in fcnts if f in acked],
            "queued": self.queued,
            "dropped": self.dropped,
        }


@dataclass
class Forwarded:
    """A frame node2 wrote to its serial port (distinct line number n)."""

    src: int
    kind: str
    seq: int
    fcnt: int
    n: int | None
    rssi: int | None
    snr: float | None
    t: float
    boot: int  # node2's boot that wrote it (line numbers start again at each)
    age_ms: int  # of the newest reading in the frame
    hold_ms: int  # how long node2 held it before the first write seen
    writes: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "kind": self.kind,
            "seq": self.seq,
            "fcnt": self.fcnt,
            "n": self.n,
            "rssi": self.rssi,
            "snr": self.snr,
            "age_ms": self.age_ms,
            "hold_ms": self.hold_ms,
            "t": round(self.t, 3),
            "boot": self.boot,
            "writes": self.writes,
        }


@dataclass
class NodeLog:
    node: int
    role: str
    boots: list[dict[str, Any]] = field(default_factory=list)
    readings: dict[tuple[int, int], Reading] = field(default_factory=dict)
    # fcnt -> the (boot, rn) of every reading that went out under it (a batch has several)
    by_fcnt: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    acked: set[int] = field(default_factory=set)
    heap: dict[str, int] = field(default_factory=dict)
    heap_samples: int = 0
    # the radio's SPI transactions and receive-window time since each boot (heap events)
    radio_by_boot: dict[int, dict[str, int]] = field(default_factory=dict)
    console_lines: int = 0
    bad_events: int = 0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=40))
    tracebacks: list[str] = field(default_factory=list)
    forwarded: list[Forwarded] = field(default_factory=list)
    bad_lines: int = 0
    serial_lines: int = 0
    host_acks: list[tuple[int, float, int]] = field(default_factory=list)  # (boot, t, n)
    host_buf: bytes = b""
    last_fcnt: dict[int, int] = field(default_factory=dict)  # src -> last forwarded counter


class EventLog:
    """Thread-safe store of every board's console events and node2's serial lines."""

    def __init__(self, roles: dict[int, str], gateway: int) -> None:
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self.gateway = gateway  # the first gateway
        self.gateways = {n for n, role in roles.items() if role == "node2"} | {gateway}
        self.nodes = {n: NodeLog(n, role) for n, role in roles.items()}
        # per gateway: line number -> what it forwarded (the host may see a line again)
        self._forward_by_n: dict[int, dict[int, Forwarded]] = {g: {} for g in self.gateways}
        self.changed = threading.Condition(self._lock)

    def now(self) -> float:
        return time.monotonic() - self._t0

    @property
    def lock(self) -> threading.Lock:
        return self._lock

    def boot(self, node: int, cause: str, pid: int) -> int:
        with self._lock:
            log = self.nodes[node]
            log.boots.append({"boot": len(log.boots), "t": round(self.now(), 3), "cause": cause,
                              "pid": pid, "fcnt": None, "exit": None})  # fmt: skip
            if node in self.gateways:
                self._forward_by_n[node].clear()  # line numbers start again after a reset
            self.changed.notify_all()
            return len(log.boots) - 1

    def exited(self, node: int, code: int, expected: bool) -> None:
        with self._lock:
            log = self.nodes[node]
            if log.boots:
                log.boots[-1]["exit"] = {"code": code, "expected": expected,
                                         "t": round(self.now(), 3)}  # fmt: skip
            self.changed.notify_all()

    def line(self, node: int, text: str) -> None:
        with self._lock:
            log = self.nodes[node]
            log.console_lines += 1
            if text.startswith("@{"):
                try:
                    event = json.loads(text[1:])
                except ValueError:
                    log.bad_events += 1
                else:
                    if isinstance(event, dict):
                        self._event(log, event)
                    else:
                        log.bad_events += 1
            elif text.startswith("{") and node in self.gateways:
                self._serial(log, text)
            else:
                log.tail.append(text)
                if text.startswith("Traceback") or "Error" in text:
                    log.tracebacks.append(text)
                    del log.tracebacks[:-20]
            self.changed.notify_all()

    def _event(self, log: NodeLog, ev: dict[str, Any]) -> None:
        kind = ev.get("ev")
        boot = len(log.boots) - 1
        rn = ev.get("rn")
        if kind == "heap":
            log.heap_samples += 1
            for key, name in (("spi", "spi_transactions"), ("rx_ms", "rx_window_ms")):
                value = ev.get(key)
                if isinstance(value, int):
                    log.radio_by_boot.setdefault(boot, {})[name] = value
            for key in ("peak_live", "peak_alloc", "live", "total", "standin"):
                value = ev.get(key)
                if isinstance(value, int) and value > log.heap.get(key, -1):
                    log.heap[key] = value
        elif kind == "boot":
            if log.boots:
                log.boots[-1]["fcnt"] = ev.get("fcnt")
        elif kind == "reading" and isinstance(rn, int):
            raw = ev.get("r")
            values: dict[str, float] = raw if isinstance(raw, dict) else {}
            log.readings[(boot, rn)] = Reading(log.node, boot, rn, self.now(), values)
        elif kind == "tx" and isinstance(ev.get("fcnt"), int):
            rns = ev.get("rns", [rn])
            carried = log.by_fcnt.setdefault(ev["fcnt"], [])
            for one in rns if isinstance(rns, list) else []:
                if not isinstance(one, int):
                    continue
                reading = log.readings.get((boot, one))
                if reading is None:  # a tx for a reading we did not see: keep it anyway
                    reading = Reading(log.node, boot, one, self.now(), {})
                    log.readings[(boot, one)] = reading
                reading.tx.append((ev["fcnt"], self.now()))
                carried.append((boot, one))
        elif kind == "acked" and isinstance(ev.get("fcnt"), int):
            log.acked.add(ev["fcnt"])
        elif kind == "queued" and isinstance(rn, int) and (boot, rn) in log.readings:
            log.readings[(boot, rn)].queued = True
        elif kind == "drop" and isinstance(rn, int) and (boot, rn) in log.readings:
            log.readings[(boot, rn)].dropped = True

    def host_input(self, data: bytes, gateway: int | None = None) -> None:
        """What the host wrote to a node2: its acknowledgements, when the number grows."""
        with self._lock:
            log = self.nodes[self.gateway if gateway is None else gateway]
            log.host_buf += data
            *lines, log.host_buf = log.host_buf.split(b"\n")
            boot = len(log.boots) - 1
            for raw in lines:
                n = iiot_codec.decode_host_ack(raw)
                if n is None:
                    continue
                last = log.host_acks[-1] if log.host_acks else None
                if last is None or last[0] != boot or n > last[2]:
                    log.host_acks.append((boot, round(self.now(), 3), n))

    def _serial(self, log: NodeLog, text: str) -> None:
        log.serial_lines += 1
        try:
            line = iiot_codec.decode_line(text)
            if line is None:
                return
            frame = iiot_codec.decode(line.frame)
        except iiot_codec.CodecError:
            log.bad_lines += 1
            return
        by_n = self._forward_by_n[log.node]
        if line.n is not None and line.n in by_n:
            known = by_n[line.n]
            if known.seq == frame.seq and known.src == frame.src:
                known.writes += 1  # node2 re-sent a line the host had not acknowledged
                return
        fcnt = self._full_counter(log, frame)
        record = Forwarded(frame.src, frame.kind, frame.seq, fcnt, line.n, line.rssi, line.snr,
                           self.now(), len(log.boots) - 1, frame.age_ms, line.hold_ms)  # fmt: skip
        log.forwarded.append(record)
        if line.n is not None:
            by_n[line.n] = record

    def _full_counter(self, log: NodeLog, frame: iiot_codec.Frame) -> int:
        if frame.fcnt_hi is not None:
            fcnt = frame.fcnt
        else:
            sender = self.nodes.get(frame.src)
            candidates = (
                [f for f in sender.by_fcnt if f & 0xFFFF == frame.seq] if sender is not None else []
            )
            if candidates:
                fcnt = max(candidates)
            else:
                fcnt = iiot_codec.place_counter(frame.seq, log.last_fcnt.get(frame.src))
        log.last_fcnt[frame.src] = fcnt
        return fcnt
