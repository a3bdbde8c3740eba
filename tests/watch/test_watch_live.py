"""iiot-watch against a real Mosquitto: plain-line output when stdout is not a terminal."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from iiot_sim.localservers import Mosquitto, wait_until


def test_plain_output_shows_live_and_retained_messages(tmp_path: Path) -> None:
    with Mosquitto(tmp_path / "broker") as broker:
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-pub")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        # Retained before the viewer starts: it must still show the latest value at once.
        pub.publish("iiot/node1/temperature", "27.60", qos=1, retain=True).wait_for_publish()
        out_path = tmp_path / "watch.out"
        with open(out_path, "w") as out:
            watcher = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "iiot-watch"),
                    "--mqtt-url",
                    broker.url,
                    "--duration",
                    "20",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until(lambda: "temperature 27.60" in out_path.read_text(), 10, "retained")
                deadline = time.monotonic() + 10
                while "humidity 48.80" not in out_path.read_text():
                    pub.publish("iiot/node2/humidity", "48.80", qos=1).wait_for_publish()
                    pub.publish("iiot/bridge/backlog_mqtt", "0", qos=1).wait_for_publish()
                    assert time.monotonic() < deadline, out_path.read_text()
                    time.sleep(0.2)  # give the viewer time to print before publishing again
            finally:
                watcher.terminate()  # SIGTERM: a clean stop as well
                status = watcher.wait(timeout=10)
        pub.loop_stop()
        assert status == 0
        text = out_path.read_text()
        assert "node1 temperature 27.60" in text
        assert "node2 humidity 48.80" in text
        assert "bridge backlog_mqtt 0" in text


def test_a_closed_pipe_ends_the_plain_output_quietly(tmp_path: Path) -> None:
    """``iiot-watch | head -1``: the reader goes away; the view stops without a traceback."""
    with Mosquitto(tmp_path / "broker") as broker:
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-pub")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        watcher = subprocess.Popen(
            [str(Path(sys.executable).parent / "iiot-watch"), "--mqtt-url", broker.url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert watcher.stdout is not None and watcher.stderr is not None
        try:
            pub.publish("iiot/node1/temperature", "27.60", qos=1, retain=True).wait_for_publish()
            assert b"temperature 27.60" in watcher.stdout.readline()
            watcher.stdout.close()  # like head(1) after its line
            deadline = time.monotonic() + 20
            while watcher.poll() is None:
                pub.publish("iiot/node1/humidity", "48.80", qos=1).wait_for_publish()
                assert time.monotonic() < deadline, "the view kept running"
                time.sleep(0.1)
        finally:
            if watcher.poll() is None:
                watcher.kill()
            pub.loop_stop()
        assert watcher.wait() == 0
        assert b"Traceback" not in watcher.stderr.read()
