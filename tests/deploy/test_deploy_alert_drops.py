"""The "readings dropped at a node" alert rule (issue 11), and what every rule must keep
consistent: its Flux look-back and Grafana's time range, the steps its annotations name, and
its row in docs/operations.md."""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any

from deploy_paths import REPO

from iiot_codec import metrics
from iiot_codec.settings import SETTINGS

RULE = "iiot-readings-dropped"
DROPS = "queue_drops"
DEFAULTS = {row[0]: row[1] for row in SETTINGS}
UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
FIRMWARE = {"node1": REPO / "node1" / "sensor_node.py", "node2": REPO / "node2" / "gateway_node.py"}


def steps(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["refId"]: step for step in rule["data"]}


def query_of(rule: dict[str, Any]) -> str:
    (query,) = [s["model"]["query"] for s in rule["data"] if s["datasourceUid"] != "__expr__"]
    return str(query)


def lookback_s(query: str) -> int:
    match = re.search(r"range\(start: -(\d+)([smhd]), stop: now\(\)\)", query)
    assert match, query
    return int(match.group(1)) * UNITS_S[match.group(2)]


def test_the_drops_rule_alerts_on_any_increase_of_the_nodes_drop_counter(
    alert_rules: dict[str, dict[str, Any]], schema: ModuleType
) -> None:
    rule = alert_rules[RULE]
    query = query_of(rule)
    # The metric the nodes report, a measurement the bridge writes, counted as drops.
    assert f'r._measurement == "{DROPS}"' in query
    assert DROPS in schema.MEASUREMENTS and schema.MEASUREMENTS[DROPS]["unit"] == "count"
    assert metrics.BY_NAME[DROPS][metrics.UNIT] == "count"
    for node, source in FIRMWARE.items():  # node1's queue and node2's ring both report it
        assert f'"{DROPS}":' in source.read_text(encoding="utf-8"), node
    # Per node, not the bridge's own points; the increase, not the raw total, so a counter
    # that is high since the last boot does not keep alerting, and increase() (non-negative
    # steps) so a reboot's fall back to 0 never reads as drops.
    assert f'r.node != "{schema.BRIDGE_NODE}"' in query
    assert "|> increase()" in query and "difference(" not in query
    assert query.index("increase()") < query.index("last()")
    assert '"node"' in query.split("keep(columns:")[1]
    # Any increase fires, at once, and a node without two reports in the window does not.
    by_ref = steps(rule)
    threshold = by_ref[rule["condition"]]["model"]
    assert threshold["type"] == "threshold"
    evaluator = threshold["conditions"][0]["evaluator"]
    assert (evaluator["type"], evaluator["params"]) == ("gt", [0])
    assert by_ref[threshold["expression"]]["model"]["type"] == "reduce"
    assert rule["for"] == "0s"
    assert rule["noDataState"] == "OK" and rule["execErrState"] == "Error"
    assert rule["labels"]["severity"] == "critical"
    # The window holds several STATS reports at the boards' default interval, and is short
    # enough that the alert clears within the hour after the last drop.
    window = lookback_s(query)
    assert 2 * DEFAULTS["stats_interval_s"] <= window <= 3600
    summary, description = rule["annotations"]["summary"], rule["annotations"]["description"]
    assert "{{ $labels.node }}" in summary and "readings" in summary
    assert f"{window // 60} minutes" in summary
    assert "node1" in description and "node2" in description and "reboot" in description


def test_every_rule_looks_back_as_far_as_its_query_and_names_its_own_steps(
    alert_rules: dict[str, dict[str, Any]],
) -> None:
    assert RULE in alert_rules
    for uid, rule in alert_rules.items():
        (source,) = [s for s in rule["data"] if s["datasourceUid"] != "__expr__"]
        # Grafana fetches this much; the Flux range must ask for no more and no less.
        assert source["relativeTimeRange"] == {"from": lookback_s(query_of(rule)), "to": 0}, uid
        refs = set(steps(rule))
        for text in rule["annotations"].values():
            named = set(re.findall(r"\$values\.(\w+)\.", text))
            assert named <= refs, (uid, named - refs)


def test_the_operations_guide_lists_every_rule(alert_rules: dict[str, dict[str, Any]]) -> None:
    guide = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    section = guide.split("## Dashboards and alert rules", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip() for line in section.splitlines() if line.startswith("| ")}
    assert {rule["title"] for rule in alert_rules.values()} <= rows
