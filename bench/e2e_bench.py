"""Sensor to subscriber through the real firmware (issue 17, section 3): p50/p99 at SF7 and
SF9 against the earlier system's published 385 ms, with the path broken down.

Each spreading factor gets a simulation (node1 and node2 running their firmware in the
MicroPython unix port over the simulated radio, ``iiot_sim.runner.Simulation``), its own
servers and an iiot-bridge on node2's pty; both run at once. A reading is followed from the
moment node1 logs it (console event ``reading``) to the moment the MQTT subscriber gets its
gas-resistance value (matched by value; readings whose value repeats are left out). The
path counts once it is steady: node2 boots before the bridge, what it writes then is
flushed when the bridge opens the port and comes again only with node2's next stream
restart, whose pause has doubled while no host answered. So readings count from 2 s after
the open and 1 s after the subscriber's first reading; the wait for that first reading is
the detail ``resync_s``.

The breakdown, per reading delivered by its first transmission (medians):

* node1: reading logged -> start of its first transmission (node1 logs ``tx`` when the
  driver's ``send()`` returns, at the end of the frame on air, so the airtime is taken off);
* airtime: the frame's time on air at that spreading factor (the simulator's formula, from
  the frame node2 forwarded);
* node2 turnaround: end of the frame on air -> node2's serial line (node2 sends its ACK
  first, so this includes the ACK's time on air);
* serial: the line's bytes at 115200 baud 8N1. The simulator's pty has no baud limit, so
  this is computed and *added* to the measured total;
* broker: publish -> subscriber on the same broker (probe messages);
* bridge: serial line -> subscriber, less the broker's share.

Times on the simulator's clock (console events, node2's lines) are turned into wall-clock
time with one offset taken when the simulation starts; all of it is the same host's clock.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .bridge_run import BridgeProcess
from .figures import Figure, Target
from .load import BITS_PER_BYTE, LINK_BAUD
from .profile import Profile
from .rig import Rig, log
from .spec import Collector, Spec, Unavailable, run_part
from .stats import percentile

SECTION = "End to end: sensor reading on node1 -> MQTT subscriber (real firmware, simulator)"
EARLIER_MS = 385.0  # the earlier system's published sensor-to-dashboard figure
SFS = (7, 9)
# Readings count once the path is steady: the bridge has had node2's port open this long
# and the subscriber has had its first reading this long (node2 runs before the bridge; what
# it wrote then is flushed by the open and comes again with node2's next stream restart).
WARMUP_S = 2.0
RESYNC_S = 1.0
PARTS = ("node1", "airtime", "node2_turnaround", "serial", "bridge", "broker")
PART_LABELS = {
    "node1": "node1: reading -> first transmission",
    "airtime": "time on air",
    "node2_turnaround": "node2: frame received -> serial line",
    "serial": "serial line at 115200 baud 8N1 (computed)",
    "bridge": "bridge: serial line -> published",
    "broker": "broker: publish -> subscriber",
}


def key(sf: int, what: str) -> str:
    return f"e2e.sf{sf}.{what}"


def _specs() -> tuple[Spec, ...]:
    out: list[Spec] = []
    for sf in SFS:
        target = Target("<=", EARLIER_MS, f"≤ {EARLIER_MS:g} ms (earlier system)")
        out.append(Spec(key(sf, "p50"), f"SF{sf}: sensor -> subscriber, p50", "ms", target))
        out.append(Spec(key(sf, "p99"), f"SF{sf}: sensor -> subscriber, p99", "ms"))
        for part in PARTS:
            out.append(Spec(key(sf, part), f"SF{sf}: {PART_LABELS[part]}, p50", "ms"))
    return tuple(out)


SPECS = _specs()


def _sim() -> Any:
    try:
        from iiot_sim import airtime, config, runner
    except Exception as exc:  # the simulator is being changed: any import failure
        raise Unavailable(f"the simulator does not import: {exc!r}") from exc
    return airtime, config, runner


def _broker_ms(rig: Rig, count: int = 40) -> list[float]:
    """Publish -> receive on the rig's broker, with paho on both ends (QoS 1)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    got: dict[int, int] = {}
    done = threading.Event()

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        got[int(msg.payload)] = time.perf_counter_ns()
        if len(got) >= count:
            done.set()

    clients = []
    for name in ("sub", "pub"):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-e2e-{name}")
        c.username_pw_set(rig.srv.mqtt_user, rig.srv.mqtt_password)
        c.connect("127.0.0.1", rig.srv.broker.port)
        c.loop_start()
        clients.append(c)
    sub, pub = clients
    sub.on_message = on_message
    sub.subscribe("bench/probe", qos=1)
    time.sleep(0.5)
    sent: dict[int, int] = {}
    for i in range(count):
        sent[i] = time.perf_counter_ns()
        pub.publish("bench/probe", str(i), qos=1)
        time.sleep(0.02)
    done.wait(10)
    for c in clients:
        c.loop_stop()
        c.disconnect()
    return [(got[i] - sent[i]) / 1e6 for i in sent if i in got]


