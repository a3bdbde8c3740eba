"""Real Mosquitto and VictoriaMetrics for a benchmark phase, and taps that confirm delivery.

The servers come from ``iiot_sim.localservers`` (the launchers the tests use). A phase gets
fresh servers so counts never mix. :class:`MqttTap` runs ``mosquitto_sub`` (C, so the
subscriber costs the two cores far less than a Python client at thousands of messages per
second) with a persistent session, and reads its timestamped output; :class:`DbTap` counts
samples in VictoriaMetrics.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .load import ALL_METRICS
from .spec import Unavailable
from .tools import find_program

MOSQUITTO_SUB = "mosquitto_sub"
TOPIC_PREFIX = "iiot"
# Queue everything for the subscriber's session while it is away (outage phase): the
# default of 1000 queued messages would drop readings the bridge rightly thinks delivered.
# A SIGKILLed broker restarts from its last save: saving every second keeps the tap's
# session (and so its subscription) across the fault, as it would be on a real deployment
# whose subscribers have long been connected.
BROKER_CONFIG = "max_queued_messages 0\nmax_inflight_messages 0\nautosave_interval 1\n"
_METRIC_SET = frozenset(ALL_METRICS)
MQTT_USER = "bench"


def new_secret() -> str:
    """A password or token for one run: generated, kept in the run's temporary files only."""
    return secrets.token_urlsafe(18)


def _localservers() -> Any:
    try:
        from iiot_sim import localservers
    except ImportError as exc:
        raise Unavailable(f"iiot_sim.localservers cannot be imported ({exc})") from exc
    return localservers


def free_port() -> int:
    return int(_localservers().free_port())


@dataclass
class Servers:
    broker: Any  # localservers.Mosquitto
    db: Any  # localservers.VictoriaMetrics
    mqtt_user: str
    mqtt_password: str
    influx_token: str

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.mqtt_user}@127.0.0.1:{self.broker.port}"

    @property
    def influx_url(self) -> str:
        return f"http://127.0.0.1:{self.db.port}"


@contextmanager
def servers(workdir: Path) -> Iterator[Servers]:
    """A broker and a database on free ports, data under ``workdir``, stopped on exit."""
    ls = _localservers()
    password = new_secret()
    # dedup off: every sample written is kept and counted, so a duplicate would show.
    broker = ls.Mosquitto(
        workdir / "mosquitto",
        users={MQTT_USER: password},
        persistence=True,
        extra_config=BROKER_CONFIG,
    )
    db = ls.VictoriaMetrics(workdir / "vm", dedup_ms=0)
    try:
        broker.start()
        db.start()
        yield Servers(broker, db, MQTT_USER, password, new_secret())
    except ls.ServerError as exc:
        raise Unavailable(f"local server failed: {exc}") from exc
    finally:
        broker.kill()
        db.kill()


