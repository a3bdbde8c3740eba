"""``--ha-discovery-remove``: clear every discovery config the bridge ever published.

An empty retained payload on a config topic makes Home Assistant delete the entity. The
entities come from the outbox's record of what was announced; the run is one-shot.
"""

from __future__ import annotations

import logging
import threading

from . import ha
from .mqtt import CONNECT_TIMEOUT_S
from .mqtt_config import MqttSettings, new_client

log = logging.getLogger("iiot_bridge.ha")


def remove_discovery(cfg: MqttSettings, entities: list[tuple[str, str]]) -> int:
    client = new_client(cfg, suffix="-ha-remove")
    # This short-lived client must not leave "offline" behind as the bridge's will.
    client.will_clear()
    connected = threading.Event()
    result: list[object] = []

    def on_connect(
        client: object, userdata: object, flags: object, rc: object, props: object
    ) -> None:
        result.append(rc)
        connected.set()

    client.on_connect = on_connect
    host, port = cfg.target.host, cfg.target.port
    try:
        client.connect(host, port, keepalive=cfg.mqtt_keepalive)
    except OSError as err:
        log.error("cannot reach the MQTT broker %s:%d: %s", host, port, err)
        return 1
    client.loop_start()
    try:
        if not connected.wait(CONNECT_TIMEOUT_S) or getattr(result[0], "is_failure", True):
            log.error("MQTT broker %s:%d refused or did not answer: %s", host, port, result)
            return 1
        infos = [
            client.publish(topic, b"", 1, True)
            for node, metric in entities
            for topic in ha.config_topics(cfg.ha_prefix, cfg.topic_prefix, node, metric)
        ]
        for info in infos:
            info.wait_for_publish(CONNECT_TIMEOUT_S)
        log.info("removed %d Home Assistant discovery entries", len(infos))
        return 0
    finally:
        client.disconnect()
        client.loop_stop()