def _tx_times(sim: Any, node: int) -> dict[tuple[int, int], float]:
    """(boot, rn) -> when the first transmission was logged, if the event log keeps it."""
    out: dict[tuple[int, int], float] = {}
    nodes = getattr(getattr(sim, "events", None), "nodes", {})
    log_ = nodes.get(node) if isinstance(nodes, dict) else None
    for k, reading in getattr(log_, "readings", {}).items():
        tx = getattr(reading, "tx", [])
        if tx:
            out[k] = float(tx[0][1])
    return out


def _serial_lines(path: Path) -> dict[int, bytes]:
    """Line number n -> the raw line node2 wrote (from the simulator's capture)."""
    out: dict[int, bytes] = {}
    for raw in path.read_bytes().splitlines():
        if raw.startswith(b"{"):
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("n"), int):
                out.setdefault(obj["n"], raw + b"\n")
    return out


def _one_sf(profile: Profile, sf: int, workdir: Path) -> dict[str, Any]:
    airtime, config, runner = _sim()
    capture = workdir / "serial.log"
    cfg = config.SimConfig(
        nodes=1,
        interval_ms=profile.e2e_interval_ms,
        radio=config.RadioConfig(sf=sf),
        capture=capture,
        seed=70 + sf,
    )
    with Rig(workdir / "rig") as rig:
        broker_ms = _broker_ms(rig)
        sim = runner.Simulation(cfg)
        sim.start()
        bridge = None
        opened_ms = 0.0
        try:
            offset = time.time() - sim.elapsed()
            bridge = BridgeProcess(sim.serial_path, rig.srv, workdir / "bridge")
            bridge.wait_port_open(sim.serial_path)
            opened_ms = time.time() * 1000
            sim.run(profile.e2e_duration_s)
            time.sleep(3.0)  # the last reading's way to the subscriber
            tx_times = _tx_times(sim, 1)
        finally:
            rep = sim.stop()
            if bridge is not None:
                bridge.stop()
        rig.tap.poll()
        seen = dict(rig.tap.gas_seen)
    lines = _serial_lines(capture) if capture.exists() else {}
    readings = rep["nodes"]["1"]["readings"]
    values = [round(r["r"].get("gas_resistance", -1)) for r in readings]
    forwarded = [f for f in rep["nodes"]["2"].get("forwarded", []) if f.get("src") == 1]
    by_fcnt = {f["fcnt"]: f for f in forwarded}
    first_ms = min(seen.values()) / 1e6 if seen else opened_ms
    ready_ms = max(opened_ms + WARMUP_S * 1000, first_ms + RESYNC_S * 1000)
    totals: list[float] = []
    parts: dict[str, list[float]] = {p: [] for p in PARTS}
    broker_p50 = percentile(broker_ms, 50) if broker_ms else 0.0
    for r, gas in zip(readings, values, strict=True):
        if gas < 0 or values.count(gas) != 1 or gas not in seen:
            continue
        fwd = next((by_fcnt[f] for f in r.get("tx", []) if f in by_fcnt), None)
        if fwd is None:
            continue
        line = lines.get(fwd["n"]) if fwd.get("n") is not None else None
        serial_ms = len(line) * BITS_PER_BYTE / LINK_BAUD * 1000 if line else 0.0
        t_read = (r["t"] + offset) * 1000
        if t_read < ready_ms:
            continue
        t_sub = seen[gas] / 1e6
        totals.append(t_sub - t_read + serial_ms)
        if len(r.get("tx", [])) != 1 or line is None:
            continue  # the breakdown: first-attempt deliveries with a known frame only
        frame = bytes.fromhex(json.loads(line)["f"])
        air_ms = airtime.time_on_air_us(len(frame), sf=sf) / 1000
        t_line = (fwd["t"] + offset) * 1000
        tx = tx_times.get((r["boot"], r["rn"]))
        if tx is not None:
            # node1 logs "tx" when send() returns: at the end of the frame on air.
            parts["node1"].append((tx + offset) * 1000 - air_ms - t_read)
            parts["node2_turnaround"].append(t_line - (tx + offset) * 1000)
        parts["airtime"].append(air_ms)
        parts["serial"].append(serial_ms)
        parts["bridge"].append(t_sub - t_line - broker_p50)
        parts["broker"].append(broker_p50)
    return {
        "resync_s": round((first_ms - opened_ms) / 1000, 2),
        "totals": totals,
        "parts": parts,
        "readings": len(readings),
        "broker_samples": len(broker_ms),
        "tracebacks": rep["nodes"]["1"].get("tracebacks", [])[-1:],
    }


