"""iiot-watch's three views as blocks (renderables), for the pager in ``watch_render``.

**overview**: one row per node with its link (RSSI/SNR, frames, retransmissions and loss,
last heard, queued readings), the settings sent down to the nodes (in effect, pending,
refused), the bridge's counters in words, the gateway's counters.
**readings**: each node's sensor values with units and sparklines. **health**: the counters
the nodes report, the gateway's, and every bridge counter with its meaning. Every line is
cut rather than wrapped, and a table too tall for the screen is split into several blocks,
so the pager can count lines.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import TypeVar

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from .stats import INTAKE_COUNTERS
from .watch_state import QUEUE, NodeView, SettingView, WatchState
from .watch_units import age, label, metric_sparkline, value_text

T = TypeVar("T")
PANEL_WIDTH = 40  # a node's panel in the readings view, with its gap
SPARK_WIDTH = 8  # sparklines in the panels
HEALTH_LABEL = 18  # the counter names of the health matrix
HEALTH_CELL = 10  # one node's column in it
WIDE = 110  # from this width the overview shows an RSSI sparkline per node
STATUS_STYLE = {"online": "green", "offline": "red"}
SINK_NAMES = {"mqtt": "MQTT", "influx": "database"}
SINK_MEANING = {
    "delivered_mqtt": "readings the broker acknowledged (values and RSSI/SNR)",
    "delivered_influx": "points the database accepted: readings + bridge backlog points",
}
COUNTER_MEANING = dict(INTAKE_COUNTERS)
# What the summary line explains by itself; every other bridge counter is listed after it.
SUMMARY_COUNTERS = ("lines", "frames", "readings")
LINK_COLUMNS = ("node", "status", "RSSI", "SNR", "frames", "retx", "loss", "heard", "queued")


def node_order(name: str) -> tuple[str, int]:
    """node2 before node10."""
    match = re.fullmatch(r"(.*?)(\d+)", name)
    return (match.group(1), int(match.group(2))) if match else (name, -1)


def status_text(text: str) -> Text:
    return Text(text, style=STATUS_STYLE.get(text, "yellow"))


class Views:
    """Builds the blocks of each view from the state (the caller holds its lock)."""

    def __init__(self, state: WatchState, console: Console) -> None:
        self.state = state
        self.console = console

    def _nodes(self) -> list[tuple[str, NodeView]]:
        return [(n, self.state.nodes[n]) for n in sorted(self.state.nodes, key=node_order)]

    def overview(self, width: int, avail: int, now: float) -> list[RenderableType]:
        nodes = self._nodes()
        if not nodes and not self.state.bridge:
            return [Text("waiting for messages...")]
        blocks: list[RenderableType] = []
        if nodes:
            blocks += self._split(lambda part: self._link_table(part, width, now), nodes, avail)
        settings = [
            Text.assemble((name, "bold"), " ", setting_text(setting, view, now))
            for name, view in nodes
            for setting in view.setting_names()
        ]
        if settings:
            blocks.append(pack([Text("Settings", style="bold"), *settings], width, 2))
        blocks.append(self._bridge_summary())
        for name, view in nodes:
            if view.gateway:
                blocks += self._gateway_compact(name, view, width, avail)
        return blocks

    def _split(self, build: Callable[[list[T]], Table], items: list[T], avail: int) -> list[Table]:
        """``build`` over slices of ``items`` (one line each) so that each table fits."""
        width = self.console.size.width
        rows = max(1, avail - height(self.console, build([]), width))
        return [build(items[i : i + rows]) for i in range(0, len(items), rows)]

    def _link_table(self, nodes: list[tuple[str, NodeView]], width: int, now: float) -> Table:
        since = age(now - self.state.started)
        table = Table(
            title=_line(f"Nodes  (frames, retx and loss since the view started {since} ago)"),
            title_justify="left",
            title_style="bold",
            box=None,
            pad_edge=False,
            header_style="bold underline",
            caption=_line("loss = retx / (frames + retx); queued: readings waiting at the node"),
            caption_justify="left",
        )
        for name in LINK_COLUMNS:
            table.add_column(
                name,
                justify="left" if name in ("node", "status") else "right",
                no_wrap=True,
                overflow="ellipsis",
            )
        wide = width >= WIDE
        if wide:
            table.add_column("RSSI trend", no_wrap=True)
        for name, view in nodes:
            m = view.metrics
            retx, loss, heard = view.retransmissions, view.loss, view.last_heard
            local = view.gateway and not view.over_air
            row: list[str | Text] = [
                Text(name + (" gw" if view.gateway else ""), style="bold"),
                status_text(view.status),
                value_text("rssi", m["rssi"].text) if "rssi" in m else ("local" if local else "-"),
                value_text("snr", m["snr"].text) if "snr" in m else "-",
                str(view.frames),
                "-" if retx is None else f"{retx:.0f}",
                "-" if loss is None else f"{loss * 100:.1f} %",
                "-" if heard is None else age(now - heard) + " ago",
                m[QUEUE].text if QUEUE in m else "-",
            ]
            if wide:
                row.append(metric_sparkline("rssi", m["rssi"].values() if "rssi" in m else [], 20))
            table.add_row(*row)
        return table

    def _bridge_summary(self) -> Text:
        b = self.state.bridge
        text = Text.assemble(("Bridge ", "bold"), status_text(self.state.bridge_status))
        if not b:
            return text.append("  no counters yet (the bridge sends them every few seconds)")
        if "lines" in b and "frames" in b:
            other = _int(b["lines"]) - _int(b["frames"])
            text.append(
                f"  serial lines {b['lines']} = {b['frames']} frames + {other} other (console)"
            )
        sinks = sorted(k.removeprefix("delivered_") for k in b if k.startswith("delivered_"))
        line = f"readings {b['readings']} (all values, RSSI/SNR too)" if "readings" in b else ""
        if sinks:
            delivered = (f"{_sink(s)} {b['delivered_' + s]}{_unit(s)}" for s in sinks)
            line += (" → " if line else "delivered: ") + ", ".join(delivered)
        if line:
            text.append("\n  " + line)
        if sinks:
            backlog = ", ".join(f"{_sink(s)} {b.get('backlog_' + s, '?')}" for s in sinks)
            text.append(f"\n  backlog: {backlog}")
            if "influx" in sinks:
                text.append(" · points = readings + bridge backlog points")
        rest = [
            f"{label(k)} {v}"
            for k, v in sorted(b.items())
            if k not in SUMMARY_COUNTERS and not k.startswith(("delivered_", "backlog_"))
        ]
        if rest:
            text.append("\n  " + " · ".join(rest))
        return text

    def _gateway_compact(self, name: str, view: NodeView, width: int, avail: int) -> list[Table]:
        cells = [
            Text.assemble((label(m), "dim"), " ", value_text(m, view.metrics[m].text))
            for m in view.health()
        ]
        cell = max((len(c) for c in cells), default=1) + 2
        cols = max(1, min(len(cells), width // cell))
        rows = [cells[i : i + cols] for i in range(0, len(cells), cols)]

        def build(part: list[list[Text]]) -> Table:
            grid = Table.grid(padding=(0, 2, 0, 0))
            for _ in range(cols):
                grid.add_column(no_wrap=True, min_width=cell - 2, overflow="ellipsis")
            for row in part:
                grid.add_row(*row)
            return _titled(f"Gateway {name}: the counters it reports", grid)

        return self._split(build, rows, avail)

    def readings(self, width: int, avail: int, now: float) -> list[RenderableType]:
        panels = [self._reading_panel(n, v, now) for n, v in self._nodes() if v.readings()]
        return _grid_rows(panels, width) or [Text("Readings: none yet", style="bold")]

    def _reading_panel(self, name: str, view: NodeView, now: float) -> Table:
        heard = view.last_heard
        title = Text.assemble((name, "bold"), " ", status_text(view.status))
        title.append(f"  heard {age(now - heard)} ago" if heard is not None else "  (retained)")
        table = _panel(title, ("reading", "value", "recent"))
        for metric in view.readings():
            series = view.metrics[metric]
            table.add_row(
                label(metric),
                value_text(metric, series.text),
                metric_sparkline(metric, series.values(), SPARK_WIDTH),
            )
        return table

    def health(self, width: int, avail: int, now: float) -> list[RenderableType]:
        nodes = [(n, v) for n, v in self._nodes() if v.health() and not v.gateway]
        blocks: list[RenderableType] = []
        per = max(1, (width - HEALTH_LABEL) // HEALTH_CELL)
        for i in range(0, len(nodes), per):
            part = nodes[i : i + per]
            metrics = sorted({m for _n, v in part for m in v.health()})
            blocks += self._split(functools.partial(self._health_matrix, part), metrics, avail)
        for name, view in self._nodes():
            if view.gateway:
                blocks += self._gateway_compact(name, view, width, avail)
        if self.state.bridge:
            items = sorted(self.state.bridge.items())
            blocks += self._split(self._bridge_table, items, avail)
        return blocks or [Text("Health: no counters yet", style="bold")]

    def _health_matrix(self, nodes: list[tuple[str, NodeView]], metrics: list[str]) -> Table:
        """The counters the nodes report: one row per counter, one column per node."""
        table = Table(
            title=_line("Node health (bold: grew while watching)"),
            title_justify="left",
            title_style="bold",
            box=None,
            pad_edge=False,
            header_style="bold underline",
        )
        table.add_column("counter", no_wrap=True, min_width=HEALTH_LABEL - 2)
        for name, _view in nodes:
            table.add_column(name, justify="right", no_wrap=True)
        for metric in metrics:
            cells: list[str | Text] = [label(metric)]
            for _name, view in nodes:
                series = view.metrics.get(metric)
                if series is None:
                    cells.append("-")
                else:
                    grew = "bold yellow" if series.increase else ""
                    cells.append(Text(value_text(metric, series.text), style=grew))
            table.add_row(*cells)
        return table

    def _bridge_table(self, items: list[tuple[str, str]]) -> Table:
        table = Table(
            title=Text.assemble(("Bridge ", "bold"), status_text(self.state.bridge_status)),
            title_justify="left",
            box=None,
            pad_edge=False,
            header_style="bold underline",
        )
        every = self.state.bridge
        table.add_column("counter", no_wrap=True, min_width=max(map(len, every)))
        table.add_column(
            "value", justify="right", no_wrap=True, min_width=max(5, *map(len, every.values()))
        )
        table.add_column("meaning", overflow="ellipsis", no_wrap=True, ratio=1)
        for key, value in items:  # the topic's own name, as mosquitto_sub shows it
            table.add_row(key, value, _meaning(key))
        table.add_row(
            "", "", _line("lines = frames + console; readings = values + RSSI/SNR", "dim")
        )
        return table


def setting_text(setting: str, view: NodeView, now: float) -> str:
    """``interval 10 s (pending 30 s for 1m 05s)``: the value the node reports it runs at,
    then what is on its way to it or was refused."""
    series = view.metrics.get(setting)
    text = f"{label(setting)} {value_text(setting, series.text) if series else '-'}"
    st = view.settings.get(setting, SettingView())
    notes = []
    if st.requested == "":
        notes.append("withdrawing")
    elif st.requested is not None:
        notes.append(f"requested {value_text(setting, st.requested)}")
    if st.pending is not None:
        since = "" if st.since is None else f" for {age(now - st.since)}"
        notes.append(f"pending {value_text(setting, str(st.pending))}{since}")
    if st.refused is not None:
        notes.append(f"refused: {st.refused}")
    return f"{text} ({', '.join(notes)})" if notes else text


def pack(fields: list[Text], width: int, indent: int = 0) -> Text:
    """Fields side by side, two spaces apart, on as few lines as ``width`` allows, lines
    after the first indented; a field is never split (one longer than a line is cut)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    used = 0
    for field in fields:
        if used and used + 2 + len(field) > width:
            out.append("\n" + " " * indent)
            used = indent
        elif used:
            out.append("  ")
            used += 2
        out.append_text(field)
        used += len(field)
    return out


