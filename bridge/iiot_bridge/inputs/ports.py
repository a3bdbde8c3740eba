"""Several serial ports read as one source: one bridge, several gateways (issue 15).

Each port is a :class:`~.serial_source.SerialSource` with its own serial session (hello,
node2's boot, acknowledgements), named by its gateway label (``identity``). ``read`` waits
on every open port at once; when one has data it waits ``MERGE_S`` more, so the copies of
a frame that several gateways heard at the same moment arrive in the same batch and are
merged (``processors.copies``), then takes what every port has. Closed ports are tried
again on every round, without waiting. With ``auto`` the set is every ST-LINK present,
looked for again every ``SCAN_S``: a gateway plugged in later is picked up, and one that
comes back under another device name is found again by its USB serial number.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable, Sequence

from .. import identity
from ..stats import Stats
from .serial_source import SerialSource
from .session import Line, SerialSession

log = logging.getLogger("iiot_bridge.serial")

MERGE_S = 0.05  # after the first line of a round: how long copies from other ports may take
SCAN_S = 2.0  # --serial auto: how often the ST-LINKs present are listed
WAIT_S = 0.2


class Port:
    """One gateway's serial port."""

    def __init__(self, label: str, source: SerialSource) -> None:
        self.label = label
        self.source = source


class PortSet:
    def __init__(
        self,
        serials: Sequence[str],
        baud: int,
        stats: Stats,
        stop: threading.Event,
        new_session: Callable[[str], SerialSession],
    ) -> None:
        self.auto = list(serials) == ["auto"]
        self.baud = baud
        self.stats = stats
        self.stop = stop
        self.new_session = new_session
        self.ports: dict[str, Port] = {}
        self._next_scan = 0.0
        if not self.auto:
            for path in serials:
                self._add(identity.gateway_label(path), path)

    def _add(self, label: str, device: str) -> Port:
        source = SerialSource(device, self.baud, self.stats, self.stop, self.new_session(label))
        port = self.ports[label] = Port(label, source)
        return port

    def scan(self, now: float | None = None) -> None:
        """``auto``: take every ST-LINK present (by its USB serial number)."""
        now = time.monotonic() if now is None else now
        if not self.auto or now < self._next_scan:
            return
        self._next_scan = now + SCAN_S
        for device, label in identity.stlinks():
            port = self.ports.get(label)
            if port is None:
                log.info("gateway %s found on %s", label, device)
                self._add(label, device)
            elif not port.source.is_open and port.source.port != device:
                log.info("gateway %s is now on %s", label, device)
                port.source.port = device
        if not self.ports:
            log.debug("no ST-LINK serial port (USB vendor 0483) yet")

    def read(self, timeout: float = WAIT_S) -> list[tuple[Port, list[Line]]]:
        """The lines every port has now, per port; waits up to ``timeout`` for the first."""
        self.scan()
        ports = list(self.ports.values())
        batches = self._take(ports)
        if batches or self._wait(ports, timeout):
            # Something came: the other gateways' copies of the same frame are a few ms
            # behind it.
            self.stop.wait(MERGE_S)
            batches = self._merge(batches, self._take(ports))
        self.stats.serial_open = any(p.source.is_open for p in ports)
        for p in ports:
            self.stats.gateway(p.label).open = p.source.is_open
        return batches

    def _wait(self, ports: Sequence[Port], timeout: float) -> bool:
        """Wait up to ``timeout`` for any open port to have data; whether one has."""
        fds = [fd for p in ports if (fd := p.source.fileno()) is not None]
        if not fds:
            self.stop.wait(timeout)
            return False
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except (OSError, ValueError):  # a port closed under us: its read says why
            return True
        return bool(readable)

    @staticmethod
    def _take(ports: Sequence[Port]) -> list[tuple[Port, list[Line]]]:
        out: list[tuple[Port, list[Line]]] = []
        for port in ports:
            lines = port.source.read_batch(block=False)
            if lines:
                out.append((port, lines))
        return out

    @staticmethod
    def _merge(
        first: list[tuple[Port, list[Line]]], then: list[tuple[Port, list[Line]]]
    ) -> list[tuple[Port, list[Line]]]:
        merged: dict[str, tuple[Port, list[Line]]] = {}
        for port, lines in first + then:
            if port.label in merged:
                merged[port.label][1].extend(lines)
            else:
                merged[port.label] = (port, list(lines))
        return list(merged.values())

    def write_line(self, text: str) -> None:
        """A host line for every gateway (a setting for a node: only the node's own gateway
        will put it in an ACK; the others keep it until the node confirms it)."""
        for port in self.ports.values():
            port.source.write_line(text)

    @property
    def generation(self) -> int:
        """Changes whenever any node2 may have forgotten what the host sent it."""
        return sum(p.source.session.generation for p in self.ports.values())

    def close(self) -> None:
        for port in self.ports.values():
            port.source.close()
