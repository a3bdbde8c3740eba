"""The earlier (Rust) gateway firmware's JSON lines, mapped onto the contract's metrics.

    {"ts":194500,"id":"N2","n1":{"t":28.3,"h":52.6,"g":461235},"n2":{"t":27.8,"h":48.8},
     "sig":{"rssi":-32,"snr":12},"sts":{"rx":1,"err":0}}

``n1``/``n2`` are node1's and node2's readings (members may be missing), ``sig`` the link
quality of node1's frame, ``sts`` node2's packet and CRC-error counters. The same topics
and measurements result as from the new firmware, so users can switch without touching
their dashboards. These lines carry no frame counter and expect no acknowledgement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from iiot_codec import CodecError, format_value

from ..model import LINK, READING

# Short member names of the earlier firmware -> metric names.
READING_KEYS = {"t": "temperature", "h": "humidity", "g": "gas_resistance", "p": "pressure"}
NODE_KEYS = {"n1": "node1", "n2": "node2"}
STATS_KEYS = {"rx": "packets_received", "err": "crc_errors"}
LINK_KEYS = {"rssi": "rssi", "snr": "snr"}


@dataclass(frozen=True, slots=True)
class LegacyLine:
    """(node, metric, value, kind) tuples, all stamped with the receive time."""

    values: tuple[tuple[str, str, float, int], ...]


def is_legacy(obj: dict[str, Any]) -> bool:
    return any(k in obj for k in ("n1", "n2", "sig", "sts"))


def _number(section: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CodecError("value", f"earlier-firmware line: {section}.{key} is not a number")
    return float(value)


def _section(obj: dict[str, Any], name: str) -> dict[str, Any]:
    section = obj.get(name, {})
    if not isinstance(section, dict):
        raise CodecError("format", f"earlier-firmware line: {name} is not an object")
    return section


def from_legacy_object(obj: dict[str, Any]) -> LegacyLine:
    values: list[tuple[str, str, float, int]] = []

    def add(node: str, metric: str, section: str, key: str, raw: Any, kind: int) -> None:
        value = _number(section, key, raw)
        format_value(metric, value)  # CodecError("value") when out of the metric's range
        values.append((node, metric, value, kind))

    for section_name, node in NODE_KEYS.items():
        for key, raw in _section(obj, section_name).items():
            if key in READING_KEYS:
                add(node, READING_KEYS[key], section_name, key, raw, READING)
    for key, raw in _section(obj, "sig").items():
        if key in LINK_KEYS:
            add("node1", LINK_KEYS[key], "sig", key, raw, LINK)
    for key, raw in _section(obj, "sts").items():
        if key in STATS_KEYS:
            add("node2", STATS_KEYS[key], "sts", key, raw, READING)
    return LegacyLine(tuple(values))
