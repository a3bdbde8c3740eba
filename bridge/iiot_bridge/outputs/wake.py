"""A wake-up signal a sink can wait on together with its sockets.

The intake sets it after every commit. The InfluxDB sink waits on it like an Event; the MQTT
sink ``select``s on its pipe together with the broker's socket, so a new reading is
published at once instead of at the next poll (this keeps MQTT latency in milliseconds).
"""

from __future__ import annotations

import contextlib
import os
import threading


class Wake:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    def set(self) -> None:
        if not self._event.is_set():
            self._event.set()
            # A full pipe means the reader is already due to wake.
            with contextlib.suppress(BlockingIOError):
                os.write(self._w, b"!")

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    def clear(self) -> bool:
        """Reset before looking for work, so a set() after the look is never missed.
        Returns whether it was set."""
        was_set = self._event.is_set()
        self._event.clear()
        with contextlib.suppress(BlockingIOError):
            while os.read(self._r, 4096):
                pass
        return was_set

    def fileno(self) -> int:
        return self._r
