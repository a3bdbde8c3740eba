"""node2's serial port (the ST-LINK virtual COM port) as a pseudo-terminal.

The orchestrator writes node2's stdout to the pty master; a host (the bridge, pyserial,
`cat`) opens the slave path. Bytes the host writes come out of the master and go to
node2's stdin. Like a USB VCP with nobody listening, output is dropped once the
terminal's buffer is full.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections.abc import Callable
from pathlib import Path


class PtyPort:
    def __init__(self, on_input: Callable[[bytes], None], link: Path | None = None) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no newline translation: a plain byte pipe
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self.link = link
        if link is not None:
            link = Path(link)
            with contextlib.suppress(FileNotFoundError):
                if link.is_symlink() or link.exists():
                    link.unlink()
            link.symlink_to(self.path)
        self.dropped_bytes = 0
        self._on_input = on_input
        self._stop_r, self._stop_w = os.pipe()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="pty-in", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        """Output towards the host; what does not fit in the terminal buffer is lost."""
        with self._lock:
            view = memoryview(data)
            while view:
                try:
                    n = os.write(self._master, view)
                except BlockingIOError:
                    self.dropped_bytes += len(view)
                    return
                except OSError:
                    self.dropped_bytes += len(view)
                    return
                view = view[n:]

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([self._master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self._master, 4096)
            except BlockingIOError:
                continue
            except OSError:
                return
            if data:
                self._on_input(data)

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=5)
        for fd in (self._master, self._slave, self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.link is not None:
            with contextlib.suppress(OSError):
                Path(self.link).unlink()