def _body(profile: Profile, col: Collector) -> None:
    _sim()
    results: dict[int, Any] = {}
    with tempfile.TemporaryDirectory(prefix="iiot-bench-e2e-") as tmp:

        def job(sf: int) -> None:
            try:
                results[sf] = _one_sf(profile, sf, Path(tmp) / f"sf{sf}")
            except BaseException as exc:  # handed to the main thread
                results[sf] = exc

        threads = [threading.Thread(target=job, args=(sf,)) for sf in SFS]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for sf in SFS:
        res = results[sf]
        if isinstance(res, BaseException):
            reason = str(res) if isinstance(res, Unavailable) else f"failed: {res!r}"
            for spec in SPECS:
                if spec.key.startswith(f"e2e.sf{sf}."):
                    col.missing(spec.key, reason[:200])
            continue
        totals = res["totals"]
        if not totals:
            why = f"no reading of {res['readings']} reached the subscriber"
            if res["tracebacks"]:
                why += f" (node1: {res['tracebacks'][0][:120]})"
            for spec in SPECS:
                if spec.key.startswith(f"e2e.sf{sf}."):
                    col.missing(spec.key, why)
            continue
        n = {"readings": res["readings"], "matched": len(totals), "resync_s": res["resync_s"]}
        col.put(key(sf, "p50"), round(percentile(totals, 50), 1), earlier_ms=EARLIER_MS, **n)
        col.put(
            key(sf, "p99"),
            round(percentile(totals, 99), 1),
            samples_ms=sorted(round(v, 1) for v in totals),
            **n,
        )
        for part, values in res["parts"].items():
            if values:
                col.put(key(sf, part), round(percentile(values, 50), 2), samples=len(values))
            else:
                col.missing(key(sf, part), "the simulator's event log has no transmit times")
        log(f"e2e SF{sf}: p50 {percentile(totals, 50):.0f} ms over {len(totals)} readings")


def figures(profile: Profile) -> list[Figure]:
    return run_part(Collector(SECTION, SPECS), lambda col: _body(profile, col))
