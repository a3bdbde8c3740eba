"""The running bridge: wires source, pipeline, outbox, sinks and housekeeping together.

Threads: the caller's thread runs the intake (serial -> pipeline -> commit -> ACK); each
sink runs its own; housekeeping prunes and bounds the outbox, writes the backlog gauge and
logs the counters; an optional HTTP thread serves /metrics and /healthz. ``stop()`` (from a
signal handler) ends the intake first, then lets the sinks flush for a few seconds.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

from .availability import Availability
from .config import Settings
from .inputs.serial_source import SerialSource
from .logs import RateLimited
from .model import BACKLOG, BRIDGE_NODE, ROUTE_SELF, TO_INFLUX, TO_MQTT, Reading
from .outbox import Outbox, OutboxError
from .outputs import influx as influx_out
from .outputs import mqtt as mqtt_out
from .outputs.wake import Wake
from .pipeline import Intake
from .stats import Stats

log = logging.getLogger("iiot_bridge")

HOUSEKEEPING_S = 1.0
BACKLOG_EVERY_S = 5.0
CHECKPOINT_EVERY_S = 30.0
SINK_JOIN_S = 10.0


def mqtt_config(s: Settings) -> mqtt_out.MqttConfig:
    return mqtt_out.MqttConfig(
        host=s.mqtt.host,
        port=s.mqtt.port,
        tls=s.mqtt.tls,
        username=s.mqtt.username,
        password=s.mqtt_password,
        ca_file=s.mqtt_ca_file,
        cert_file=s.mqtt_cert_file,
        key_file=s.mqtt_key_file,
        client_id=s.mqtt_client_id,
        keepalive=s.mqtt_keepalive,
        prefix=s.topic_prefix,
        state_topic=s.state_topic,
        ha_discovery=s.ha_discovery,
        ha_prefix=s.ha_prefix,
        retry_max_s=s.retry_max,
    )


class Bridge:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_event = threading.Event()  # ends the intake
        self.sinks_stop = threading.Event()  # ends the sinks after the intake
        self.stats = Stats()
        names = ([] if settings.no_mqtt else ["mqtt"]) + ([] if settings.no_influx else ["influx"])
        self.outbox = Outbox(
            settings.outbox_path,
            names,
            max_bytes=int(settings.outbox_max_mb * 1024 * 1024),
            max_age_s=settings.outbox_max_age,
            synchronous=settings.outbox_sync.upper(),
        )
        self.availability = Availability(settings.report_interval, settings.node_timeout_intervals)
        self.availability.load(self.outbox.nodes_seen())
        self.wakes = {name: Wake() for name in names}
        self.intake = Intake(
            self.outbox, self.stats, settings.keys, self.availability, on_commit=self._committed
        )
        self._pending_wake = False
        self.source = SerialSource(settings.serial, settings.baud, self.stats, self.stop_event)
        self.threads: list[threading.Thread] = []
        if "mqtt" in names:
            self.threads.append(
                mqtt_out.MqttSink(
                    mqtt_config(settings),
                    self.outbox,
                    self.stats,
                    self.availability,
                    self.wakes["mqtt"],
                    self.sinks_stop,
                )
            )
        if "influx" in names:
            if not settings.influx_token:
                log.warning("no InfluxDB token set (IIOT_INFLUX_TOKEN or --influx-token-file)")
            cfg = influx_out.InfluxConfig(
                url=settings.influx_url,
                org=settings.influx_org,
                bucket=settings.influx_bucket,
                token=settings.influx_token,
                batch_size=settings.influx_batch_size,
                flush_ms=settings.influx_flush_ms,
                timeout_s=settings.influx_timeout,
                retry_max_s=settings.retry_max,
            )
            self.threads.append(
                influx_out.InfluxSink(
                    cfg, self.outbox, self.stats, self.wakes["influx"], self.sinks_stop
                )
            )
        for name in names:
            self.stats.sink(name)
        self.http = None
        if settings.http_port:
            from .http import HttpEndpoint

            self.http = HttpEndpoint(settings.http_host, settings.http_port, self)

    def _committed(self) -> None:
        self._pending_wake = True

    def _wake(self) -> None:
        for event in self.wakes.values():
            event.set()

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> int:
        s = self.settings
        log.info(
            "iiot-bridge starting: serial=%s mqtt=%s influx=%s outbox=%s",
            s.serial,
            "off" if s.no_mqtt else f"{s.mqtt.host}:{s.mqtt.port}",
            "off" if s.no_influx else s.influx_url,
            s.outbox_path,
        )
        # Everything imported and built so far lives as long as the process: move it out of
        # the collector's reach, so the collections that paho's per-message garbage sets off
        # do not traverse influxdb-client's thousands of module objects each time.
        gc.freeze()
        for thread in self.threads:
            thread.start()
        housekeeping = threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True)
        housekeeping.start()
        if self.http is not None:
            self.http.start()
        try:
            self._intake_loop()
        finally:
            self.source.close()
            self.sinks_stop.set()
            self._wake()
            deadline = time.monotonic() + SINK_JOIN_S
            for thread in self.threads:
                thread.join(max(0.1, deadline - time.monotonic()))
            housekeeping.join(2.0)
            if self.http is not None:
                self.http.stop()
            self.outbox.close()
            log.info("iiot-bridge stopped: %s", self.stats.summary())
        return 0

    def _intake_loop(self) -> None:
        noisy = RateLimited(log, 10.0)
        while not self.stop_event.is_set():
            lines = self.source.read_batch()
            if not lines:
                continue
            try:
                ack = self.intake.process(lines)
            except OutboxError as err:
                # Not acknowledged, so node2 keeps the lines and sends them again.
                noisy.warning("outbox", "cannot store readings, not acknowledging: %s", err)
                self.stop_event.wait(1.0)
                continue
            if ack is not None:
                self.source.write_ack(ack)
            # The sinks are woken after the ACK is written, not at the commit: woken earlier,
            # they would contend with this thread for the GIL while it writes the ACK.
            if self._pending_wake:
                self._pending_wake = False
                self._wake()

    # -- housekeeping thread ---------------------------------------------------------------

    def _housekeeping(self) -> None:
        next_backlog = time.monotonic() + BACKLOG_EVERY_S
        next_checkpoint = time.monotonic() + CHECKPOINT_EVERY_S
        next_stats = time.monotonic() + self.settings.stats_interval
        try:
            self.outbox.bookkeeping()
            while not self.sinks_stop.wait(HOUSEKEEPING_S):
                now = time.monotonic()
                try:
                    self._bound_outbox()
                    if now >= next_backlog:
                        next_backlog = now + BACKLOG_EVERY_S
                        self._backlog()
                    if now >= next_checkpoint:
                        next_checkpoint = now + CHECKPOINT_EVERY_S
                        self.outbox.checkpoint()
                except OutboxError as err:
                    log.warning("outbox housekeeping failed: %s", err)
                except Exception as err:  # sqlite3.Error and friends: retry next round
                    log.warning("outbox housekeeping failed: %s", err)
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
        for name, bit in (("mqtt", TO_MQTT), ("influx", TO_INFLUX)):
            if name not in self.wakes:
                continue
            queued = self.outbox.backlog(name, bit)
            self.stats.sink(name).queued = queued
            points.append(Reading(BRIDGE_NODE, BACKLOG, float(queued), now_ns, ROUTE_SELF, name))
        if "influx" in self.wakes and points:
            self.outbox.commit(points, {})
            self.wakes["influx"].set()
