"""Home Assistant MQTT discovery: a device per node, a sensor per metric, and a number per
setting the node accepts over the air (``interval_s``: set it from Home Assistant).

Config topics are ``<ha_prefix>/sensor/<prefix>_<node>_<metric>/config`` and
``<ha_prefix>/number/<prefix>_<node>_<metric>_set/config`` (retained). Each entity is
available only while both the bridge and its node are online. Names, units and
device classes come from the host-side metric table (``catalog``). Every (node, metric)
announced is recorded in the outbox, so ``--ha-discovery-remove`` can clear them all.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from .. import catalog, downlink
from ..outbox import Outbox, OutboxError, Row
from .mqtt_config import status_topic
from .mqtt_extras import Extra, Publish

log = logging.getLogger("iiot_bridge.ha")

COMPONENT = "sensor"


def unique_id(prefix: str, node: str, metric: str) -> str:
    return f"{prefix.replace('/', '_')}_{node}_{metric}"


def config_topic(ha_prefix: str, prefix: str, node: str, metric: str) -> str:
    return f"{ha_prefix}/{COMPONENT}/{unique_id(prefix, node, metric)}/config"


def number_topic(ha_prefix: str, prefix: str, node: str, metric: str) -> str:
    return f"{ha_prefix}/number/{unique_id(prefix, node, metric)}_set/config"


def config_topics(ha_prefix: str, prefix: str, node: str, metric: str) -> list[str]:
    """Every discovery topic of one (node, metric): its sensor, and its number if it is a
    setting."""
    topics = [config_topic(ha_prefix, prefix, node, metric)]
    if metric in downlink.TAGS:
        topics.append(number_topic(ha_prefix, prefix, node, metric))
    return topics


def _common(prefix: str, node: str, bridge_id: str) -> dict[str, Any]:
    return {
        "availability": [
            {"topic": status_topic(prefix, bridge_id)},
            {"topic": f"{prefix}/{node}/status"},
        ],
        "availability_mode": "all",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": {
            "identifiers": [f"{prefix.replace('/', '_')}_{node}"],
            "name": f"LoRa {node}",
            "model": "NUCLEO-F446RE LoRa telemetry node",
            "manufacturer": "iiot-lora-telemetry",
        },
        "origin": {"name": "iiot-bridge"},
    }


def config_payload(prefix: str, node: str, metric: str, bridge_id: str = "bridge") -> bytes:
    """The retained discovery config of one sensor, as JSON bytes."""
    info = catalog.info(metric)
    uid = unique_id(prefix, node, metric)
    payload: dict[str, Any] = {
        "name": info.display,
        "unique_id": uid,
        # Home Assistant 2025.10 replaced object_id with default_entity_id (domain.id).
        "default_entity_id": f"{COMPONENT}.{uid}",
        "state_topic": f"{prefix}/{node}/{metric}",
        "state_class": "measurement",
        "suggested_display_precision": info.decimals,
        **_common(prefix, node, bridge_id),
    }
    if info.ha_device_class is not None:
        payload["device_class"] = info.ha_device_class
    if info.ha_unit is not None:
        payload["unit_of_measurement"] = info.ha_unit
    if not info.environment:
        payload["entity_category"] = "diagnostic"
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()


def number_payload(prefix: str, node: str, metric: str, bridge_id: str = "bridge") -> bytes:
    """The retained discovery config of a setting's number entity: the state is what the
    node reports it runs at, a command sends the setting down (downlink.py)."""
    info = catalog.info(metric)
    uid = unique_id(prefix, node, metric) + "_set"
    low, high = downlink.limits(metric)
    payload: dict[str, Any] = {
        "name": f"{info.display} setting",
        "unique_id": uid,
        "default_entity_id": f"number.{uid}",
        "state_topic": f"{prefix}/{node}/{metric}",
        "command_topic": f"{prefix}/{node}/set/{metric}",
        "min": low,
        "max": high,
        "step": 1,
        "mode": "box",
        "entity_category": "config",
        **_common(prefix, node, bridge_id),
    }
    if info.ha_device_class is not None:
        payload["device_class"] = info.ha_device_class
    if info.ha_unit is not None:
        payload["unit_of_measurement"] = info.ha_unit
    return json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()


class Discovery(Extra):
    """Announces each (node, metric) the first time a row of it is published, all of them
    again on every new session and when Home Assistant says it is back online."""

    def __init__(
        self, ha_prefix: str, prefix: str, outbox: Outbox, bridge_id: str = "bridge"
    ) -> None:
        self.ha_prefix = ha_prefix
        self.prefix = prefix
        self.bridge_id = bridge_id
        self.outbox = outbox
        self.subscriptions = (f"{ha_prefix}/status",)
        self.announced: set[tuple[str, str]] = set()
        self.unrecorded: set[tuple[str, str]] = set()  # announced, not yet in the outbox

    def _announce(self, publish: Publish, node: str, metric: str) -> None:
        topic = config_topic(self.ha_prefix, self.prefix, node, metric)
        publish(topic, config_payload(self.prefix, node, metric, self.bridge_id), True)
        if metric in downlink.TAGS:
            topic = number_topic(self.ha_prefix, self.prefix, node, metric)
            publish(topic, number_payload(self.prefix, node, metric, self.bridge_id), True)
        self.announced.add((node, metric))
        self.unrecorded.add((node, metric))

    def _record(self) -> None:
        if not self.unrecorded:
            return
        try:
            self.outbox.add_entities(sorted(self.unrecorded))
        except OutboxError as err:  # kept; tried again with the next announcement
            log.warning("cannot record discovery entries in the outbox: %s", err)
            return
        self.unrecorded.clear()

    def _announce_all(self, publish: Publish) -> None:
        self.announced.clear()
        try:
            known = self.outbox.entities()
        except OutboxError as err:
            log.warning("cannot read the discovery entries from the outbox: %s", err)
            known = []
        for node, metric in sorted(set(known) | self.unrecorded):
            self._announce(publish, node, metric)

    def on_connect(self, publish: Publish) -> None:
        self._announce_all(publish)
        self._record()

    def on_rows(self, publish: Publish, rows: Sequence[Row]) -> None:
        announced = self.announced
        for row in rows:
            if (row.node, row.metric) not in announced:
                self._announce(publish, row.node, row.metric)
        self._record()

    def on_message(self, publish: Publish, topic: str, payload: bytes) -> None:
        if payload.strip() == b"online":  # Home Assistant restarted
            self._announce_all(publish)
            self._record()
