"""Write a node's config.json (docs/hardware.md, "Configuration") from command-line values.

`make flash-node1` / `make flash-node2` call it with the make variables NODE_ID, GATEWAY_ID,
FREQ_KHZ, SF, BW, POWER, INTERVAL, KEY, KEYS, DUTY_CYCLE (an ignored secrets.mk can set
KEY/KEYS). Only the values given are written; the firmware fills in the defaults.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HEX_KEY = re.compile(r"^[0-9a-fA-F]{32}$")


class ConfigError(ValueError):
    """A value the firmware would refuse."""


def _key(text: str) -> str:
    if not HEX_KEY.match(text):
        raise ConfigError("a key is 32 hex digits (16 bytes)")
    return text.lower()


def _keys(text: str) -> dict[str, str]:
    """ "1=<hex>,3=<hex>" -> {"1": "<hex>", "3": "<hex>"} (node2's per-node keys)."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, sep, key = item.partition("=")
        if not sep or not node.isdigit() or not 1 <= int(node) <= 255:
            raise ConfigError(f"bad KEYS entry {item!r}: use NODE=HEX,NODE=HEX")
        out[str(int(node))] = _key(key)
    return out


def build(args: argparse.Namespace) -> dict[str, object]:
    cfg: dict[str, object] = {"node_id": args.node_id}
    if args.gateway_id is not None:
        cfg["gateway_id"] = args.gateway_id
    if args.interval is not None:
        if args.interval < 1:
            raise ConfigError("INTERVAL is in seconds, at least 1")
        cfg["interval_s"] = args.interval
    if args.key:
        cfg["key"] = _key(args.key)
    if args.keys:
        cfg["keys"] = _keys(args.keys)
    if args.duty_cycle is not None:
        cfg["duty_cycle_pct"] = args.duty_cycle
    radio: dict[str, object] = {}
    if args.freq_khz is not None:
        radio["freq_khz"] = args.freq_khz
        if args.duty_cycle is None and 863000 <= args.freq_khz <= 870000:
            cfg["duty_cycle_pct"] = 1  # EU868: 1 % duty cycle unless told otherwise
    if args.sf is not None:
        if not 7 <= args.sf <= 12:
            raise ConfigError("SF is 7..12")
        radio["sf"] = args.sf
    if args.bw is not None:
        radio["bw"] = args.bw
    if args.power is not None:
        if not -4 <= args.power <= 17:
            raise ConfigError("POWER is -4..17 dBm (the driver mis-sets 20 dBm on PA_BOOST)")
        radio["output_power"] = args.power
    if radio:
        cfg["radio"] = radio
    return cfg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--node-id", type=int, required=True)
    p.add_argument("--gateway-id", type=int)
    p.add_argument("--interval", type=float, help="report interval, seconds")
    p.add_argument("--freq-khz", type=int)
    p.add_argument("--sf", type=int)
    p.add_argument("--bw")
    p.add_argument("--power", type=int)
    p.add_argument("--key", help="this node's MIC key, 32 hex digits")
    p.add_argument("--keys", help="node2: NODE=HEX,... keys of the nodes it hears")
    p.add_argument("--duty-cycle", type=float, help="airtime budget, percent per hour")
    p.add_argument("-o", "--output", type=Path, required=True)
    args = p.parse_args(argv)
    if not 1 <= args.node_id <= 255:
        print("error: NODE_ID is 1..255", file=sys.stderr)
        return 2
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
