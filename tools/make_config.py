"""Write a node's config.json (docs/hardware.md, "Configuration") from command-line values.

`make flash-node1` / `make flash-node2` call it with the make variables NODE_ID, GATEWAY_ID,
FREQ_KHZ, SF, BW, POWER, INTERVAL, KEY, KEYS, DUTY_CYCLE (an ignored secrets.mk can set
KEY/KEYS). Only the values given are written; the firmware fills in the defaults.

Defaults, kinds and ranges are the boards' own table (iiot_codec.settings, which the
firmware's config loader uses too), so a value this accepts is one the board applies.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from iiot_codec.settings import RADIO_SETTINGS, SETTINGS

HEX_KEY = re.compile(r"^[0-9a-fA-F]{32}$")
TABLES = {"": SETTINGS, "radio": RADIO_SETTINGS}
# flag -> (make variable, section of config.json ("" = top level), setting name)
FLAGS: dict[str, tuple[str, str, str]] = {
    "node_id": ("NODE_ID", "", "node_id"),
    "gateway_id": ("GATEWAY_ID", "", "gateway_id"),
    "interval": ("INTERVAL", "", "interval_s"),
    "duty_cycle": ("DUTY_CYCLE", "", "duty_cycle_pct"),
    "freq_khz": ("FREQ_KHZ", "radio", "freq_khz"),
    "sf": ("SF", "radio", "sf"),
    "bw": ("BW", "radio", "bw"),
    "power": ("POWER", "radio", "output_power"),
}
EU868_KHZ = (863000, 870000)  # 1 % duty cycle applies unless told otherwise


class ConfigError(ValueError):
    """A value the firmware would refuse."""


def row(section: str, name: str) -> tuple[str, Any, str, Any, Any]:
    for entry in TABLES[section]:
        if entry[0] == name:
            return entry
    raise KeyError(f"{section or 'top level'}: no setting {name!r} in iiot_codec.settings")


def convert(flag: str, text: str) -> Any:
    """``text`` as the setting's kind, checked against its range; ConfigError naming the
    make variable."""
    variable, section, name = FLAGS[flag]
    _, _, kind, low, high = row(section, name)
    base = kind.rstrip("?")
    try:
        if base == "s":
            if text not in low:
                raise ValueError(f"one of {', '.join(low)}")
            return text
        value: int | float = int(text, 10) if base == "i" else float(text)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 868100, not 868100.0, in config.json
    except ValueError as err:
        what = str(err) if base == "s" else ("an integer" if base == "i" else "a number")
        raise ConfigError(f"{variable} must be {what}, got {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{variable} ({name}) must be {low}..{high}, got {text}")
    return value


def _key(text: str) -> str:
    if not HEX_KEY.match(text):
        raise ConfigError("a key is 32 hex digits (16 bytes)")
    return text.lower()


def _keys(text: str) -> dict[str, str]:
    """ "1=<hex>,3=<hex>" -> {"1": "<hex>", "3": "<hex>"} (node2's per-node keys)."""
    _, _, _, low, high = row("", "node_id")
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, sep, key = item.partition("=")
        if not sep or not node.isdigit() or not low <= int(node) <= high:
            raise ConfigError(f"bad KEYS entry {item!r}: use NODE=HEX,NODE=HEX")
        out[str(int(node))] = _key(key)
    return out


def build(args: argparse.Namespace) -> dict[str, object]:
    cfg: dict[str, Any] = {}
    radio: dict[str, Any] = {}
    for flag, (_, section, name) in FLAGS.items():
        text = getattr(args, flag)
        if text is not None:
            (radio if section == "radio" else cfg)[name] = convert(flag, str(text))
    if args.key:
        cfg["key"] = _key(args.key)
    if args.keys:
        cfg["keys"] = _keys(args.keys)
    freq = radio.get("freq_khz")
    if freq is not None and "duty_cycle_pct" not in cfg and EU868_KHZ[0] <= freq <= EU868_KHZ[1]:
        cfg["duty_cycle_pct"] = 1
    if radio:
        cfg["radio"] = radio
    return cfg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, (variable, section, name) in FLAGS.items():
        where = f"{section}.{name}" if section else name
        p.add_argument(
            "--" + flag.replace("_", "-"),
            required=flag == "node_id",
            help=f"{variable}: {where} (firmware default {row(section, name)[1]})",
        )
    p.add_argument("--key", help="KEY: this node's MIC key, 32 hex digits")
    p.add_argument("--keys", help="KEYS: node2's keys of the nodes it hears, NODE=HEX,...")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        cfg = build(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(cfg, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
