"""The committed dashboards and alert rules: regenerated identically, holding the panels asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from deploy_paths import ALERT_RULES, DASHBOARDS_DIR, DEPLOY, GRAFANA, PROVISIONING

GENERATOR = DEPLOY / "dashboards" / "generate.py"


def test_generator_reproduces_the_committed_files(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(GENERATOR), "--out", str(tmp_path)], check=True)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert [str(p) for p in generated] == [
        "dashboards/environment.json",
        "dashboards/link-and-gateway.json",
        "provisioning/alerting/iiot-rules.yaml",
    ]
    for rel in generated:
        assert (tmp_path / rel).read_bytes() == (GRAFANA / rel).read_bytes(), (
            f"{rel} is stale: run `make dashboards` and commit the result"
        )
    # No leftover dashboard that the generator no longer makes.
    committed = sorted(p.name for p in DASHBOARDS_DIR.glob("*.json"))
    assert committed == sorted(p.name for p in generated if p.parts[0] == "dashboards")


def panels(board: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [p for p in board["panels"] if p["type"] == kind]


def measuring(found: list[dict[str, Any]], measurement: str) -> list[dict[str, Any]]:
    needle = f'r._measurement == "{measurement}"'
    return [p for p in found if any(needle in t["query"] for t in p["targets"])]


def steps(panel: dict[str, Any]) -> list[tuple[float | None, str]]:
    thresholds = panel["fieldConfig"]["defaults"]["thresholds"]
    assert thresholds["mode"] == "absolute"
    return [(s["value"], s["color"]) for s in thresholds["steps"]]


def test_environment_has_a_stat_and_a_time_series_per_metric(dashboards) -> None:
    board = dashboards["Environment"]
    for metric in ("temperature", "humidity", "pressure", "gas_resistance"):
        assert len(measuring(panels(board, "stat"), metric)) == 1, metric
        assert len(measuring(panels(board, "timeseries"), metric)) == 1, metric
    (temperature,) = measuring(panels(board, "stat"), "temperature")
    assert steps(temperature) == [(None, "green"), (30, "yellow"), (35, "red")]
    assert temperature["fieldConfig"]["defaults"]["unit"] == "celsius"


def test_node_variable_lists_nodes_from_the_data(dashboards) -> None:
    for title, board in dashboards.items():
        (variable,) = board["templating"]["list"]
        assert variable["name"] == "node", title
        assert variable["type"] == "query"
        assert 'schema.tagValues(bucket: "telemetry", tag: "node"' in variable["query"]
        assert variable["multi"] and variable["includeAll"]
        # Reloaded with the dashboard, so a new node shows up without an edit.
        assert variable["refresh"] in (1, 2)
    # Per-node panels follow the variable instead of naming nodes.
    env = dashboards["Environment"]
    for panel in panels(env, "stat") + panels(env, "timeseries"):
        query = panel["targets"][0]["query"]
        assert "${node:json}" in query and '"node1"' not in query, panel["title"]


def test_link_dashboard_has_gauges_counters_and_backlog(dashboards) -> None:
    board = dashboards["Link and gateway"]
    (rssi,) = measuring(panels(board, "gauge"), "rssi")
    (snr,) = measuring(panels(board, "gauge"), "snr")
    assert steps(rssi) == [(None, "red"), (-80, "yellow"), (-60, "green")]
    assert rssi["fieldConfig"]["defaults"]["unit"] == "dBm"
    assert snr["fieldConfig"]["defaults"]["unit"] == "dB"
    every = panels(board, "stat") + panels(board, "timeseries")
    for counter in ("packets_received", "crc_errors", "duplicates", "auth_failures"):
        assert measuring(every, counter), counter
    (rate,) = [p for p in every if p["title"] == "CRC error rate"]
    assert rate["fieldConfig"]["defaults"]["unit"] == "percent"
    assert measuring(panels(board, "timeseries"), "bridge_backlog")


def test_panels_use_the_provisioned_datasource(dashboards) -> None:
    source = yaml.safe_load((PROVISIONING / "datasources" / "influxdb.yaml").read_text())
    (datasource,) = source["datasources"]
    for board in dashboards.values():
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"] == {"type": "influxdb", "uid": datasource["uid"]}


def rule_steps(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["refId"]: step for step in rule["data"]}


def threshold(rule: dict[str, Any]) -> tuple[str, list[float]]:
    model = rule_steps(rule)[rule["condition"]]["model"]
    assert model["type"] == "threshold"
    evaluator = model["conditions"][0]["evaluator"]
    return evaluator["type"], evaluator["params"]


def test_alert_rules_say_what_the_issue_asks(alert_rules) -> None:
    rules = alert_rules
    assert set(rules) == {
        "iiot-temperature-high",
        "iiot-humidity-out-of-range",
        "iiot-node-silent",
        "iiot-bridge-backlog-growing",
        "iiot-readings-dropped",
    }
    assert threshold(rules["iiot-temperature-high"]) == ("gt", [35])
    assert rules["iiot-temperature-high"]["for"] == "5m"
    assert threshold(rules["iiot-humidity-out-of-range"]) == ("outside_range", [30, 70])
    assert threshold(rules["iiot-node-silent"]) == ("gt", [120])
    assert rules["iiot-node-silent"]["noDataState"] == "Alerting"
    assert threshold(rules["iiot-bridge-backlog-growing"])[0] == "gt"
    assert (
        'r._measurement == "bridge_backlog"'
        in rule_steps(rules["iiot-bridge-backlog-growing"])["A"]["model"]["query"]
    )


def test_alert_rule_steps_are_wired_up(alert_rules) -> None:
    for uid, rule in alert_rules.items():
        by_ref = rule_steps(rule)
        assert rule["condition"] in by_ref, uid
        for ref, step in by_ref.items():
            model = step["model"]
            assert model["refId"] == ref
            if step["datasourceUid"] == "__expr__":
                assert model["expression"] in by_ref, (uid, ref)
            else:
                assert step["datasourceUid"] == "iiot-influxdb"
                assert step["relativeTimeRange"]["from"] > 0
        # Grafana's provisioning expands $VAR in labels (not annotations): keep them literal.
        assert all("$" not in value for value in rule["labels"].values()), uid
        assert rule["annotations"]["summary"]


def test_alert_file_is_in_provisioning_layout() -> None:
    doc = yaml.safe_load(ALERT_RULES.read_text(encoding="utf-8"))
    assert doc["apiVersion"] == 1
    (group,) = doc["groups"]
    assert group["folder"] and group["name"] and group["interval"] == "1m"
    assert group["orgId"] == 1
    for rule in group["rules"]:
        # The API-only keys must not leak into the file format.
        assert not {"folderUID", "orgID", "ruleGroup"} & set(rule)
