"""The host-side metric table: what people and tools see of each metric.

Derived from the codec's table (``iiot_codec`` ROWS and LINK_ROWS: name, unit tag,
decimals) so that a metric added there needs nothing here: its display name, units for
Home Assistant and Grafana, Home Assistant device class and whether it is a diagnostic
value all follow from its name and unit tag. The override maps below, keyed by metric
name, are the only per-metric facts. Used by Home Assistant discovery (outputs/ha.py) and
the dashboards (deploy/dashboards/).
"""

from __future__ import annotations

from dataclasses import dataclass

from iiot_codec import LINK_ROWS, ROWS

from .model import BACKLOG, GATEWAY_DUPLICATES, GATEWAY_FRAMES, Kind

# unit tag -> (Home Assistant unit, Grafana unit id, Home Assistant device class)
UNITS: dict[str, tuple[str | None, str, str | None]] = {
    "celsius": ("°C", "celsius", "temperature"),
    "percent": ("%", "percent", None),
    "hPa": ("hPa", "pressurehpa", "atmospheric_pressure"),
    "ohms": ("Ω", "ohm", None),
    "volt": ("V", "volt", "voltage"),
    "count": (None, "none", None),
    "seconds": ("s", "s", "duration"),
    "bytes": ("B", "bytes", "data_size"),
    "dBm": ("dBm", "dBm", "signal_strength"),
    "dB": ("dB", "dB", None),
}
# Units of what a node senses in its surroundings; everything else describes the node or
# the link (Home Assistant shows those as diagnostic entities).
ENVIRONMENT_UNITS = frozenset({"celsius", "percent", "hPa", "ohms"})

# Overrides, keyed by metric name.
DEVICE_CLASS: dict[str, str | None] = {
    "humidity": "humidity",  # a percentage that Home Assistant knows as humidity
    # A signal-to-noise ratio is not a signal strength, and Home Assistant has no class for
    # a ratio in dB: explicitly none.
    "snr": None,
}
DISPLAY: dict[str, str] = {"interval_s": "Report interval"}
TITLE: dict[str, str] = {"voltage": "Supply voltage"}
GRAFANA_UNIT: dict[str, str] = {"humidity": "humidity"}
ACRONYMS = {"rssi": "RSSI", "snr": "SNR", "crc": "CRC", "acks": "ACKs", "mic": "MIC"}
UNIT_WORDS = frozenset({"s", "ms"})  # a trailing unit in a name ("interval_s")


def display_name(metric: str) -> str:
    """The name as a person writes it: "Gas resistance", "RSSI", "CRC errors"."""
    if metric in DISPLAY:
        return DISPLAY[metric]
    words = metric.split("_")
    if len(words) > 1 and words[-1] in UNIT_WORDS:
        words = words[:-1]
    out = [ACRONYMS.get(w, w) for w in words]
    first = out[0]
    out[0] = first if first.isupper() else first.capitalize()
    return " ".join(out)


@dataclass(frozen=True)
class MetricInfo:
    name: str
    unit: str  # the codec's unit tag (InfluxDB `unit` tag)
    decimals: int
    kind: Kind  # READING (in frames) or LINK (rssi, snr of a reception)
    display: str
    title: str  # dashboard panel title
    ha_unit: str | None
    ha_device_class: str | None
    grafana_unit: str
    environment: bool  # sensed in the surroundings (else: about the node or the link)


def _info(row: tuple[int | None, str, str, int, bool], kind: Kind) -> MetricInfo:
    name, unit, decimals = row[1], row[2], row[3]
    ha_unit, grafana, device_class = UNITS.get(unit, (unit, "none", None))
    if name in DEVICE_CLASS:
        device_class = DEVICE_CLASS[name]
    display = display_name(name)
    return MetricInfo(
        name=name,
        unit=unit,
        decimals=decimals,
        kind=kind,
        display=display,
        title=TITLE.get(name, display),
        ha_unit=ha_unit,
        ha_device_class=device_class,
        grafana_unit=GRAFANA_UNIT.get(name, grafana),
        environment=kind == Kind.READING and unit in ENVIRONMENT_UNITS,
    )


# Link values the bridge adds to a reception (not in any frame): how many gateways heard
# the stored frame (issue 15; only from a bridge reading several gateways or sharing claims).
HOST_LINK_ROWS: tuple[tuple[int | None, str, str, int, bool], ...] = (
    (None, "gateways", "count", 0, False),
)
METRICS: tuple[MetricInfo, ...] = tuple(_info(r, Kind.READING) for r in ROWS) + tuple(
    _info(r, Kind.LINK) for r in LINK_ROWS + HOST_LINK_ROWS
)
BY_NAME: dict[str, MetricInfo] = {m.name: m for m in METRICS}

# The bridge's own measurements (kind SELF): name -> (unit tag, extra tag keys). Every one
# also has the tag `bridge` (the bridge id: several bridges may write to one database); the
# other extra tag's value is the row's `sink` field.
SELF_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    BACKLOG: ("count", frozenset({"sink", "bridge"})),
    GATEWAY_FRAMES: ("count", frozenset({"gateway", "bridge"})),
    GATEWAY_DUPLICATES: ("count", frozenset({"gateway", "bridge"})),
}
BRIDGE_TAG = "bridge"


def self_tag(metric: str) -> str:
    """The name of a SELF row's extra tag (the one its `sink` field carries)."""
    tags = SELF_METRICS.get(metric, ("count", frozenset({"sink"})))[1] - {BRIDGE_TAG}
    return next(iter(tags), "sink")


def unit_of(metric: str) -> str:
    """The `unit` tag of a metric: the codec's, or the bridge's own measurement's."""
    found = BY_NAME.get(metric)
    if found is not None:
        return found.unit
    return SELF_METRICS.get(metric, ("count", frozenset()))[0]


def info(metric: str) -> MetricInfo:
    """The entry of ``metric``; one made up from the name for a metric the codec's table
    does not have (a newer node's), so nothing downstream needs to special-case it."""
    found = BY_NAME.get(metric)
    if found is not None:
        return found
    return _info((None, metric, "count", 3, True), Kind.READING)