def _meaning(counter: str) -> str:
    if counter in COUNTER_MEANING:
        return COUNTER_MEANING[counter]
    if counter in SINK_MEANING:
        return SINK_MEANING[counter]
    sink = counter.split("_", 1)[-1]
    if counter.startswith("backlog_"):
        return f"readings in the outbox, not yet delivered to {SINK_NAMES.get(sink, sink)}"
    if counter.startswith("delivered_"):
        return f"readings delivered to {SINK_NAMES.get(sink, sink)}"
    return ""


def _sink(name: str) -> str:
    return SINK_NAMES.get(name, name)


def _unit(sink: str) -> str:
    return " points" if sink == "influx" else ""


def _int(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0


def _line(text: str, style: str = "") -> Text:
    """One line whatever the width: cut with an ellipsis rather than wrapped."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def _titled(title: str, body: Table) -> Table:
    outer = Table.grid()
    outer.add_row(_line(title, "bold"))
    outer.add_row(body)
    return outer


def _panel(title: Text, columns: tuple[str, str, str]) -> Table:
    """A node's panel: a label, a right-aligned value and a third column, fixed widths."""
    table = Table(
        title=title,
        title_justify="left",
        box=None,
        pad_edge=False,
        padding=(0, 1),
        header_style="bold underline",
    )
    table.add_column(columns[0], no_wrap=True, overflow="ellipsis", max_width=14)
    table.add_column(columns[1], justify="right", no_wrap=True)
    table.add_column(columns[2], no_wrap=True, width=SPARK_WIDTH)
    return table


def _grid_rows(panels: list[Table], width: int) -> list[RenderableType]:
    """Panels side by side, as many as the width holds; one block per row of panels."""
    cols = max(1, width // PANEL_WIDTH)
    rows: list[RenderableType] = []
    for i in range(0, len(panels), cols):
        grid = Table.grid(padding=(0, 2, 0, 0))
        for _ in range(cols):
            grid.add_column(width=PANEL_WIDTH - 2)
        grid.add_row(*panels[i : i + cols])
        rows.append(grid)
    return rows


def height(console: Console, renderable: RenderableType, width: int) -> int:
    options = console.options.update(width=width, height=None)
    return len(console.render_lines(renderable, options, pad=False, new_lines=False))
