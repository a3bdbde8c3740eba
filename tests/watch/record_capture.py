"""Record what a broker carries under a prefix, for the watch tests' replayed traffic.

    python tests/watch/record_capture.py --mqtt-url mqtt://demo@127.0.0.1:PORT \
        --seconds 50 --out tests/watch/data/demo-capture.jsonl \
        --request 8:node3/set/interval_s=3 --request 12:node4/set/interval_s=0 \
        --request 16:node9/set/interval_s=30

Run it as soon as ``python -m iiot_sim.demo --nodes 3 --loss 0.2 --seconds 60`` has printed
its broker, user and password (give the password in ``IIOT_MQTT_PASSWORD``). One JSON object
per message: ``t`` (seconds since the recording started), ``topic``, ``payload`` (text) and
``retain``. The tests replay it against their own broker (``watch_kit.Replayer``), so they
get a real deployment's traffic without running the simulator. Record it again when the
topics change (new metrics, new bridge counters).

``--request T:TOPIC=PAYLOAD`` publishes PAYLOAD on ``<prefix>/TOPIC`` T seconds into the
recording, as a user would: the requests above give the capture a setting sent down and
confirmed (node3), one refused (node4) and one that stays pending (node9 does not exist).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mqtt-url", required=True)
    parser.add_argument("--prefix", default="iiot")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--request",
        action="append",
        default=[],
        type=_request,
        help="T:TOPIC=PAYLOAD, published on <prefix>/TOPIC T seconds in (repeatable)",
    )
    args = parser.parse_args()
    url = urlsplit(args.mqtt_url)
    records: list[dict[str, object]] = []
    lock = threading.Lock()
    start = time.monotonic()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            records.append(
                {
                    "t": round(time.monotonic() - start, 3),
                    "topic": msg.topic,
                    "payload": msg.payload.decode("utf-8", "replace"),
                    "retain": bool(msg.retain),
                }
            )

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"iiot-record-{os.getpid()}")
    if url.username:
        client.username_pw_set(url.username, os.environ.get("IIOT_MQTT_PASSWORD"))
    client.on_connect = lambda c, *_: c.subscribe(f"{args.prefix}/#", qos=1)
    client.on_message = on_message
    client.connect(url.hostname or "127.0.0.1", url.port or 1883)
    client.loop_start()
    for at, topic, payload in sorted(args.request):
        time.sleep(max(0.0, start + at - time.monotonic()))
        client.publish(f"{args.prefix}/{topic}", payload, qos=1)
    time.sleep(max(0.0, start + args.seconds - time.monotonic()))
    client.loop_stop()
    client.disconnect()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{len(records)} messages -> {args.out}", file=sys.stderr)
    return 0 if records else 1


def _request(text: str) -> tuple[float, str, str]:
    at, _, rest = text.partition(":")
    topic, sep, payload = rest.partition("=")
    if not sep or not topic:
        raise argparse.ArgumentTypeError(f"{text!r} is not T:TOPIC=PAYLOAD")
    try:
        return float(at), topic, payload
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {at!r} is not a number of seconds") from None


if __name__ == "__main__":
    sys.exit(main())
