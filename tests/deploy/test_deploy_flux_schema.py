"""Every Flux query in the dashboards and alert rules names only what the bridge writes."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from deploy_fluxcheck import problems

EXPRESSION_UID = "__expr__"


def dashboard_queries(dashboards: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    queries = []
    for title, board in dashboards.items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                queries.append((f"{title} / {panel['title']}", target["query"]))
        for variable in board["templating"]["list"]:
            queries.append((f"{title} / ${variable['name']}", variable["query"]))
    return queries


def alert_queries(alert_rules: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (f"{uid} / {step['refId']}", step["model"]["query"])
        for uid, rule in alert_rules.items()
        for step in rule["data"]
        if step["datasourceUid"] != EXPRESSION_UID
    ]


def test_there_are_queries_to_check(dashboards, alert_rules) -> None:
    # Guards the tests below against passing on an empty list.
    assert len(dashboard_queries(dashboards)) >= 20
    assert len(alert_queries(alert_rules)) == 5


def test_dashboard_queries_match_the_schema(dashboards, schema: ModuleType) -> None:
    bad = {name: p for name, q in dashboard_queries(dashboards) if (p := problems(q, schema))}
    assert bad == {}


def test_alert_queries_match_the_schema(alert_rules, schema: ModuleType) -> None:
    bad = {name: p for name, q in alert_queries(alert_rules) if (p := problems(q, schema))}
    assert bad == {}


def test_every_written_sensor_metric_is_shown(dashboards, schema: ModuleType) -> None:
    text = "\n".join(q for _, q in dashboard_queries(dashboards))
    shown = {m for m in schema.MEASUREMENTS if f'r._measurement == "{m}"' in text}
    assert shown == set(schema.MEASUREMENTS)


GOOD = (
    'from(bucket: "telemetry")\n'
    "  |> range(start: -1h)\n"
    '  |> filter(fn: (r) => r._measurement == "bridge_backlog" and r._field == "value")\n'
    '  |> filter(fn: (r) => r.sink == "mqtt" and r["unit"] == "count")\n'
    '  |> keep(columns: ["_time", "_value", "sink"])'
)


def test_checker_accepts_a_clean_query(schema: ModuleType) -> None:
    assert problems(GOOD, schema) == []


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (('"bridge_backlog"', '"backlog"'), "unknown measurement 'backlog'"),
        (('r._field == "value"', 'r._field == "val"'), "unknown field 'val'"),
        (('r.sink == "mqtt"', 'r.host == "mqtt"'), "unknown column r.host"),
        (('r["unit"] == "count"', 'r["unit"] == "celsius"'), "unit 'celsius'"),
        (('r.sink == "mqtt"', 'r.sink == "kafka"'), "never has the value 'kafka'"),
        (('"sink"]', '"location"]'), "unknown column 'location'"),
        (('bucket: "telemetry"', 'bucket: "iiot"'), "unknown bucket 'iiot'"),
        # sink is a tag of bridge_backlog only.
        (('"bridge_backlog"', '"temperature"'), "unknown column r.sink"),
        ((' and r._field == "value"', ""), "without a filter on r._field"),
    ],
)
def test_checker_rejects_names_the_bridge_does_not_write(
    schema: ModuleType, change: tuple[str, str], complaint: str
) -> None:
    query = GOOD.replace(*change)
    assert query != GOOD
    assert any(complaint in p for p in problems(query, schema)), problems(query, schema)


def test_checker_allows_pivoted_measurements_only_after_a_pivot(schema: ModuleType) -> None:
    query = (
        'from(bucket: "telemetry") |> range(start: -1h)\n'
        '  |> filter(fn: (r) => (r._measurement == "crc_errors" or'
        ' r._measurement == "packets_received") and r._field == "value")\n'
        '  |> pivot(rowKey: ["_time"], columnKey: ["_measurement"], valueColumn: "_value")\n'
        "  |> map(fn: (r) => ({_time: r._time, _value: r.crc_errors / r.packets_received}))"
    )
    assert problems(query, schema) == []
    unpivoted = query.replace('columnKey: ["_measurement"]', 'columnKey: ["node"]')
    assert "unknown column r.crc_errors" in problems(unpivoted, schema)


def test_schema_agrees_with_the_codec_metric_table(schema: ModuleType) -> None:
    # The bridge writes one measurement per codec metric, named and tagged from this table.
    from iiot_bridge import catalog
    from iiot_codec import metrics

    rows = metrics.ROWS + metrics.LINK_ROWS + catalog.HOST_LINK_ROWS  # [gateways] + gateways
    table = {row[metrics.NAME]: row[metrics.UNIT] for row in rows}
    own = catalog.SELF_METRICS
    readings = {m: d["unit"] for m, d in schema.MEASUREMENTS.items() if m not in own}
    assert readings == table
    # The bridge's own measurements name the bridge (several may write to one database).
    assert schema.MEASUREMENTS["bridge_backlog"]["tags"] == {"node", "unit", "sink", "bridge"}
    assert schema.MEASUREMENTS["bridge_gateway_frames"]["tags"] == {
        "node",
        "unit",
        "gateway",
        "bridge",
    }
