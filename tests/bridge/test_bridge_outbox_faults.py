"""The outbox's own faults: a full disk under the running bridge (it stops acknowledging
node2, says so in the log, /healthz and /metrics, and resumes by itself when space
returns), a read-only state directory and a damaged outbox at start (refused, with a
clear message), a schema 1 outbox (migrated), and a sink that fails or whose thread dies
under load (restarted; nothing lost).

A file system cannot be switched read-only under a process that has files open on it for
writing (mount refuses), so a read-only state directory is tested at start; at run time
it fails the same way a full disk does (OutboxError on commit: no acknowledgement)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bridge_kit import (
    BRIDGE_BIN,
    BridgeProcess,
    Gateway,
    Node1,
    SmallDisk,
    send_series,
    wait_for,
)
from test_bridge_faults import assert_exactly_once, assert_latest_retained

from iiot_bridge.model import Kind
from iiot_bridge.outbox import Outbox, OutboxError
from iiot_sim.localservers import Mosquitto, VictoriaMetrics, free_port

HERE = Path(__file__).resolve().parent


def health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
    except OSError:
        return 0, {}


def metric(port: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def outbox_failing(port: int) -> tuple[dict[str, Any], list[str]] | None:
    """/healthz's body and its outbox reason while it reports one (else None)."""
    status, body = health(port)
    found = [r for r in body.get("reasons", []) if r.startswith("outbox not writable")]
    return (body, found) if status == 503 and found else None


def send_until_the_outbox_fails(gateway: Gateway, node: Node1, start: int, port: int) -> int:
    """Send frames until the bridge reports that it cannot store them; return the next
    frame index."""
    i = start
    for _ in range(400):
        send_series(gateway, node, 5, start=i)
        i += 5
        gateway.pump()
        if outbox_failing(port):
            return i
    raise AssertionError("the outbox never failed")


def outbox_trouble(
    bridge: BridgeProcess,
    gateway: Gateway,
    broker: Mosquitto,
    victoria: VictoriaMetrics,
    http_port: int,
    break_disk: Callable[[], None],
    mend_disk: Callable[[], None],
    why: str,
) -> None:
    """Readings flow, the sinks are down, the disk breaks; then everything comes back."""
    bridge.wait_log("open at")
    wait_for(lambda: health(http_port)[0] == 200, 20, "healthy at start")
    node = Node1()
    send_series(gateway, node, 20)
    gateway.wait_acked()
    victoria.stop()  # readings now pile up in the outbox
    broker.stop()
    break_disk()
    i = send_until_the_outbox_fails(gateway, node, 20, http_port)
    body, (reason,) = wait_for(lambda: outbox_failing(http_port), 20, "/healthz: outbox")
    assert why in reason, reason
    assert body["outbox"]["writable"] is False
    assert metric(http_port, "iiot_bridge_outbox_writable") == 0.0
    assert (metric(http_port, "iiot_bridge_outbox_errors_total") or 0) >= 1
    bridge.wait_log("not acknowledging node2")
    gateway.pump()
    assert gateway.unacked, "node2 still holds what the bridge could not store"
    bridge.assert_running()
    mend_disk()
    send_series(gateway, node, 10, start=i)  # node2 keeps resending; new readings too
    gateway.wait_acked(timeout=60)
    bridge.wait_log("outbox writable again")
    victoria.start()
    broker.start()
    assert_exactly_once(victoria, node)
    assert_latest_retained(broker, node)
    wait_for(lambda: health(http_port)[0] == 200, 30, "healthy again")
    bridge.assert_running()


def test_full_disk_stops_acknowledging_and_resumes_when_space_returns(
    broker: Mosquitto,
    victoria: VictoriaMetrics,
    gateway: Gateway,
    small_disk: SmallDisk,
    start_bridge,
) -> None:
    http_port = free_port()
    bridge = start_bridge("--state-dir", str(small_disk.path), "--http-port", str(http_port))
    outbox_trouble(
        bridge,
        gateway,
        broker,
        victoria,
        http_port,
        lambda: small_disk.fill(leave_kb=48),
        small_disk.empty,
        "full",
    )


def run_cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BRIDGE_BIN, "--serial", str(tmp_path / "none"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )


