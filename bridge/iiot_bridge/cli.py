"""``iiot-bridge``: the command line.

Exit codes: 0 after a clean stop (SIGINT/SIGTERM); 2 for a configuration error, reported as
one line on stderr before anything starts; 1 when ``--ha-discovery-remove`` cannot reach the
broker. Servers that are down at start are not errors: the bridge buffers and retries.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Sequence

from . import config, logs
from .identity import StateLock, StateLocked
from .outbox import Outbox, OutboxError

log = logging.getLogger("iiot_bridge")


def _fail(message: str) -> int:
    # One line, whatever the message contains: easy to read, easy to grep in a journal.
    print(f"iiot-bridge: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = config.load(argv)
    except config.ConfigError as err:
        return _fail(str(err))
    logs.setup(settings.log_level, settings.log_format)
    for name in config.unknown_env(os.environ):
        log.warning("ignoring unknown setting %s in the environment", name)
    from .outputs.mqtt_config import MqttSettings

    mqtt_settings = settings.of(MqttSettings)
    if mqtt_settings.ha_discovery_remove:
        from .outputs.discovery_remove import remove_discovery

        try:
            entities = Outbox(settings.outbox_path, []).entities()
        except OutboxError as err:
            return _fail(str(err))
        return remove_discovery(mqtt_settings, entities)
    from .app import Bridge

    # One bridge per state directory (issue 15): held until the process ends.
    assert settings.state_dir is not None
    lock = StateLock(settings.state_dir, settings.bridge_id)
    try:
        lock.acquire()
    except (StateLocked, OSError) as err:
        return _fail(str(err))
    legacy = config.legacy_outbox()
    if legacy is not None and legacy.parent != settings.state_dir:
        log.warning(
            "an outbox of an earlier bridge (one state directory for every bridge) is at %s;"
            " this bridge (id %s) uses %s: stop the bridge and move the outbox.sqlite3* files"
            " there to deliver what it holds",
            legacy,
            settings.bridge_id,
            settings.state_dir,
        )
    try:
        bridge = Bridge(settings)
    except OutboxError as err:
        return _fail(str(err))
    except OSError as err:  # e.g. the HTTP port is taken
        return _fail(f"cannot start: {err}")

    def on_signal(signum: int, frame: object) -> None:
        log.info("%s received, shutting down", signal.Signals(signum).name)
        bridge.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return bridge.run()
    finally:
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
