"""The sink contract, and the one runner every sink runs under.

A sink only talks to its server: it connects, writes rows and says which are done, and
closes. Everything else is the :class:`SinkRunner`'s, the same for every sink: the
cursor in the outbox, reading bounded batches (with a batching window), wake-ups after a
commit, backoff and retries, counters, logging each change of state once, surviving any
error (an outbox error, a server error, a bug: it logs, backs off and carries on from
its cursor, so a sink never dies for good), and the final flush at shutdown.

Routing: each sink declares the row kinds it accepts (:class:`~iiot_bridge.model.Kind`);
the runner hands it only those. Rows of other kinds are passed over, so the cursor
still moves and the outbox can be pruned.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from urllib.parse import SplitResult, urlsplit

from ..downlink import Downlink
from ..model import ALL_KINDS, Kind
from ..outbox import Outbox, OutboxError, Row
from ..stats import SinkStats, Stats
from .backoff import Backoff
from .wake import Wake

log = logging.getLogger("iiot_bridge.sinks")

IDLE_S = 1.0  # longest wait for a wake-up before looking at the outbox anyway
# How often the delivered cursor is written to the outbox. After a crash (SIGKILL, power)
# a sink delivers again what it did since the last save: at 1 s, about 10 frames reached
# MQTT subscribers twice per bridge kill in `make bench`; a save is a WAL append without
# an fsync (tens of µs), so saving ten times a second costs little.
CURSOR_SAVE_S = 0.1
SHUTDOWN_FLUSH_S = 5.0  # how long a stopping sink may keep delivering


def http_url(value: str, shape: str) -> SplitResult:
    """``value`` split, if it is an http(s) URL with a host and a valid port; a ValueError
    naming ``shape`` (what the setting expects) otherwise. Shared by the HTTP sinks."""
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as err:
        raise ValueError(f"bad port in {value!r}") from err
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be {shape}, got {value!r}")
    return parts


class RetryLater(Exception):
    """Nothing of this write is done; write it again after ``delay`` seconds (None: the
    runner's backoff). ``state`` names the trouble, so each kind is logged once."""

    def __init__(self, message: str, delay: float | None = None, state: str = "") -> None:
        super().__init__(message)
        self.delay = delay
        self.state = state or message


class Disconnected(RetryLater):
    """The connection is gone: the runner closes the sink and connects it again, then
    writes everything after the cursor again."""


class Done(NamedTuple):
    """What a write finished: every row handed to the sink so far with an id at or below
    ``through`` is done (0: none yet); ``delivered`` rows were confirmed by the server and
    ``rejected`` rows refused as invalid and dropped since the last report."""

    through: int = 0
    delivered: int = 0
    rejected: int = 0


NOTHING = Done()


class Sink(Protocol):
    """An output. Called from its runner's thread only."""

    name: str  # short id: the cursor's name, the `sink` label in /metrics
    title: str  # for log lines: "MQTT", "InfluxDB"
    target: str  # where it delivers, for log lines: "host:port", a URL
    accepts: frozenset[Kind]
    batch_size: int  # rows per write at most
    window: int  # rows written but not yet done at most (a synchronous sink: batch_size)
    linger_s: float  # how long a partial batch may wait to fill up (0: write at once)

    def connect(self) -> None:
        """Connect to the server; raise RetryLater (or Disconnected) when it cannot."""

    def write(self, rows: Sequence[Row]) -> Done:
        """Send ``rows`` (maybe none: then only report what finished since the last call).
        Raise RetryLater when none of them is done, Disconnected when the connection is
        gone."""

    def wait(self, timeout: float, wake: Wake) -> bool:
        """Wait up to ``timeout`` s for the server or a wake-up; True when woken."""

    def close(self, final: bool) -> None:
        """Close the connection; ``final`` at shutdown, after the last write."""


class NodeStatuses(Protocol):
    """Where a sink learns each node's status (online/offline), e.g. to publish it."""

    def statuses(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Context:
    """What the bridge lends a sink when it is built."""

    outbox: Outbox
    stats: Stats
    availability: NodeStatuses
    retry_max_s: float
    downlink: Downlink | None = None  # where setting requests from a sink go
    bridge_id: str = "bridge"  # [gateways] this bridge's name (status topic, bridge tag)


@dataclass(frozen=True)
class SinkPlugin:
    """A sink module's entry: ``settings`` is its settings group (a settings.Group
    dataclass), ``enabled(group)`` whether it runs, ``build(group, context)`` the sink,
    ``off`` how a user turns it off (for the "every sink is off" error)."""

    name: str
    settings: type[Any]
    enabled: Callable[[Any], bool]
    build: Callable[[Any, Context], Sink]
    off: str


class SyncSink:
    """Defaults for a sink whose write blocks until the server answered (HTTP)."""

    window: int = 0  # 0: the batch size
    linger_s: float = 0.0

    def wait(self, timeout: float, wake: Wake) -> bool:
        return wake.wait(timeout)

    def close(self, final: bool) -> None:
        """Nothing to close by default."""


class SinkRunner:
    """Runs one sink in its own thread until ``stop`` is set (then flushes for a while)."""

    def __init__(
        self,
        sink: Sink,
        outbox: Outbox,
        stats: SinkStats,
        wake: Wake,
        stop: threading.Event,
        retry_max_s: float = 60.0,
    ) -> None:
        self.sink = sink
        self.outbox = outbox
        self.stats = stats
        self.wake = wake
        self.stop = stop
        self.backoff = Backoff(1.0, retry_max_s)
        self.window = sink.window or sink.batch_size
        self.filtered = sink.accepts != ALL_KINDS
        self.accepts = frozenset(int(k) for k in sink.accepts)  # rows carry plain ints
        self._state = ""
        self._thread: threading.Thread | None = None
        self._cursor = self._saved = 0  # the session's cursor, and the last one saved

    # -- thread ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.sink.name

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=f"{self.name}-sink", daemon=True)
        self.stats.running = True
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ensure_running(self) -> bool:
        """Start the thread again if it ended while the bridge runs; True if it did."""
        if self.stop.is_set() or self.alive():
            return False
        log.error("%s sink thread had ended; starting it again", self.sink.title)
        self.start()
        return True

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # -- logging ----------------------------------------------------------------------------

    def _announce(self, state: str, level: int, msg: str, *args: object) -> None:
        if state != self._state:
            self._state = state
            log.log(level, msg, *args)
        else:
            log.debug(msg, *args)

    def _trouble(self, err: BaseException, state: str, what: str) -> float:
        """Record a failure and how long to wait before trying again."""
        stats = self.stats
        stats.connected = False
        stats.retries += 1
        stats.last_error = what
        delay = getattr(err, "delay", None)
        wait = delay if delay is not None else self.backoff.next()
        self._announce(state, logging.WARNING, "%s %s; retrying in %.1f s", self.sink.title,
                       what, wait)  # fmt: skip
        return wait

    # -- the loop ---------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self.outbox.bookkeeping()
            while not self.stop.is_set():
                wait = 0.0
                try:
                    self.sink.connect()
                    self.stats.connected = True
                    self.stats.last_error = ""
                    self._announce(
                        "up", logging.INFO, "%s connected to %s", self.sink.title, self.sink.target
                    )
                    self._deliver()
                except Disconnected as err:
                    wait = self._trouble(err, err.state, str(err))
                    self._close(final=False)
                except RetryLater as err:  # from connect()
                    wait = self._trouble(err, err.state, str(err))
                except OutboxError as err:
                    self.stats.outbox_errors += 1
                    wait = self._trouble(err, "outbox", f"cannot read the outbox ({err})")
                except Exception as err:  # a bug or the unforeseen: never end the sink
                    self.stats.connected = False
                    self.stats.retries += 1
                    self.stats.last_error = f"unexpected error: {err!r}"
                    wait = self.backoff.next()
                    if self._state != "crash":
                        self._state = "crash"
                        log.exception("%s sink failed; restarting it in %.1f s",
                                      self.sink.title, wait)  # fmt: skip
                    self._close(final=False)
                if wait:
                    self.stop.wait(wait)
            self._close(final=True)
        finally:
            self.stats.connected = False
            self.stats.running = False
            self.outbox.close()

    def _close(self, final: bool) -> None:
        try:
            self.sink.close(final)
        except Exception as err:  # closing a broken connection may fail; it is closed
            log.debug("%s close: %s", self.sink.title, err)

    def _deliver(self) -> None:
        """Write rows after the cursor until ``stop`` (then flush) or a Disconnected."""
        self._cursor = self._saved = self.outbox.cursor(self.sink.name)
        try:
            self._loop()
        finally:  # what was done stays done, whatever ended the session
            if self._cursor != self._saved:
                self._save(self._cursor)

    def _loop(self) -> None:
        sink, outbox, stats, wake = self.sink, self.outbox, self.stats, self.wake
        accepts, filtered = self.accepts, self.filtered
        cursor = self._cursor
        sent = cursor  # the last row id read from the outbox (handed over or passed by)
        inflight = 0  # rows handed over, not yet done
        saved = cursor
        last_save = time.monotonic()
        next_look = 0.0
        stop_at: float | None = None
        woken = True
        maybe_more = True  # a full last read: rows may wait that no wake announced
        pause_until = 0.0  # after a RetryLater of a write
        while True:
            if stop_at is None and self.stop.is_set():
                stop_at = time.monotonic() + SHUTDOWN_FLUSH_S
            if woken:
                # Clear first, then look: a commit after this point wakes the next wait.
                wake.clear()
            now = time.monotonic()
            timer = now >= next_look
            rows: list[Row] = []
            fetched = 0
            if (woken or maybe_more or timer) and now >= pause_until:
                next_look = now + IDLE_S
                limit = min(self.window - inflight, sink.batch_size)
                if limit > 0:
                    got = outbox.fetch(sent, limit)
                    # A partial batch: give it the window to fill (many lines arriving
                    # together become one request), then write whatever there is.
                    partial = got and sink.linger_s and len(got) < limit and stop_at is None
                    if partial and not self.stop.wait(sink.linger_s):
                        got += outbox.fetch(got[-1].id, limit - len(got))
                    fetched = len(got)
                    maybe_more = fetched == limit
                    if got:
                        sent = got[-1].id
                        rows = [r for r in got if r.kind in accepts] if filtered else got
                else:
                    maybe_more = True
            try:
                done = sink.write(rows)
            except Disconnected:
                raise
            except RetryLater as err:
                wait = self._trouble(err, err.state, str(err))
                sent, inflight = cursor, 0  # nothing after the cursor is done: again
                if stop_at is not None:
                    break  # no retries while shutting down
                pause_until = time.monotonic() + wait
                woken = sink.wait(wait, wake)
                continue
            if rows:
                inflight += len(rows)
                if not stats.connected:
                    stats.connected = True
                    stats.last_error = ""
                    self.backoff.reset()
                    self._announce("up", logging.INFO, "%s delivering again", sink.title)
            if done.delivered or done.rejected:
                inflight -= done.delivered + done.rejected
                stats.delivered += done.delivered
                stats.rejected += done.rejected
            # Everything handed over is done: the cursor may pass the rows read over, too.
            through = sent if inflight <= 0 else done.through
            if through > cursor:
                cursor = self._cursor = through
                stats.progress_at = now
            if cursor != saved and (now - last_save > CURSOR_SAVE_S or stop_at is not None):
                # A cursor saved late only means delivering again after a crash
                # (at-least-once), so it is written at most every CURSOR_SAVE_S.
                self._save(cursor)
                saved, last_save = cursor, now
                self._saved = saved
            if stop_at is not None and ((inflight <= 0 and not fetched) or now > stop_at):
                break
            if fetched:
                timeout = 0.0
            elif pause_until > now:
                timeout = min(IDLE_S, pause_until - now)
            else:
                timeout = IDLE_S
            woken = sink.wait(timeout, wake)

    def _save(self, cursor: int) -> None:
        try:
            self.outbox.set_cursor(self.sink.name, cursor)
            self._saved = cursor
        except OutboxError as err:  # kept in memory; written with the next save
            self.stats.outbox_errors += 1
            self._announce("cursor", logging.WARNING, "%s: cannot save the cursor (%s)",
                           self.sink.title, err)  # fmt: skip