class MqttTap:
    """Counts metric messages under ``iiot/<node>/<metric>`` as ``mosquitto_sub`` receives them.

    ``gas_seen`` maps each gas_resistance payload (a frame's unique id in the load) to the
    wall-clock receive time in ns, for latency; ``gas_count`` counts each id's messages, so a
    duplicate shows. A retained message the broker replays on a (re)subscription is not a
    delivery and is not counted (``%r`` flag).
    """

    def __init__(self, srv: Servers, workdir: Path, client_id: str = "bench-tap") -> None:
        port = srv.broker.port
        binary = find_program(MOSQUITTO_SUB)
        if binary is None:
            raise Unavailable("mosquitto_sub is not installed (Debian package mosquitto-clients)")
        self.port = port
        self.out_path = workdir / f"{client_id}.out"
        self.argv = [
            binary, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-i", client_id, "-c",
            "-u", srv.mqtt_user, "-P", srv.mqtt_password,
            "-t", f"{TOPIC_PREFIX}/+/+", "-F", "%U %r %t %p",
        ]  # fmt: skip
        self.auth = ["-u", srv.mqtt_user, "-P", srv.mqtt_password]
        self.counts: dict[str, int] = dict.fromkeys(ALL_METRICS, 0)
        self.total = 0
        self.gas_seen: dict[int, int] = {}
        self.gas_count: dict[int, int] = {}
        self.first_ns: int | None = None  # receive time of the first metric message
        self.last_ns: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._offset = 0
        self._partial = b""
        self._lock = threading.Lock()

    def start(self) -> None:
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self.out_path.touch()
        with open(self.out_path, "ab") as out:
            self._proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def poll(self) -> int:
        """Read what arrived since the last call; return the metric message total."""
        with self._lock, open(self.out_path, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read()
            self._offset += len(data)
            data = self._partial + data
            lines = data.split(b"\n")
            self._partial = lines.pop()
            for line in lines:
                self._take(line)
        return self.total

    def _take(self, line: bytes) -> None:
        parts = line.split(b" ", 3)
        if len(parts) != 4:
            return
        stamp, retained, topic, payload = parts
        if retained == b"1":
            return  # replayed on subscription, not a delivery
        metric = topic.rsplit(b"/", 1)[-1].decode(errors="replace")
        if metric not in _METRIC_SET:
            return  # status, state and discovery topics are not readings
        ns = int(stamp.replace(b".", b""))
        self.counts[metric] += 1
        self.total += 1
        if self.first_ns is None:
            self.first_ns = ns
        self.last_ns = ns
        if metric == "gas_resistance":
            with suppress(ValueError):
                gas = int(float(payload))
                self.gas_seen.setdefault(gas, ns)
                self.gas_count[gas] = self.gas_count.get(gas, 0) + 1

    def mark(self) -> None:
        """Forget first/last receive times, so they describe only what arrives next."""
        self.poll()
        self.first_ns = self.last_ns = None

    def wait_subscribed(self, timeout: float = 20.0) -> None:
        """Publish probes until the tap sees one: the subscription is then active."""
        pub = find_program("mosquitto_pub")
        deadline = time.monotonic() + timeout
        probe = f"{TOPIC_PREFIX}/bench-probe/ready"
        while time.monotonic() < deadline:
            if pub:
                argv = [pub, "-h", "127.0.0.1", "-p", str(self.port), "-q", "1", *self.auth]
                subprocess.run(
                    [*argv, "-t", probe, "-m", "1"],
                    capture_output=True,
                    timeout=10,
                )
            poll_deadline = time.monotonic() + 1.0
            while time.monotonic() < poll_deadline:
                if self.out_path.read_bytes().find(probe.encode()) >= 0:
                    return
                time.sleep(0.02)
        raise Unavailable("mosquitto_sub did not receive a probe message")


class DbTap:
    """Counts and reads reading samples in VictoriaMetrics (series ``<metric>_value``)."""

    SELECTOR = '{__name__=~"(' + "|".join(ALL_METRICS) + ')_value"}'

    def __init__(self, url: str) -> None:
        self.url = url

    def _get(self, path: str, params: dict[str, str], timeout: float = 30.0) -> bytes:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}?{query}", timeout=timeout) as resp:
            return bytes(resp.read())

    def count(self) -> int:
        """Samples of every reading series, as stored (no deduplication)."""
        promql = f"sum(count_over_time({self.SELECTOR}[3650d]))"
        body = json.loads(self._get("/api/v1/query", {"query": promql, "nocache": "1"}))
        result = body["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0

    def export(self, series: str, start_ms: int = 0) -> list[tuple[int, float]]:
        """(timestamp ms, value) samples of every series named ``series`` (all nodes)."""
        body = self._get("/api/v1/export", {"match[]": series, "start": str(start_ms // 1000)})
        out: list[tuple[int, float]] = []
        for line in body.splitlines():
            if line.strip():
                found = json.loads(line)
                out += zip(found["timestamps"], found["values"], strict=True)
        return out

    def gas_counts(self, start_ms: int = 0) -> dict[int, int]:
        """How many samples each frame id (the gas_resistance value) has in the database."""
        out: dict[int, int] = {}
        for _, value in self.export("gas_resistance_value", start_ms):
            out[int(value)] = out.get(int(value), 0) + 1
        return out

    def write_probe(self, value: int) -> None:
        """One point of ``bench_probe`` written straight to the database (InfluxDB v2 API)."""
        body = f"bench,probe=1 probe={value}i {time.time_ns()}".encode()
        query = urllib.parse.urlencode({"org": "bench", "bucket": "bench", "precision": "ns"})
        req = urllib.request.Request(f"{self.url}/api/v2/write?{query}", data=body, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def wait_series(self, name: str, timeout_s: float = 30.0) -> None:
        """Poll the index until a series called ``name`` exists.

        Asking for samples of a series before it is indexed can leave an empty answer in
        VictoriaMetrics' filter cache for seconds; the label index has no such delay.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            names = json.loads(self._get("/api/v1/label/__name__/values", {}))["data"]
            if name in names:
                return
            time.sleep(0.05)
        raise Unavailable(f"series {name} did not appear in the database")
