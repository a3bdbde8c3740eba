"""Exponential backoff with jitter, shared by the sinks' reconnect and retry loops."""

from __future__ import annotations

import random


class Backoff:
    """Delays of 1, 2, 4 ... up to ``maximum`` seconds, each jittered into [d/2, d].

    The jitter keeps several bridges (or a bridge and its restarted broker) from retrying in
    lockstep; the floor stays at ``minimum`` so a flapping server is never hammered.
    """

    def __init__(self, minimum: float = 1.0, maximum: float = 60.0) -> None:
        self.minimum = minimum
        self.maximum = max(minimum, maximum)
        self.attempt = 0

    def next(self) -> float:
        ceiling = min(self.maximum, self.minimum * (2**self.attempt))
        self.attempt += 1
        return random.uniform(max(self.minimum, ceiling / 2), ceiling)

    def reset(self) -> None:
        self.attempt = 0
