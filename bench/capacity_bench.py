"""Radio capacity with the real firmware, and what a reading costs the node (issue 17, 3).

Offered channel load ``G`` is the airtime the sensor nodes' readings would take if each
went alone in one frame, as a fraction of time: ``nodes * T_air(frame) / interval``. Every
node reports every ``capacity_interval_ms`` (a node on its own keeps up with that easily),
and the load grows with the number of nodes, ``round(G * interval / T_air)``; the level's
exact ``G`` follows from that count. Collisions are on (a packet survives an overlap only
when 6 dB stronger), with no random loss: only the channel's own contention. Counted:

* delivery ratio: readings node2 forwarded at least once, of those taken (the last three
  intervals and two seconds left out: still queued or in flight, not lost);
* retransmissions per reading: what went over the air from the sensor nodes beyond one
  transmission per frame (``Simulation.hub.transmissions``: a retransmission repeats its
  frame byte for byte), per reading taken;
* first-attempt success: frames whose first transmission node2 received, against pure
  ALOHA's success probability for the same load, ``e^(-2G)``;
* carried load (detail): everything on the air, retransmissions and node2's ACKs included.

The capacity figure is the largest offered load at which every reading was delivered. From
the lowest load (least contention) comes the node's time on air per delivered reading (all
its transmissions), and, where the simulator reports them, receive-window time and radio
SPI transactions per delivered reading.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from . import airtime as bench_airtime
from .figures import Figure
from .profile import Profile
from .rig import log
from .spec import Collector, Spec, Unavailable, run_part

SECTION = "Radio capacity and cost per reading (real firmware, simulator, SF7)"
GATEWAY = 2
NODES_AT_ONCE = 12  # levels run at the same time while their nodes add up to no more
LARGEST = "capacity.largest_full_delivery"
COST_AIR = "cost.airtime_per_reading"
COST_RX = "cost.rx_window_per_reading"
COST_SPI = "cost.spi_per_reading"
# Report fields a simulator with the SX1276 register model may give per node.
RX_FIELDS = ("rx_window_ms", "rx_ms")
SPI_FIELDS = ("spi_transactions", "spi_count")


def level_key(load: float, what: str) -> str:
    return f"capacity.g{round(load * 100):02d}.{what}"


def aloha(load: float) -> float:
    """Pure ALOHA: the chance that a packet overlaps no other, at offered load ``load``."""
    return math.exp(-2 * load)


def specs(loads: tuple[float, ...]) -> tuple[Spec, ...]:
    out: list[Spec] = []
    for g in loads:
        pct = f"{g * 100:g} %"
        out.append(Spec(level_key(g, "delivery"), f"delivery ratio at {pct} channel load", "%"))
        out.append(
            Spec(level_key(g, "retx"), f"retransmissions per reading at {pct} load", "per reading")
        )
        out.append(
            Spec(
                level_key(g, "first"),
                f"first-attempt success at {pct} load (pure ALOHA: {aloha(g) * 100:.1f} %)",
                "%",
            )
        )
    out.append(Spec(LARGEST, "largest offered load with every reading delivered", "% of airtime"))
    out.append(Spec(COST_AIR, "node1 time on air per delivered reading", "ms"))
    out.append(Spec(COST_RX, "node1 receive-window time per delivered reading", "ms"))
    out.append(Spec(COST_SPI, "node1 radio SPI transactions per delivered reading", "transactions"))
    return tuple(out)


def _sim() -> Any:
    try:
        from iiot_sim import channel, config, runner
        from iiot_sim.host import AckingHost
    except Exception as exc:  # the simulator is being changed: any import failure
        raise Unavailable(f"the simulator does not import: {exc!r}") from exc
    return channel, config, runner, AckingHost


def frame_airtime_ms() -> float:
    """Time on air of one node1 reading alone in a frame, at SF7 (the codec's own frame)."""
    payload = bench_airtime.payloads()["ours"][1]
    return bench_airtime.time_on_air_ms(len(payload), bench_airtime.SF7)


def interval_for(load: float, nodes: int) -> int:
    return max(50, round(nodes * frame_airtime_ms() / load))


def nodes_for(load: float, interval_ms: int) -> int:
    """Sensor nodes reporting every ``interval_ms`` that offer about ``load``."""
    return max(1, round(load * interval_ms / frame_airtime_ms()))


def offered(nodes: int, interval_ms: int) -> float:
    return nodes * frame_airtime_ms() / interval_ms


def _air_log(sim: Any) -> list[dict[str, Any]]:
    """What went over the air: source, payload, duration, and node2's outcome."""
    out = []
    for tx in list(getattr(getattr(sim, "hub", None), "transmissions", [])):
        rx = tx.receptions.get(GATEWAY)
        out.append(
            {
                "src": tx.src,
                "payload": bytes(tx.payload),
                "start": tx.start,
                "air_s": tx.end - tx.start,
                "gateway": rx.outcome if rx is not None else None,
            }
        )
    return out


def _simulate(profile: Profile, load: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    channel, config, runner, acking_host = _sim()
    interval = profile.capacity_interval_ms
    seed = 300 + round(load * 100)
    cfg = config.SimConfig(
        nodes=nodes_for(load, interval),
        interval_ms=interval,
        channel=channel.ChannelConfig(collisions=True, seed=seed),
        seed=seed,
    )
    sim = runner.Simulation(cfg)
    sim.start()
    # A host on node2's port, as the bridge would be: without one node2 keeps what it
    # takes (custody) but stops writing lines, and "forwarded" would understate delivery.
    try:
        with acking_host(sim.serial_path):
            sim.run(profile.capacity_duration_s)
            air = _air_log(sim)
    finally:
        rep: dict[str, Any] = sim.stop()
    return rep, air


def _field(node: dict[str, Any], names: tuple[str, ...]) -> float | None:
    for source in (node, node.get("radio", {}) or {}):
        for name in names:
            value = source.get(name) if isinstance(source, dict) else None
            if isinstance(value, (int, float)):
                return float(value)
    return None


def analyse(
    rep: dict[str, Any], interval_ms: int, air: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Delivery over every sensor node (from the report), and retransmissions,
    first-attempt success and airtime from what went over the air (``air``)."""
    taken = delivered = retx = first_ok = readings_all = delivered_all = 0
    forwarded = rep["nodes"][str(GATEWAY)].get("forwarded", [])
    got = {(f.get("src"), f.get("fcnt")) for f in forwarded}
    tx_total = 0
    rx_ms = spi = 0.0
    have_rx = have_spi = True
    for name, node in rep["nodes"].items():
        if int(name) == GATEWAY:
            continue
        readings = node.get("readings", [])
        if not readings:
            continue
        # The last readings may still be queued or in flight when the run stops: not lost.
        until = max(r["t"] for r in readings) - 3 * interval_ms / 1000 - 2.0
        src = int(name)
        for r in readings:
            tx = r.get("tx", [])
            readings_all += 1
            delivered_all += any((src, f) in got for f in tx)
            if r["t"] > until:
                continue
            tx_total += len(tx)
            taken += 1
            delivered += any((src, f) in got for f in tx)
            retx += max(0, len(tx) - 1)
            first_ok += bool(tx) and tx[0] in r.get("acked", []) and tx.count(tx[0]) == 1
        rx, sp = _field(node, RX_FIELDS), _field(node, SPI_FIELDS)
        have_rx, have_spi = have_rx and rx is not None, have_spi and sp is not None
        rx_ms += rx or 0.0
        spi += sp or 0.0
    if not taken:
        raise Unavailable("no sensor node took a reading in the simulator")
    out = {
        "taken": taken,
        "delivered": delivered,
        "retx": retx,
        "first_ok": first_ok,
        "frames": tx_total,
        "transmissions": tx_total,
        "rx_ms": rx_ms if have_rx else None,
        "spi": spi if have_spi else None,
        "source": "console events",
        "readings_all": readings_all,
        "delivered_all": delivered_all,
    }
    if air:
        out.update(_from_air(air, taken))
    return out


def _air_counter(payload: bytes) -> int:
    """The 16-bit frame counter in an air frame's header (bytes 3 and 4, docs/protocol.md
    section 1); -1 for a frame too short to have one."""
    return payload[3] << 8 | payload[4] if len(payload) >= 5 else -1


def _from_air(air: list[dict[str, Any]], taken: int) -> dict[str, Any]:
    sensors = [a for a in air if a["src"] != GATEWAY]
    # A retransmission carries the same frame counter but not always the same bytes (a
    # reading's age, a batch that grew), so frames are told apart by (source, counter).
    first: dict[tuple[int, int], dict[str, Any]] = {}
    for a in sorted(sensors, key=lambda a: a["start"]):
        first.setdefault((a["src"], _air_counter(a["payload"])), a)
    span = max(a["start"] + a["air_s"] for a in air) - min(a["start"] for a in air)
    ok = sum(1 for a in first.values() if a["gateway"] == "delivered")
    return {
        "frames": len(first),
        "transmissions": len(sensors),
        "retx": len(sensors) - len(first),
        "first_ok": ok,
        "first_attempt_of": len(first),
        "sensor_air_s": round(sum(a["air_s"] for a in sensors), 3),
        "carried_load": round(sum(a["air_s"] for a in air) / span, 3) if span > 0 else None,
        "gateway_transmissions": len(air) - len(sensors),
        "source": "Simulation.hub.transmissions",
    }


def _groups(profile: Profile) -> list[list[float]]:
    """Load levels in the order given, several at once while their nodes add up to few."""
    groups: list[list[float]] = []
    size = 0
    for g in profile.capacity_loads:
        n = nodes_for(g, profile.capacity_interval_ms)
        if groups and size + n <= NODES_AT_ONCE:
            groups[-1].append(g)
            size += n
        else:
            groups.append([g])
            size = n
    return groups


def _run_levels(profile: Profile) -> dict[float, Any]:
    results: dict[float, Any] = {}

    def job(load: float) -> None:
        try:
            results[load] = _simulate(profile, load)
        except BaseException as exc:  # handed to the main thread
            results[load] = exc

    for group in _groups(profile):
        threads = [threading.Thread(target=job, args=(g,)) for g in group]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return results


def _body(profile: Profile, col: Collector) -> None:
    _sim()
    air_ms = frame_airtime_ms()
    interval = profile.capacity_interval_ms
    results = _run_levels(profile)
    full: list[float] = []
    lowest: dict[str, Any] | None = None
    for g in profile.capacity_loads:
        res = results[g]
        keys = [level_key(g, w) for w in ("delivery", "retx", "first")]
        if isinstance(res, BaseException):
            for k in keys:
                col.missing(k, str(res)[:200])
            continue
        rep, air = res
        try:
            a = analyse(rep, interval, air)
        except Unavailable as exc:
            for k in keys:
                col.missing(k, str(exc))
            continue
        nodes = nodes_for(g, interval)
        exact = offered(nodes, interval)
        detail = {
            "nodes": nodes,
            "interval_ms": interval,
            "frame_airtime_ms": round(air_ms, 2),
            "offered_load": round(exact, 4),
            "aloha_success_pct": round(aloha(exact) * 100, 2),
            **{k: v for k, v in a.items() if k not in ("rx_ms", "spi")},
        }
        ratio = 100 * a["delivered"] / a["taken"]
        col.put(keys[0], round(ratio, 2), **detail)
        col.put(keys[1], round(a["retx"] / max(1, a["readings_all"]), 3), **detail)
        attempts = a.get("first_attempt_of", a["taken"])
        col.put(keys[2], round(100 * a["first_ok"] / max(1, attempts), 2), **detail)
        if a["delivered"] == a["taken"]:
            full.append(exact)
        if lowest is None:
            lowest = {**a, "load": exact}
        log(
            f"capacity G={exact:.3f} ({nodes} nodes): {ratio:.1f} % delivered, "
            f"{a['retx']} retransmissions, carried load {a.get('carried_load')}"
        )
    if full:
        col.put(LARGEST, round(max(full) * 100, 1), levels=[round(g * 100, 1) for g in full])
    else:
        col.missing(LARGEST, "no load level delivered every reading")
    if lowest is None:
        raise Unavailable("no capacity level ran")
    n = lowest["delivered_all"] or 1
    at = {"offered_load": lowest["load"], "delivered": lowest["delivered_all"]}
    if "sensor_air_s" in lowest:
        col.put(COST_AIR, round(lowest["sensor_air_s"] * 1000 / n, 2), source="air", **at)
    else:
        col.put(COST_AIR, round(lowest["transmissions"] * air_ms / n, 2), source="events", **at)
    missing = "this simulator reports no radio.rx_window_ms / radio.spi_transactions per node"
    if lowest["rx_ms"] is None:
        col.missing(COST_RX, missing)
    else:
        col.put(COST_RX, round(lowest["rx_ms"] / n, 1), **at)
    if lowest["spi"] is None:
        col.missing(COST_SPI, missing)
    else:
        col.put(COST_SPI, round(lowest["spi"] / n, 1), **at)


def figures(profile: Profile) -> list[Figure]:
    return run_part(Collector(SECTION, specs(profile.capacity_loads)), lambda c: _body(profile, c))
