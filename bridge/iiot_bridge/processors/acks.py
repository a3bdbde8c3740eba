"""Which lines the bridge takes, and which line number it may acknowledge to node2.

node2 numbers its lines (``n``) and treats ``{"ack": n}`` as cumulative: every line up to n
is stored and may leave its resend ring. So the bridge acknowledges only the end of the run
of numbers it has seen without a gap. A gap (lines lost in a pty buffer when the cable was
pulled, or corrupted on the wire) holds the acknowledgement back; node2 then resends from
its oldest unacknowledged line and the run continues. Lines *after* a gap are not
processed at all: node2 sends them again behind the missing ones, and taking them now would
let their newer frame counters make the missing frames look like stale resends. Two cases
move past a gap anyway: node2 resending a line *after* the gap without the missing ones (it
no longer has them), and a gap that stays open for ``gap_timeout_s`` (longer than node2's
longest resend backoff, 60 s, so a node2 that can still fill the gap always gets to). A
number at or below the run's end restarts the run there (a resend of acknowledged lines, or
node2 rebooted and numbers from 1 again). ``restart`` makes the next number the run's start
whatever it is: the serial session knows node2 begins its stream again from its oldest line
not yet acknowledged (inputs/session.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class AckTracker:
    def __init__(
        self,
        end: int = 0,
        gap_timeout_s: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gap_timeout_s = gap_timeout_s
        self.clock = clock
        # Last number of the gap-free run. It starts at 0 (node2 numbers from 1) or where the
        # bridge left off before a restart, so lines lost before the first one seen still
        # count as a gap.
        self.end = end
        self.highest: int | None = None  # highest number seen beyond a gap
        self.gap_since: float | None = None
        self._restart = False

    def restart(self) -> None:
        """The next line seen starts the run, without a gap before it."""
        self._restart = True

    def saw(self, n: int) -> bool:
        """Record line ``n``; True to process it, False to leave it for node2 to resend."""
        if self._restart:
            self._restart = False
            self._jump(n - 1)
        end = self.end
        if n <= end + 1:
            self.end = n
            if self.highest is not None and n >= self.highest:
                self.highest = None
                self.gap_since = None
            return True
        # n > end + 1: a gap before n.
        if self.highest is not None and n <= self.highest:
            # node2 resends lines after the gap but not the gap itself: it cannot.
            self._jump(n)
            return True
        now = self.clock()
        if self.gap_since is None:
            self.gap_since = now
        elif now - self.gap_since > self.gap_timeout_s:
            self._jump(n)
            return True
        self.highest = n if self.highest is None else max(self.highest, n)
        return False

    def _jump(self, n: int) -> None:
        self.end = n
        self.highest = None
        self.gap_since = None

    def ack(self) -> int:
        """The number to acknowledge now."""
        return self.end
