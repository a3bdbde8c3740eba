"""iiot_bridge: node2's serial port -> durable outbox -> MQTT, InfluxDB and webhooks.

Telegraf-like layout: ``inputs`` (the serial source) -> ``processors`` (line parsing, MIC
check, duplicate filter, timestamps; run by ``pipeline``) -> ``outbox`` (SQLite, the one
durable buffer) -> ``outputs`` (one module per sink, each run by ``outputs.base.SinkRunner``
with its own cursor, batching and retries). ``app`` wires them together, ``cli`` is the
``iiot-bridge`` command, ``config`` and ``settings`` declare every setting once,
``catalog`` is the host-side metric table.
"""
