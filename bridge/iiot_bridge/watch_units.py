"""iiot-watch: how a metric is shown: its unit, its label, its value text and its sparkline.

The unit of every metric comes from the one metric table (``iiot_codec``'s ``ROWS`` and
``LINK_ROWS``: the air metrics and the link metrics RSSI/SNR); this module only knows how
each *unit tag* is written on a screen and how much change a sparkline of that unit needs
before it fills its height. A metric the table does not know is shown as its bare payload.
"""

from __future__ import annotations

from dataclasses import dataclass

from iiot_codec import BY_NAME, LINK_ROWS

SPARK_CHARS = "▁▂▃▄▅▆▇█"
LINK_METRICS = frozenset(str(name) for _id, name, *_rest in LINK_ROWS)
# Units of counters, durations and sizes: node health and gateway statistics, not readings
# of the environment.
HEALTH_UNITS = frozenset({"count", "seconds", "bytes"})
# Words of metric names as a person writes them in a label.
WORDS = {"rssi": "RSSI", "snr": "SNR", "crc": "CRC", "mic": "MIC", "ack": "ACK", "acks": "ACKs"}
# A last word naming the unit (``interval_s``): the value shows the unit already.
UNIT_WORDS = frozenset({"s", "ms"})


@dataclass(frozen=True)
class UnitStyle:
    """How values of one unit tag are written, and the least span a sparkline covers."""

    symbol: str
    min_span: float  # absolute, in the unit; or a fraction of the value when relative
    relative: bool = False


UNIT_STYLES: dict[str, UnitStyle] = {
    "celsius": UnitStyle("°C", 1.0),
    "percent": UnitStyle("%", 2.0),
    "hPa": UnitStyle("hPa", 1.0),
    "ohms": UnitStyle("Ω", 0.05, relative=True),
    "volt": UnitStyle("V", 0.1),
    "dBm": UnitStyle("dBm", 10.0),
    "dB": UnitStyle("dB", 5.0),
    "count": UnitStyle("", 1.0),
    "seconds": UnitStyle("s", 1.0),
    "bytes": UnitStyle("B", 0.05, relative=True),
}
_UNKNOWN = UnitStyle("", 0.01, relative=True)


def unit_tag(metric: str) -> str | None:
    """The metric's unit tag from the codec's table, or None for a metric it does not know."""
    row = BY_NAME.get(metric)
    if row is None:
        return None
    _id, _name, unit, *_rest = row  # a row of the table: id, name, unit tag, decimals, signed
    return str(unit)


def style(metric: str) -> UnitStyle:
    tag = unit_tag(metric)
    if tag is None:
        return _UNKNOWN
    return UNIT_STYLES.get(tag, UnitStyle(tag, 0.01, relative=True))


def is_health(metric: str) -> bool:
    """Counters, sizes and durations (node health, gateway statistics) and unknown metrics."""
    tag = unit_tag(metric)
    return tag is None or tag in HEALTH_UNITS


def label(name: str) -> str:
    """``packets_received`` -> ``packets received``; ``rssi`` -> ``RSSI``; ``interval_s`` ->
    ``interval``."""
    words = [w for w in name.split("_") if w]
    if len(words) > 1 and words[-1] in UNIT_WORDS:
        words.pop()
    return " ".join(WORDS.get(w, w) for w in words)


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 172800:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def age(seconds: float | None) -> str:
    """How long ago, compact: ``4 s``, ``3m 20s``; ``-`` when unknown."""
    return "-" if seconds is None else _duration(max(0.0, seconds))


def value_text(metric: str, text: str) -> str:
    """The payload with its unit: ``27.60 °C``, ``122.4 kΩ``, ``40.0 KiB``, ``5m 02s``."""
    tag = unit_tag(metric)
    try:
        value = float(text)
    except ValueError:
        return text
    if tag == "ohms" and abs(value) >= 1000:
        return f"{value / 1000:.1f} kΩ" if abs(value) < 1e6 else f"{value / 1e6:.2f} MΩ"
    if tag == "bytes" and abs(value) >= 1024:
        return f"{value / 1024:.1f} KiB"
    if tag == "seconds" and value >= 120:
        return _duration(value)
    symbol = style(metric).symbol
    return f"{text} {symbol}" if symbol else text


def sparkline(values: list[float], width: int = 20, min_span: float = 0.0) -> str:
    """The last ``width`` values as block characters.

    They are scaled between their min and max, but over at least ``min_span`` (centred on
    them), so noise smaller than that span stays in the middle rows instead of filling the
    whole height.
    """
    values = values[-width:] if width > 0 else []
    if not values:
        return ""
    low, high = min(values), max(values)
    if high - low < min_span:
        mid = (low + high) / 2
        low, high = mid - min_span / 2, mid + min_span / 2
    if high == low:
        return SPARK_CHARS[len(SPARK_CHARS) // 2] * len(values)
    steps = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[round((v - low) / (high - low) * steps)] for v in values)


def metric_sparkline(metric: str, values: list[float], width: int) -> str:
    """A sparkline on the scale the metric's unit calls for."""
    st = style(metric)
    span = st.min_span
    if st.relative and values:
        span = st.min_span * max(abs(v) for v in values[-width:])
    return sparkline(values, width, span)
