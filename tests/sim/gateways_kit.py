"""A site with several gateways for the issue 15 tests: the real firmware in the simulator
(two node2 gateways), real bridges as processes on their ptys, a real Mosquitto,
VictoriaMetrics and (for bridges on several hosts) redis-server.

Built on custody_kit (its Bridge process, records and match_readings). What the database
stored is compared with what the simulator says the nodes generated; what MQTT published is
recorded by an observer subscribed before any bridge starts.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from custody_kit import BRIDGE_BIN, Bridge, Point
from paho.mqtt.enums import CallbackAPIVersion

from iiot_codec.settings import SETTINGS
from iiot_sim.channel import ChannelConfig, LinkParams
from iiot_sim.config import SimConfig
from iiot_sim.localservers import Mosquitto, Redis, VictoriaMetrics, wait_until
from iiot_sim.runner import Simulation

# The two cells of the issue 15 tests: gateways 2 and 100, three node1 at 20 % loss. node1
# is out of gateway 100's range, node3 out of gateway 2's; node4 is heard by both.
#
# A reading every 3 s. At one every 1.5 s (offered load 3 x 61 ms / 1.5 s = 12 %), with 20 %
# loss on every link, retransmissions kept the channel 42 to 46 % busy, and a reading could
# wait 10 s and more for its ACK (lost to collisions, or sent to a backup gateway that cannot
# hear the node until failover_rounds more rounds have failed): longer than the tests
# allowed at the end of a run. At one every 3 s the channel is about 22 % busy.
INTERVAL_S = 3.0
DEAF = LinkParams(loss=1.0)
CELL_LINKS = {(1, 100): DEAF, (100, 1): DEAF, (3, 2): DEAF, (2, 3): DEAF}
# A node tries its backup gateway after failover_rounds failed rounds, one per reading.
FAILOVER_ROUNDS: int = next(row[1] for row in SETTINGS if row[0] == "failover_rounds")
FAILOVER_S = (FAILOVER_ROUNDS + 0.5) * INTERVAL_S
# Readings taken this close to the end may still be on their way: a failed round waits for
# the next reading to start another.
SETTLE_S = 2 * INTERVAL_S


def two_cells(keys: dict[int, str], **options: Any) -> SimConfig:
    """The two cells, with node keys ``keys`` and any other SimConfig ``options``."""
    return SimConfig(
        nodes=3,
        gateways=2,
        interval_ms=int(INTERVAL_S * 1000),
        keys=keys,
        channel=ChannelConfig(link=LinkParams(loss=0.2), links=CELL_LINKS),
        **options,
    )


class SiteBridge(Bridge):
    """A bridge on one or more of the site's gateways; its argv is given whole, so the test
    says exactly which flags it uses (no --state-dir: the default, from its id)."""

    def __init__(self, name: str, argv: Sequence[str], workdir: Path, env: dict[str, str]) -> None:
        self.argv = [BRIDGE_BIN, *argv]
        self.log_path = workdir / f"{name}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_")}
        self.env.update(env)
        self.proc: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """SIGKILL: no goodbye; the broker publishes the bridge's last will."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None


class Observer:
    """Every MQTT message under the prefix, in arrival order: (topic, payload, retained)."""

    def __init__(self, broker: Mosquitto, topics: str = "iiot/#") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="site-observer")
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(topics, qos=1)
        self.client.loop_start()

    def _message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self, topic: str) -> list[bytes]:
        with self.lock:
            return [p for t, p, _ in self.messages if t == topic]

    def last_number(self, topic: str) -> float:
        values = self.payloads(topic)
        return float(values[-1]) if values else 0.0

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def retained(broker: Mosquitto, topic: str, timeout: float = 5.0) -> bytes | None:
    """The retained message of ``topic`` as a new subscriber gets it (None: none)."""
    got: list[bytes] = []
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain:
            got.append(bytes(msg.payload))
        done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    done.wait(timeout)
    client.loop_stop()
    client.disconnect()
    return got[0] if got else None


class Site:
    """Simulation + servers + bridges, owned and closed together. ``redis`` when the bridges
    share their duplicate claims."""

    def __init__(self, sim: Simulation, workdir: Path, redis: bool = False) -> None:
        self.sim = sim
        self.workdir = workdir
        self.broker = Mosquitto(workdir / "mosquitto")
        # No deduplication in the database: a reading stored twice shows up twice.
        self.db = VictoriaMetrics(workdir / "victoria-metrics", dedup_ms=0)
        self.redis = Redis(workdir / "redis") if redis else None
        self.bridges: dict[str, SiteBridge] = {}
        self.observer: Observer | None = None
        self.wall0 = 0.0
        self.state_home = workdir / "state"  # XDG_STATE_HOME of every bridge: one host

    def __enter__(self) -> Site:
        self.broker.start()
        self.db.start()
        if self.redis is not None:
            self.redis.start()
        self.observer = Observer(self.broker)
        self.sim.start()
        self.wall0 = time.time() - self.sim.elapsed()
        for gw in self.sim.gateways:
            link = self.gateway_path(gw)
            link.unlink(missing_ok=True)
            link.symlink_to(self.sim.serial_path_of(gw))
        return self

    def __exit__(self, *exc: object) -> None:
        for bridge in self.bridges.values():
            bridge.stop()
        self.sim.stop()
        if self.observer is not None:
            self.observer.close()
        if self.redis is not None:
            self.redis.close()
        self.db.close()
        self.broker.close()

    def gateway_path(self, gw: int) -> Path:
        """A stable name for gateway ``gw``'s pty, which also names it to the bridge."""
        return self.workdir / f"gw{gw}"

    def common_args(self) -> list[str]:
        return [
            "--mqtt-url", self.broker.url,
            "--influx-url", self.db.url,
            "--influx-org", "test", "--influx-bucket", "telemetry",
            "--retry-max", "2s", "--stats-interval", "5s",
        ]  # fmt: skip

    def start_bridge(self, name: str, gateways: Sequence[int], *extra: str) -> SiteBridge:
        argv = [a for gw in gateways for a in ("--serial", str(self.gateway_path(gw)))]
        argv += self.common_args() + list(extra)
        if self.redis is not None:
            argv += ["--dedup-url", self.redis.url]
        env = {"XDG_STATE_HOME": str(self.state_home), "IIOT_INFLUX_TOKEN": "test-token"}
        bridge = self.bridges[name] = SiteBridge(name, argv, self.workdir, env)
        bridge.start()
        return bridge

    def points(self, metric: str, node: str) -> list[Point]:
        self.db.flush()
        rows = self.db.samples(f'{{__name__="{metric}_value",node="{node}"}}')
        return sorted(Point(ts, value) for _labels, ts, value in rows)

    def series(self, match: str) -> list[dict[str, str]]:
        """The label sets of the series ``match`` selects."""
        return [s["metric"] for s in self.db.export(match)]

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        wait_until(check, timeout, what, 0.2)
