#!/usr/bin/env python3
"""Generate the Grafana dashboards and alert rules that compose.yaml provisions.

Run `make dashboards` (or this script) after editing; the output is committed and the tests
regenerate it and fail when it differs, so JSON in git never drifts from this code.

    python deploy/dashboards/generate.py [--out DIR]

DIR defaults to deploy/grafana; dashboards go to DIR/dashboards/*.json and the alert rules to
DIR/provisioning/alerting/iiot-rules.yaml.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import gauge, stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

# This directory holds the sibling modules; put it first when imported from elsewhere.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import alerts  # noqa: E402
import flux  # noqa: E402

from iiot_bridge import catalog  # noqa: E402
from iiot_bridge.model import GATEWAY_DUPLICATES, GATEWAY_FRAMES, Kind  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "grafana"

NODE_LABEL = "${__field.labels.node}"
GATEWAY_LABEL = "${__field.labels.bridge} ${__field.labels.gateway}"

# Units and titles come from the bridge's metric table (iiot_bridge.catalog).
ENVIRONMENT = [m.name for m in catalog.METRICS if m.environment]
SUPPLY = "voltage"
# node2's gateway counters, as totals since its boot (and uptime).
GATEWAY_TOTALS = ["packets_received", "crc_errors", "duplicates", "auth_failures", "queue_drops"]
GATEWAY_INCREASES = ["packets_received", "duplicates", "auth_failures"]
# Every other metric a node reports (node health, settings in effect) gets a time series in
# the "Node health" row, so a metric added to the codec shows up without an edit here.
SHOWN_ELSEWHERE = {*ENVIRONMENT, SUPPLY, *GATEWAY_TOTALS, "uptime"}
HEALTH = [
    m.name for m in catalog.METRICS if m.kind == Kind.READING and m.name not in SHOWN_ELSEWHERE
]


def unit(metric: str) -> str:
    return catalog.info(metric).grafana_unit


def title(metric: str) -> str:
    return catalog.info(metric).title


# Colour bands. A None value is Grafana's "base" step, everything below the first limit.
TEMPERATURE_STEPS = [(None, "green"), (30, "yellow"), (35, "red")]
# Same band as the humidity alert rule, so the panel turns red when the alert would fire.
HUMIDITY_STEPS = [(None, "red"), (30, "green"), (70, "red")]
RSSI_STEPS = [(None, "red"), (-80, "yellow"), (-60, "green")]
SNR_STEPS = [(None, "red"), (-7, "yellow"), (0, "green")]
PLAIN_STEPS = [(None, "green")]
COUNTER_STEPS = [(None, "green"), (1, "orange")]
TOTAL_STEPS = {
    "crc_errors": COUNTER_STEPS,
    "auth_failures": COUNTER_STEPS,
    "queue_drops": COUNTER_STEPS,
}
STEPS = {"temperature": TEMPERATURE_STEPS, "humidity": HUMIDITY_STEPS}


def thresholds(steps: list[tuple[float | None, str]]) -> dash.ThresholdsConfig:
    return (
        dash.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def last_value() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


class Ids:
    """Stable panel ids in build order, so regenerating gives byte-identical JSON."""

    def __init__(self) -> None:
        self._next = itertools.count(1)

    def __call__(self) -> int:
        return next(self._next)


def stat_panel(ids: Ids, title: str, query: str, unit: str, steps: list, width: int = 6):
    return (
        stat.Panel()
        .id(ids())
        .title(title)
        .datasource(flux.DATASOURCE)
        .with_target(flux.Flux(query).ref_id("A"))
        .unit(unit)
        .display_name(NODE_LABEL)
        .thresholds(thresholds(steps))
        .reduce_options(last_value())
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
        .span(width)
        .height(5)
    )


def series_panel(ids: Ids, title: str, query: str, unit: str, label: str = NODE_LABEL, width=12):
    return (
        timeseries.Panel()
        .id(ids())
        .title(title)
        .datasource(flux.DATASOURCE)
        .with_target(flux.Flux(query).ref_id("A"))
        .unit(unit)
        .display_name(label)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .span(width)
        .height(8)
    )


def gauge_panel(ids: Ids, title: str, measurement: str, lo: float, hi: float, steps: list):
    return (
        gauge.Panel()
        .id(ids())
        .title(title)
        .datasource(flux.DATASOURCE)
        .with_target(flux.Flux(flux.latest(measurement)).ref_id("A"))
        .unit(unit(measurement))
        .display_name(NODE_LABEL)
        .min(lo)
        .max(hi)
        .thresholds(thresholds(steps))
        .reduce_options(last_value())
        .show_threshold_markers(True)
        .span(12)
        .height(6)
    )


def node_variable() -> dash.QueryVariable:
    return (
        dash.QueryVariable("node")
        .label("Node")
        .datasource(flux.DATASOURCE)
        .query(flux.node_variable())
        .multi(True)
        .include_all(True)
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
        # Re-query on load so a node that joined since is listed without editing anything.
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def base(title: str, uid: str, description: str) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["iiot", "generated"])
        .time("now-6h", "now")
        .refresh("30s")
        .timezone(common.TimeZoneBrowser)
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .with_variable(node_variable())
    )


def environment() -> dash.Dashboard:
    ids = Ids()
    board = base(
        "Environment",
        "iiot-environment",
        "Sensor readings of every node. Generated by deploy/dashboards/generate.py.",
    ).with_row(dash.Row("Now").id(ids()))
    for metric in ENVIRONMENT:
        steps = STEPS.get(metric, PLAIN_STEPS)
        board.with_panel(stat_panel(ids, title(metric), flux.latest(metric), unit(metric), steps))
    board.with_row(dash.Row("Compared over time").id(ids()))
    for metric in [*ENVIRONMENT, SUPPLY]:
        width = 24 if metric == SUPPLY else 12
        query = flux.series(metric)
        board.with_panel(series_panel(ids, title(metric), query, unit(metric), width=width))
    return board


def link_and_gateway() -> dash.Dashboard:
    ids = Ids()
    board = base(
        "Link and gateway",
        "iiot-link-gateway",
        "Radio link quality, gateway counters and the bridge's delivery backlog. "
        "Generated by deploy/dashboards/generate.py.",
    ).with_row(dash.Row("Radio link").id(ids()))
    board.with_panel(gauge_panel(ids, title("rssi"), "rssi", -120, -30, RSSI_STEPS))
    board.with_panel(gauge_panel(ids, title("snr"), "snr", -20, 15, SNR_STEPS))
    for metric in ("rssi", "snr"):
        query = flux.series(metric)
        board.with_panel(series_panel(ids, f"{title(metric)} over time", query, unit(metric)))

    board.with_row(dash.Row("Gateway (node2)").id(ids()))
    for metric in GATEWAY_TOTALS:
        steps = TOTAL_STEPS.get(metric, PLAIN_STEPS)
        query = flux.counter_total(metric)
        board.with_panel(stat_panel(ids, title(metric), query, unit(metric), steps, 4))
    uptime = flux.counter_total("uptime")
    board.with_panel(stat_panel(ids, title("uptime"), uptime, unit("uptime"), PLAIN_STEPS, 4))
    for metric in GATEWAY_INCREASES:
        query = flux.counter_increase(metric)
        board.with_panel(series_panel(ids, f"{title(metric)} per interval", query, "none"))
    board.with_panel(series_panel(ids, "CRC error rate", flux.crc_error_rate(), "percent"))

    board.with_row(dash.Row("Bridge").id(ids()))
    board.with_panel(
        series_panel(
            ids,
            "Bridge delivery backlog",
            flux.backlog_series(),
            "none",
            label="${__field.labels.bridge} ${__field.labels.sink}",
            width=24,
        )
    )

    # Several gateways (issue 15): what each heard, how much of it another one stored too,
    # and per node how many gateways heard each frame it stored (overlap).
    board.with_row(dash.Row("Gateways").id(ids()))
    for measurement, name in (
        (GATEWAY_FRAMES, "Frames heard per gateway"),
        (GATEWAY_DUPLICATES, "Cross-gateway duplicates per gateway"),
    ):
        query = flux.gateway_increase(measurement)
        board.with_panel(series_panel(ids, name, query, "none", label=GATEWAY_LABEL, width=8))
    overlap = flux.series("gateways")
    board.with_panel(series_panel(ids, "Gateways per stored frame", overlap, "none", width=8))

    board.with_row(dash.Row("Node health").id(ids()))
    for metric in HEALTH:
        query = flux.series(metric)
        board.with_panel(series_panel(ids, title(metric), query, unit(metric)))
    return board


DASHBOARDS: dict[str, Callable[[], cogbuilder.Builder[model.Dashboard]]] = {
    "environment.json": environment,
    "link-and-gateway.json": link_and_gateway,
}


def render_dashboard(builder: cogbuilder.Builder[model.Dashboard]) -> str:
    # Sorted keys and a final newline: stable bytes for the byte-identical test and clean diffs.
    return json.dumps(builder.build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def write_all(out: Path) -> list[Path]:
    written = []
    for name, make in DASHBOARDS.items():
        path = out / "dashboards" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_dashboard(make()), encoding="utf-8")
        written.append(path)
    path = out / "provisioning" / "alerting" / alerts.FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(alerts.render(), encoding="utf-8")
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output root (deploy/grafana)"
    )
    args = parser.parse_args(argv)
    for path in write_all(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
