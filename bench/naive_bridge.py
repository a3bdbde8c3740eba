"""The naive bridge: the earlier system's design, in Python, as the baseline to beat.

Read a line, decode it, then for every reading one awaited MQTT publish at QoS 1
(``publish(...).wait_for_publish()``) and one synchronous HTTP write of a single point
(influxdb-client's SYNCHRONOUS write API). No outbox, no batching, no acknowledgement to
the gateway, server-assigned timestamps. It exists only to be measured:

    python -m bench.naive_bridge --serial /dev/pts/5 --mqtt-url mqtt://127.0.0.1:1883 \
        --influx-url http://127.0.0.1:8428 --influx-org o --influx-bucket b --influx-token t
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import urllib.parse
from typing import Any

import paho.mqtt.client as mqtt
import serial
from influxdb_client import InfluxDBClient, Point
from influxdb_client.client.write_api import SYNCHRONOUS

# Importing this module runs bench/__init__ first, which puts shared/ on the path.
import iiot_codec

log = logging.getLogger("naive-bridge")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.naive_bridge", description=__doc__)
    ap.add_argument("--serial", required=True)
    ap.add_argument("--mqtt-url", required=True)
    ap.add_argument("--influx-url", required=True)
    ap.add_argument("--influx-org", required=True)
    ap.add_argument("--influx-bucket", required=True)
    ap.add_argument("--influx-token", required=True)
    ap.add_argument("--topic-prefix", default="iiot")
    return ap.parse_args(argv)


def _readings(line: bytes) -> tuple[str, dict[str, float]] | None:
    try:
        parsed = iiot_codec.decode_line(line)
        if parsed is None:
            return None
        frame = iiot_codec.decode(parsed.frame)
    except iiot_codec.CodecError as exc:
        log.warning("bad line: %s", exc)
        return None
    readings = dict(frame.readings)
    if parsed.rssi is not None:
        readings["rssi"] = parsed.rssi
    if parsed.snr is not None:
        readings["snr"] = parsed.snr
    return f"node{frame.src}", readings


def run(args: argparse.Namespace) -> None:
    url = urllib.parse.urlsplit(args.mqtt_url)
    client: Any = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="naive-bridge")
    client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    client.loop_start()
    influx = InfluxDBClient(url=args.influx_url, token=args.influx_token, org=args.influx_org)
    writer = influx.write_api(write_options=SYNCHRONOUS)
    port = serial.Serial(args.serial, 115200, timeout=1)
    try:
        while True:
            line = port.readline()
            if not line:
                continue
            decoded = _readings(line)
            if decoded is None:
                continue
            node, readings = decoded
            for name, value in readings.items():
                topic = f"{args.topic_prefix}/{node}/{name}"
                text = iiot_codec.format_value(name, value)
                client.publish(topic, text, qos=1, retain=True).wait_for_publish()
            unit = iiot_codec.metric
            for name, value in readings.items():
                point = Point(name).tag("node", node).tag("unit", unit(name).unit)
                writer.write(bucket=args.influx_bucket, record=point.field("value", float(value)))
    finally:
        port.close()
        client.loop_stop()
        influx.close()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt):
        run(_parse(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
