"""The running bridge: wires source, pipeline, outbox, sinks and housekeeping together.

Threads: the caller's thread runs the intake (serial -> pipeline -> commit -> ACK); each
sink runs under its own SinkRunner thread; housekeeping prunes and bounds the outbox,
writes the backlog gauge, logs the counters and starts a sink thread again should one
ever end; an optional HTTP thread serves /metrics and /healthz. ``stop()`` (from a signal
handler) ends the intake first, then lets the sinks flush for a few seconds.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from . import identity
from .availability import Availability
from .config import Settings, version
from .dedup import Claims, LocalClaims, RedisClaims
from .downlink import Downlink
from .inputs.ports import PortSet
from .inputs.serial_source import SerialSource
from .inputs.session import SerialSession
from .logs import RateLimited
from .model import BACKLOG, BRIDGE_NODE, GATEWAY_DUPLICATES, GATEWAY_FRAMES, SELF, Kind, Reading
from .outbox import Outbox, OutboxError
from .outputs import Context
from .outputs.base import SinkRunner
from .outputs.wake import Wake
from .pending import Pending
from .pipeline import Intake
from .processors.copies import Decider
from .stats import Stats

log = logging.getLogger("iiot_bridge")
T = TypeVar("T")

HOUSEKEEPING_S = 1.0
BACKLOG_EVERY_S = 5.0
CHECKPOINT_EVERY_S = 30.0
SINK_JOIN_S = 10.0
OUTBOX_RETRY_S = 1.0
SETTLE_EVERY_S = 1.0  # frames pending for the shared claims: tried this often
CLAIMS_PRUNE_S = 300.0


class Bridge:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_event = threading.Event()  # ends the intake
        self.sinks_stop = threading.Event()  # ends the sinks after the intake
        self.stats = Stats()
        enabled = settings.enabled_sinks()
        self.outbox = Outbox(
            settings.outbox_path,
            [plugin.name for plugin, _ in enabled],
            max_bytes=int(settings.outbox_max_mb * 1024 * 1024),
            max_age_s=settings.outbox_max_age,
            synchronous=settings.outbox_sync.upper(),
        )
        self.availability = Availability(settings.report_interval, settings.node_timeout_intervals)
        self.availability.load(self.outbox.nodes_seen())
        self.downlink = Downlink(self.outbox)
        # Several gateways (issue 15): one port without shared claims keeps the plain path;
        # several ports (or auto) decide copies in the outbox, --dedup-url in Redis.
        serials = list(settings.serial)
        single = (
            identity.gateway_label(serials[0])
            if serials != ["auto"] and len(serials) == 1
            else None
        )
        self.claims: Claims | None = None
        pending = None
        if settings.dedup_url:
            self.claims = RedisClaims(
                settings.dedup_url,
                settings.dedup_ttl,
                settings.dedup_namespace,
                settings.dedup_password,
                client_name=f"iiot-bridge-{settings.bridge_id}",
                retry_max_s=settings.retry_max,
            )
            pending = Pending(self.outbox)
            self.stats.pending_frames = pending.count
        elif single is None:
            self.claims = LocalClaims(self.outbox, settings.dedup_ttl)
        decider = None if self.claims is None else Decider(self.claims, settings.bridge_id, pending)
        self.intake = Intake(
            self.outbox,
            self.stats,
            settings.mic_keys,
            self.availability,
            self._committed,
            self.downlink.confirm,
            decider=decider,
            pending=pending,
            single=single,
        )
        self._pending_wake = False
        self.source: SerialSource | None = None
        self.ports: PortSet | None = None
        if single is not None:
            session = SerialSession(self.stats, self.intake.new_run)
            self.source = SerialSource(
                serials[0], settings.baud, self.stats, self.stop_event, session
            )
        else:
            intake = self.intake
            self.ports = PortSet(
                serials,
                settings.baud,
                self.stats,
                self.stop_event,
                lambda label: SerialSession(self.stats, intake.inlet(label).new_run),
            )
        context = Context(
            self.outbox,
            self.stats,
            self.availability,
            settings.retry_max,
            self.downlink,
            settings.bridge_id,
        )
        self.runners: list[SinkRunner] = []
        for plugin, group in enabled:
            sink = plugin.build(group, context)
            stats = self.stats.sink(sink.name)
            self.runners.append(
                SinkRunner(sink, self.outbox, stats, Wake(), self.sinks_stop, settings.retry_max)
            )
        self.http = None
        if settings.http_port:
            from .http import HttpEndpoint

            self.http = HttpEndpoint(settings.http_host, settings.http_port, self)

    def _committed(self) -> None:
        self._pending_wake = True

    def _wake(self) -> None:
        for runner in self.runners:
            runner.wake.set()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> int:
        s = self.settings
        log.info(
            "iiot-bridge %s starting: id=%s serial=%s dedup=%s sinks=%s outbox=%s",
            version(),
            s.bridge_id,
            ",".join(s.serial),
            self.claims.name if self.claims is not None else "off",
            ", ".join(f"{r.sink.title} {r.sink.target}" for r in self.runners),
            s.outbox_path,
        )
        # Everything imported and built so far lives as long as the process: move it out of
        # the collector's reach, so the collections that paho's per-message garbage sets off
        # do not traverse influxdb-client's thousands of module objects each time.
        gc.freeze()
        for runner in self.runners:
            runner.start()
        housekeeping = threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True)
        housekeeping.start()
        if self.http is not None:
            self.http.start()
        try:
            self._intake_loop()
        finally:
            if self.source is not None:
                self.source.close()
            if self.ports is not None:
                self.ports.close()
            if self.claims is not None:
                self.claims.close()
            self.sinks_stop.set()
            self._wake()
            deadline = time.monotonic() + SINK_JOIN_S
            for runner in self.runners:
                runner.join(max(0.1, deadline - time.monotonic()))
            housekeeping.join(2.0)
            if self.http is not None:
                self.http.stop()
            self.outbox.close()
            log.info("iiot-bridge stopped: %s", self.stats.summary())
        return 0

    def _intake_loop(self) -> None:
        stats = self.stats
        downlink = self.downlink
        source, ports = self.source, self.ports
        next_settle = 0.0
        while not self.stop_event.is_set():
            if downlink.pending or downlink.requests:
                now = time.monotonic()
                if source is not None:
                    for text in downlink.due(now, source.session.generation):
                        source.write_line(text)
                elif ports is not None:
                    for text in downlink.due(now, ports.generation):
                        ports.write_line(text)
            if stats.pending_frames and time.monotonic() >= next_settle:
                next_settle = time.monotonic() + SETTLE_EVERY_S
                self._guarded(self.intake.settle_pending)
            if source is not None:
                lines = source.read_batch()
                if not lines:
                    continue
                ack = self._guarded(self.intake.process, lines)
                if ack is not None:
                    source.write_ack(ack)
            elif ports is not None:
                batches = ports.read()
                if not batches:
                    continue
                intake = self.intake
                inlets = [(intake.inlet(port.label), lines) for port, lines in batches]
                acks = self._guarded(intake.process_ports, inlets)
                if acks is not None:
                    for (port, _), ack in zip(batches, acks, strict=True):
                        if ack is not None:
                            port.source.write_ack(ack)
            # The sinks are woken after the ACK is written, not at the commit: woken earlier,
            # they would contend with this thread for the GIL while it writes the ACK.
            if self._pending_wake:
                self._pending_wake = False
                self._wake()

    def _guarded(self, step: Callable[..., T], *args: Any) -> T | None:
        """``step(*args)`` (an intake commit); None when the outbox cannot be written."""
        stats = self.stats
        try:
            result = step(*args)
        except OutboxError as err:
            # Not acknowledged, so node2 keeps the lines (and node1 its readings) and
            # sends them again: nothing accepted is lost while the disk is full.
            stats.outbox_errors += 1
            if not stats.outbox_error:
                log.error(
                    "cannot store readings: %s; not acknowledging node2 (it keeps them) "
                    "until the outbox can be written again",
                    err,
                )
            stats.outbox_error = str(err)
            self.stop_event.wait(OUTBOX_RETRY_S)
            return None
        if stats.outbox_error:
            stats.outbox_error = ""
            log.warning("outbox writable again: storing and acknowledging readings")
        return result

    # -- housekeeping thread ---------------------------------------------------------------

    def _housekeeping(self) -> None:
        now = time.monotonic()
        next_backlog = now + BACKLOG_EVERY_S
        next_checkpoint = now + CHECKPOINT_EVERY_S
        next_stats = now + self.settings.stats_interval
        next_prune = now + CLAIMS_PRUNE_S
        noisy = RateLimited(log, 30.0)
        try:
            self.outbox.bookkeeping()
            while not self.sinks_stop.wait(HOUSEKEEPING_S):
                now = time.monotonic()
                for runner in self.runners:
                    runner.ensure_running()
                try:
                    self._bound_outbox()
                    if now >= next_backlog:
                        next_backlog = now + BACKLOG_EVERY_S
                        self._backlog()
                    if now >= next_checkpoint:
                        next_checkpoint = now + CHECKPOINT_EVERY_S
                        self.outbox.checkpoint()
                    if self.claims is not None and now >= next_prune:
                        next_prune = now + CLAIMS_PRUNE_S
                        self.claims.prune()
                except OutboxError as err:
                    noisy.warning("outbox", "outbox housekeeping failed: %s", err)
                if now >= next_stats:
                    next_stats = now + self.settings.stats_interval
                    log.info("stats: %s", self.stats.summary())
        finally:
            self.outbox.close()

    def _bound_outbox(self) -> None:
        self.outbox.prune()
        for dropped in self.outbox.enforce_limits():
            self.stats.drops += dropped.undelivered
            log.warning(
                "outbox over its %s limit: dropped the %d oldest undelivered readings "
                "(--outbox-max-mb %.0f, --outbox-max-age %.0f s)",
                dropped.reason,
                dropped.undelivered,
                self.settings.outbox_max_mb,
                self.settings.outbox_max_age,
            )

    def _backlog(self) -> None:
        now_ns = time.time_ns()
        points = []
        for runner in self.runners:
            queued = self.outbox.backlog(runner.name, runner.sink.accepts)
            stats = runner.stats
            stats.queued = queued
            if not queued:
                stats.progress_at = time.monotonic()  # nothing waiting: nothing stalled
            points.append(Reading(BRIDGE_NODE, BACKLOG, float(queued), now_ns, SELF,
                                  runner.name))  # fmt: skip
        for label, gw in list(self.stats.gateways.items()):
            points.append(
                Reading(BRIDGE_NODE, GATEWAY_FRAMES, float(gw.frames), now_ns, SELF, label)
            )
            points.append(
                Reading(BRIDGE_NODE, GATEWAY_DUPLICATES, float(gw.duplicates), now_ns, SELF, label)
            )
        takers = [r for r in self.runners if Kind.SELF in r.sink.accepts]
        if takers and points:
            self.outbox.commit(points, {})
            for runner in takers:
                runner.wake.set()
