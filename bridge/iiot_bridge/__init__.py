"""iiot_bridge: node2's serial port -> durable outbox -> MQTT and InfluxDB.

Telegraf-like layout: ``inputs`` (the serial source) -> ``processors`` (line parsing, MIC
check, duplicate filter, timestamps; run by ``pipeline``) -> ``outbox`` (SQLite, the one
durable buffer) -> ``outputs`` (MQTT and InfluxDB sinks, each with its own cursor, batching
and retry). ``app`` wires them together, ``cli`` is the ``iiot-bridge`` command.
"""

__version__ = "0.1.0"