def test_read_only_state_directory_at_start_is_refused(
    tmp_path: Path, small_disk: SmallDisk
) -> None:
    small_disk.read_only(True)
    result = run_cli(["--state-dir", str(small_disk.path)], tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "--state-dir" in line and "not writable" in line


def test_a_damaged_outbox_is_refused_not_replaced(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    garbage = state / "outbox.sqlite3"
    garbage.write_bytes(b"not a database, " * 512)
    result = run_cli(["--state-dir", str(state)], tmp_path)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "not a usable SQLite database" in line and "refusing to start" in line
    assert garbage.read_bytes() == b"not a database, " * 512  # left as it was

    # A real outbox whose pages were overwritten in the middle: also refused.
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    outbox = Outbox(damaged / "outbox.sqlite3", ["influx"])
    from iiot_bridge.model import Reading

    rows = [Reading("node1", "temperature", float(i), i) for i in range(5000)]
    outbox.commit(rows, {})
    outbox.checkpoint()
    outbox.close()
    raw = bytearray((damaged / "outbox.sqlite3").read_bytes())
    raw[8192:16384] = b"\xa5" * 8192
    (damaged / "outbox.sqlite3").write_bytes(bytes(raw))
    with pytest.raises(OutboxError, match="refusing to start"):
        Outbox(damaged / "outbox.sqlite3", ["influx"])


def test_a_schema_1_outbox_is_migrated_and_a_newer_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE readings (id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ns INTEGER NOT NULL,
            node TEXT NOT NULL, metric TEXT NOT NULL, value REAL NOT NULL,
            route INTEGER NOT NULL, sink TEXT, added REAL NOT NULL);
        CREATE TABLE counters (source TEXT PRIMARY KEY, fcnt INTEGER NOT NULL);
        CREATE TABLE cursors (sink TEXT PRIMARY KEY, id INTEGER NOT NULL);
        INSERT INTO meta VALUES ('schema', 1);
        INSERT INTO readings (ts_ns, node, metric, value, route, sink, added) VALUES
            (1, 'node1', 'temperature', 21.5, 7, NULL, 0),
            (2, 'node1', 'rssi', -60, 3, NULL, 0),
            (3, 'bridge', 'bridge_backlog', 4, 2, 'influx', 0);
        INSERT INTO counters VALUES ('node1', 41);
        """
    )
    db.commit()
    db.close()
    outbox = Outbox(path, ["mqtt", "influx"])
    rows = outbox.fetch(0, 10)
    assert [(r.metric, r.kind) for r in rows] == [
        ("temperature", Kind.READING),
        ("rssi", Kind.LINK),
        ("bridge_backlog", Kind.SELF),
    ]
    assert outbox.counters() == {"node1": 41} and outbox.meta("schema") == 2
    outbox.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = 99 WHERE key = 'schema'")
    db.commit()
    db.close()
    with pytest.raises(OutboxError, match="schema 99"):
        Outbox(path, ["mqtt"])


def test_a_failing_sink_and_a_dead_sink_thread_lose_nothing(
    tmp_path: Path,
    broker: Mosquitto,
    victoria: VictoriaMetrics,
    gateway: Gateway,
    bridge_args: list[str],
) -> None:
    """Faults injected into the real bridge process (inject_faults.py): the InfluxDB sink's
    write raises an unexpected error, then its thread is killed outright."""
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); import inject_faults; "
        "from iiot_bridge.cli import main; sys.exit(main())"
    )
    bridge = BridgeProcess([*bridge_args, "--http-port", str(port := free_port())], tmp_path,
                           {"IIOT_INFLUX_TOKEN": "t"})  # fmt: skip
    bridge.args = [sys.executable, "-c", code, *bridge.args[1:]]
    bridge.start()
    try:
        bridge.wait_log("open at")
        node = Node1()
        for start in range(0, 300, 30):  # under load while the faults hit
            send_series(gateway, node, 30, start=start)
            gateway.wait_acked()
        bridge.wait_log("InfluxDB sink failed; restarting it")
        bridge.wait_log("InfluxDB sink thread had ended; starting it again")
        assert_exactly_once(victoria, node, strict=False)
        assert_latest_retained(broker, node)
        wait_for(lambda: health(port)[0] == 200, 20, "healthy")
        assert health(port)[1]["sinks"]["influx"]["running"] is True
        bridge.assert_running()
    finally:
        bridge.kill()


def test_healthz_fails_while_a_sink_with_a_backlog_delivers_nothing(
    broker: Mosquitto, victoria: VictoriaMetrics, gateway: Gateway, start_bridge
) -> None:
    port = free_port()
    bridge = start_bridge("--http-port", str(port), "--stall-timeout", "4s")
    bridge.wait_log("open at")
    wait_for(lambda: health(port)[0] == 200, 20, "healthy")
    victoria.stop()  # InfluxDB away; MQTT still delivers, so a sink is connected
    node = Node1()
    send_series(gateway, node, 10)
    gateway.wait_acked()

    def stalled() -> list[str] | None:
        status, body = health(port)
        found = [r for r in body.get("reasons", []) if r.startswith("influx:")]
        return found if status == 503 and found else None

    (reason,) = wait_for(stalled, 30, "/healthz: the InfluxDB sink stalled")
    assert "readings waiting, nothing delivered for" in reason and "cannot reach" in reason
    assert health(port)[1]["sinks"]["mqtt"]["connected"] is True
    victoria.start()
    assert_exactly_once(victoria, node)
    wait_for(lambda: health(port)[0] == 200, 30, "healthy once it delivers again")
