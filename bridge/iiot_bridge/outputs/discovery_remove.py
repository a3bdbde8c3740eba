"""``--ha-discovery-remove``: clear every discovery config the bridge ever published.

An empty retained payload on a config topic makes Home Assistant delete the entity. The
entities come from the outbox's record of what was announced; the run is one-shot.
"""

from __future__ import annotations

import logging
import threading

from ..config import Settings
from . import ha
from .mqtt import CONNECT_TIMEOUT_S, MqttConfig, new_client

log = logging.getLogger("iiot_bridge.ha")


def remove_discovery(settings: Settings, entities: list[tuple[str, str]]) -> int:
    from ..app import mqtt_config

    cfg: MqttConfig = mqtt_config(settings)
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
    try:
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive)
    except OSError as err:
        log.error("cannot reach the MQTT broker %s:%d: %s", cfg.host, cfg.port, err)
        return 1
    client.loop_start()
    try:
        if not connected.wait(CONNECT_TIMEOUT_S) or getattr(result[0], "is_failure", True):
            log.error("MQTT broker %s:%d refused or did not answer: %s", cfg.host, cfg.port, result)
            return 1
        infos = [
            client.publish(ha.config_topic(cfg.ha_prefix, cfg.prefix, node, metric), b"", 1, True)
            for node, metric in entities
        ]
        for info in infos:
            info.wait_for_publish(CONNECT_TIMEOUT_S)
        log.info("removed %d Home Assistant discovery entries", len(infos))
        return 0
    finally:
        client.disconnect()
        client.loop_stop()
