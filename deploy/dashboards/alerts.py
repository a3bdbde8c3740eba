"""Grafana alert rules, built with grafana-foundation-sdk and written as a provisioning file.

Each rule is Grafana's usual three steps: A = a Flux query giving one series per node (or sink),
B = Reduce(last) to one number per series, C = Threshold on B. The queries come from flux.py,
but for the drop counter's, which only its rule needs (`drops_increase`). The SDK models rules
in the HTTP API's shape; `render()` rewraps them in the file-provisioning shape (groups with a
folder title and an org id) that Grafana reads from /etc/grafana/provisioning/alerting.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import flux
import yaml
from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as alerting_model
from schema import BRIDGE_NODE

from iiot_codec.settings import SETTINGS

FILE_NAME = "iiot-rules.yaml"
FOLDER = "IIoT"
GROUP = "iiot-telemetry"
EVALUATE_EVERY = "1m"
# Expression steps run inside Grafana; this uid names that pseudo data source.
EXPRESSION_UID = "__expr__"

Evaluator = Literal["gt", "lt", "outside_range"]
NoData = Literal["Alerting", "NoData", "OK"]

# Readings dropped at a node: node1 counts what its full queue had to let go, node2 the
# frames and own readings its full serial ring could not keep. Both report the count in
# their STATS frames as `queue_drops`, a counter that restarts from 0 when the node boots.
DROPS = "queue_drops"
DROPS_LOOKBACK_S = 15 * 60
DEFAULTS = {row[0]: row[1] for row in SETTINGS}
# The nodes send STATS every stats_interval_s: the look-back must hold at least two reports
# at the boards' default for an increase to show between them.
if 2 * DEFAULTS["stats_interval_s"] > DROPS_LOOKBACK_S:
    raise ValueError("the drops rule's look-back holds fewer than two STATS reports")
# How long node1's queue holds readings at the default settings, for the description.
QUEUE_COVERS_MIN = DEFAULTS["queue_len"] * DEFAULTS["interval_s"] // 60


def drops_increase(lookback: str) -> str:
    """How much each node's drop counter grew over `lookback`, robust to reboots.

    increase() sums the non-negative steps between reports; where the counter went down
    (the node rebooted and counts from 0 again) it takes the new value as the step, so a
    reboot never looks like drops, and drops after one still count.
    """
    return (
        f"{flux.source(DROPS, start=lookback, stop='now()')}\n"
        f'  |> filter(fn: (r) => r.node != "{BRIDGE_NODE}")\n'
        "  |> increase()\n"
        "  |> last()\n"
        '  |> keep(columns: ["_time", "_value", "node"])'
    )


def _rule(
    uid: str,
    title: str,
    query: str,
    lookback_s: int,
    evaluator: Evaluator,
    params: list[float],
    for_: str,
    no_data: NoData,
    severity: str,
    summary: str,
    description: str,
) -> alerting.Rule:
    reduce = (
        expr.TypeReduce()
        .ref_id("B")
        .expression("A")
        .reducer("last")
        # Skip null/NaN points rather than letting one gap decide the state.
        .settings(expr.ExprTypeReduceSettings().mode("dropNN"))
    )
    threshold = (
        expr.TypeThreshold()
        .ref_id("C")
        .expression("B")
        .conditions(
            [
                expr.ExprTypeThresholdConditions().evaluator(
                    expr.ExprTypeThresholdConditionsEvaluator().type(evaluator).params(params)
                )
            ]
        )
    )
    window = alerting_model.RelativeTimeRange(from_val=lookback_s, to=0)
    return (
        alerting.Rule(title)
        .uid(uid)
        .condition("C")
        .with_query(
            alerting.Query("A")
            .datasource_uid(flux.DATASOURCE_UID)
            .relative_time_range(window)
            .model(flux.Flux(query).ref_id("A"))
        )
        .with_query(alerting.Query("B").datasource_uid(EXPRESSION_UID).model(reduce))
        .with_query(alerting.Query("C").datasource_uid(EXPRESSION_UID).model(threshold))
        .for_val(for_)
        .no_data_state(no_data)
        # A broken query must be seen, not taken as "all fine".
        .exec_err_state("Error")
        .is_paused(False)
        # Labels are interpolated by Grafana's provisioning (a `$` would be eaten); keep them
        # plain. Annotations are not interpolated, so they may use alert templates.
        .labels({"severity": severity, "team": "iiot"})
        .annotations({"summary": summary, "description": description})
    )


def rules() -> list[alerting.Rule]:
    return [
        _rule(
            "iiot-temperature-high",
            "Temperature above 35 C",
            flux.alert_latest("temperature", "-10m"),
            600,
            "gt",
            [35],
            "5m",
            # A silent node is the "node silent" rule's job; do not alert twice for it.
            "OK",
            "critical",
            "{{ $labels.node }} is at {{ humanize $values.B.Value }} C",
            "Temperature on {{ $labels.node }} has been above 35 C for 5 minutes.",
        ),
        _rule(
            "iiot-humidity-out-of-range",
            "Humidity outside 30..70 %",
            flux.alert_latest("humidity", "-10m"),
            600,
            "outside_range",
            [30, 70],
            "5m",
            "OK",
            "warning",
            "{{ $labels.node }} humidity is {{ humanize $values.B.Value }} %",
            "Relative humidity on {{ $labels.node }} has been outside 30 to 70 % for 5 minutes.",
        ),
        _rule(
            "iiot-node-silent",
            "Node silent for 2 minutes",
            flux.alert_silence("-24h"),
            86400,
            "gt",
            [120],
            # The query already measures the silence; waiting longer would only delay it.
            "0s",
            # No data at all for a day means every node (or the bridge) is gone.
            "Alerting",
            "critical",
            "{{ $labels.node }} silent for {{ humanize $values.B.Value }} s",
            "No point from {{ $labels.node }} reached InfluxDB for more than 2 minutes: "
            "check the node, the radio link, node2's serial cable and the bridge.",
        ),
        _rule(
            "iiot-bridge-backlog-growing",
            "Bridge backlog growing",
            flux.alert_backlog_growth("-10m"),
            600,
            "gt",
            [50],
            "5m",
            # The bridge not running at all is caught by the node-silent rule.
            "OK",
            "warning",
            "{{ $labels.bridge }}: {{ $labels.sink }} outbox grew by "
            "{{ humanize $values.B.Value }} in 10 minutes",
            "Bridge {{ $labels.bridge }} cannot deliver to {{ $labels.sink }} as fast as "
            "readings arrive: "
            "the sink is down or slow. Readings are kept on disk and sent when it returns.",
        ),
        _rule(
            "iiot-readings-dropped",
            "Readings dropped at a node",
            drops_increase(f"-{DROPS_LOOKBACK_S // 60}m"),
            DROPS_LOOKBACK_S,
            "gt",
            # Any drop is a reading lost for good: the one thing custody is there to prevent.
            [0],
            "0s",
            # A node with fewer than two reports in the window has nothing to compare; its
            # silence is the "node silent" rule's job.
            "OK",
            "critical",
            "{{ $labels.node }} dropped {{ humanize $values.B.Value }} readings"
            f" in {DROPS_LOOKBACK_S // 60} minutes",
            "{{ $labels.node }} reported a growing queue_drops counter: readings were lost "
            "for good. On node1 its queue was full: the gateway or the host was away longer "
            f"than the queue covers ({QUEUE_COVERS_MIN} minutes at the default settings). "
            "On node2 its serial ring was full (the host away) for its own readings or for "
            "frames it does not acknowledge, which it cannot tell to wait. Check the bridge, "
            "node2's serial cable and the radio link. A node rebooting (its counter starting "
            "again from 0) does not fire this rule.",
        ),
    ]


def provisioning() -> dict[str, Any]:
    """The rules in Grafana's file-provisioning layout, as plain data."""
    api_rules = json.loads(json.dumps([r.build() for r in rules()], cls=JSONEncoder))
    file_rules = []
    for rule in api_rules:
        # Folder, org and group come from the enclosing group in the file format.
        for key in ("folderUID", "orgID", "ruleGroup"):
            rule.pop(key, None)
        file_rules.append(rule)
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": GROUP,
                "folder": FOLDER,
                "interval": EVALUATE_EVERY,
                "rules": file_rules,
            }
        ],
    }


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (the Flux queries) as readable `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)

HEADER = (
    "# Generated by deploy/dashboards/generate.py: do not edit by hand, run `make dashboards`.\n"
    "# Grafana unified alerting rules, provisioned from files (see docs/operations.md).\n"
)


def render() -> str:
    body = yaml.dump(provisioning(), Dumper=_Dumper, sort_keys=False, width=100)
    return HEADER + body
