"""Flux queries for the dashboards and alert rules, and an SDK query type to carry them.

grafana-foundation-sdk ships no InfluxDB query type, so this module adds one the way the SDK's
"custom query type" guide describes: a Dataquery variant plus a builder. Every query goes through
the helpers below so they all read the same bucket, field and node filter.
"""

from __future__ import annotations

from typing import Any, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard
from schema import BRIDGE_NODE, BUCKET, FIELD, MEASUREMENTS

# Must match deploy/grafana/provisioning/datasources/influxdb.yaml.
DATASOURCE_UID = "iiot-influxdb"
DATASOURCE = dashboard.DataSourceRef(type_val="influxdb", uid=DATASOURCE_UID)

# Grafana expands ${node:json} to a JSON list of the selected nodes, which is a valid Flux array.
NODE_FILTER = "contains(value: r.node, set: ${node:json})"


class FluxQuery(cogvariants.Dataquery):
    """A Grafana InfluxDB target in Flux mode: the query text and its data source."""

    def __init__(self, query: str = "", ref_id: str = "", hide: bool | None = None) -> None:
        self.query = query
        self.ref_id = ref_id
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "datasource": DATASOURCE,
            "query": self.query,
            "refId": self.ref_id,
        }
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(query=data.get("query", ""), ref_id=data.get("refId", ""), hide=data.get("hide"))


class Flux(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, query: str) -> None:
        self._internal = FluxQuery(query=query)

    def build(self) -> FluxQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self


def _check(measurement: str) -> str:
    # Fail at generation time, not in a blank Grafana panel, if a name drifts from the schema.
    if measurement not in MEASUREMENTS:
        raise KeyError(f"{measurement!r} is not a measurement the bridge writes")
    return measurement


def source(
    *measurements: str, start: str = "v.timeRangeStart", stop: str = "v.timeRangeStop"
) -> str:
    """from() |> range() |> filter() on the given measurements' `value` field."""
    names = " or ".join(f'r._measurement == "{_check(m)}"' for m in measurements)
    if len(measurements) > 1:
        names = f"({names})"
    return (
        f'from(bucket: "{BUCKET}")\n'
        f"  |> range(start: {start}, stop: {stop})\n"
        f'  |> filter(fn: (r) => {names} and r._field == "{FIELD}")'
    )


def latest(measurement: str) -> str:
    """The last reading of each selected node, labelled by node only."""
    return (
        f"{source(measurement)}\n"
        f"  |> filter(fn: (r) => {NODE_FILTER})\n"
        "  |> last()\n"
        '  |> keep(columns: ["_time", "_value", "node"])'
    )


def series(measurement: str) -> str:
    """One line per selected node, averaged to the panel's resolution."""
    return (
        f"{source(measurement)}\n"
        f"  |> filter(fn: (r) => {NODE_FILTER})\n"
        "  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)\n"
        '  |> keep(columns: ["_time", "_value", "node"])'
    )


def counter_total(measurement: str) -> str:
    """The latest value of a gateway counter (cumulative since the gateway booted)."""
    return f'{source(measurement)}\n  |> last()\n  |> keep(columns: ["_time", "_value", "node"])'


def counter_increase(measurement: str) -> str:
    """Counts added per window. nonNegative drops the negative step a gateway reboot causes."""
    return (
        f"{source(measurement)}\n"
        "  |> aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)\n"
        "  |> difference(nonNegative: true)\n"
        '  |> keep(columns: ["_time", "_value", "node"])'
    )


def crc_error_rate() -> str:
    """Share of frames that failed the CRC, in percent of all frames heard, per window."""
    return (
        f"{source('crc_errors', 'packets_received')}\n"
        "  |> aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)\n"
        "  |> difference(nonNegative: true)\n"
        # Both counters share node and unit, so pivoting on the measurement lines them up.
        '  |> pivot(rowKey: ["_time"], columnKey: ["_measurement"], valueColumn: "_value")\n'
        # A window where only one counter reported has nothing to compare: leave it out.
        "  |> filter(fn: (r) => exists r.crc_errors and exists r.packets_received)\n"
        "  |> map(fn: (r) => ({_time: r._time, node: r.node, _value:\n"
        "      if r.crc_errors + r.packets_received > 0.0\n"
        "      then 100.0 * r.crc_errors / (r.crc_errors + r.packets_received) else 0.0}))"
    )


def backlog_series() -> str:
    """Readings waiting in each bridge's outbox, one line per bridge and sink."""
    return (
        f"{source('bridge_backlog')}\n"
        "  |> aggregateWindow(every: v.windowPeriod, fn: max, createEmpty: false)\n"
        '  |> keep(columns: ["_time", "_value", "bridge", "sink"])'
    )


def gateway_increase(measurement: str) -> str:
    """A bridge's per-gateway counter (frames heard, cross-gateway duplicates) as counts per
    window, one line per gateway; nonNegative drops the step a bridge restart causes."""
    return (
        f"{source(measurement)}\n"
        "  |> aggregateWindow(every: v.windowPeriod, fn: last, createEmpty: false)\n"
        "  |> difference(nonNegative: true)\n"
        '  |> keep(columns: ["_time", "_value", "bridge", "gateway"])'
    )


def node_variable() -> str:
    """Every node that ever wrote a point (within 30 days), so a third node needs no edit."""
    return (
        'import "influxdata/influxdb/schema"\n'
        f'schema.tagValues(bucket: "{BUCKET}", tag: "node",'
        f' predicate: (r) => r.node != "{BRIDGE_NODE}", start: -30d)'
    )


# --- alert rule queries: fixed look-back instead of the dashboard time picker ---------------


def alert_latest(measurement: str, lookback: str) -> str:
    """Per node readings of the last `lookback`, for a Reduce(last) + Threshold pair."""
    return (
        f"{source(measurement, start=lookback, stop='now()')}\n"
        f'  |> filter(fn: (r) => r.node != "{BRIDGE_NODE}")\n'
        '  |> keep(columns: ["_time", "_value", "node"])'
    )


def alert_silence(lookback: str) -> str:
    """Seconds since each node's newest point of any measurement.

    A node that sent nothing for longer than `lookback` drops out of the result; the look-back
    is a day so such a node keeps alerting for that long.
    """
    return (
        f'from(bucket: "{BUCKET}")\n'
        f"  |> range(start: {lookback}, stop: now())\n"
        f'  |> filter(fn: (r) => r._field == "{FIELD}" and r.node != "{BRIDGE_NODE}")\n'
        "  |> last()\n"
        # Newest point per node across its measurements.
        '  |> group(columns: ["node"])\n'
        '  |> sort(columns: ["_time"])\n'
        "  |> last()\n"
        "  |> map(fn: (r) => ({_time: r._time, node: r.node,\n"
        "      _value: float(v: int(v: now()) - int(v: r._time)) / 1000000000.0}))"
    )


def alert_backlog_growth(lookback: str) -> str:
    """How much each sink's backlog grew over `lookback` (last minus first per-minute value)."""
    return (
        f"{source('bridge_backlog', start=lookback, stop='now()')}\n"
        "  |> aggregateWindow(every: 1m, fn: last, createEmpty: false)\n"
        "  |> difference()\n"
        "  |> sum()\n"
        # sum() drops _time; give the single point one so Grafana sees a time series.
        "  |> map(fn: (r) => ({_time: r._stop, bridge: r.bridge, sink: r.sink,\n"
        "      _value: float(v: r._value)}))"
    )
