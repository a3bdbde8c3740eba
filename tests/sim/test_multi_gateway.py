"""Several gateways (issue 15) on the real firmware in the simulator: three node1, two
node2 with overlapping coverage at 20 % loss, one gateway stopped mid-run.

Each node1 is ACKed by its assigned gateway only; another gateway that hears it forwards
the frame without ACKing (the copies have one counter: the bridge keeps one). A node whose
gateway stays silent fails over to its backup, or queues until a gateway hears it again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gateways_kit import SETTLE_S, two_cells

from iiot_sim.host import AckingHost
from iiot_sim.runner import Simulation

KEYS = {
    1: "000102030405060708090a0b0c0d0e0f",
    3: "f0e0d0c0b0a090807060504030201000",
    4: "00112233445566778899aabbccddeeff",
}


@pytest.fixture(scope="module")
def run() -> Iterator[dict[str, Any]]:
    # STATS every 10 s: they tell gateway 100 node4's counter again after its reboot.
    cfg = two_cells(KEYS, stats_interval_s=10)
    with Simulation(cfg) as sim:
        hosts = {gw: AckingHost(sim.serial_path_of(gw)) for gw in sim.gateways}
        sim.run(15)
        sim.power_off(100)  # node3's only gateway: its readings wait at node3
        t_off = sim.elapsed()
        sim.run(20)
        sim.power_on(100)
        t_on = sim.elapsed()
        sim.run(30)
        for host in hosts.values():
            host.close()
        report = sim.stop()
    yield {"report": report, "t_off": t_off, "t_on": t_on, "config": cfg}


def _forwarded(report: dict[str, Any], gateway: int, src: int) -> list[dict[str, Any]]:
    return [f for f in report["nodes"][str(gateway)]["forwarded"] if f["src"] == src]


def test_each_node_is_assigned_a_gateway_and_a_backup(run: dict[str, Any]) -> None:
    cfg = run["config"]
    assert [cfg.assigned_gateways(n) for n in (1, 3, 4)] == [(2, 100), (100, 2), (2, 100)]


def test_every_reading_reaches_a_gateway_once_whichever_heard_it(run: dict[str, Any]) -> None:
    report = run["report"]
    end = report["duration_s"] - SETTLE_S  # readings still in the air are not due yet
    missing = [m for m in report["delivery"]["missing"] if m[0] in (1, 3, 4)]
    late = [
        m
        for m in missing
        if next(r for r in report["nodes"][str(m[0])]["readings"] if r["rn"] == m[2])["t"] > end
    ]
    assert missing == late
    assert report["totals"]["duplicated"] == 0  # never two counters for one reading
    assert report["totals"]["dropped"] == 0


def test_overlap_is_forwarded_by_both_gateways_and_acked_by_one(run: dict[str, Any]) -> None:
    report = run["report"]
    both = {f["fcnt"] for f in _forwarded(report, 2, 4)} & {
        f["fcnt"] for f in _forwarded(report, 100, 4)
    }
    assert both, "node4 is in both cells: some of its frames reach both hosts"
    assert not _forwarded(report, 100, 1) and not _forwarded(report, 2, 3)  # out of range


def test_a_nodes_readings_wait_while_its_only_gateway_is_off(run: dict[str, Any]) -> None:
    report = run["report"]
    during = [
        r for r in report["nodes"]["3"]["readings"] if run["t_off"] + 2 < r["t"] < run["t_on"] - 2
    ]
    assert during and all(r["queued"] for r in during)
    assert all(r["acked"] for r in during)  # delivered once gateway 100 was back
