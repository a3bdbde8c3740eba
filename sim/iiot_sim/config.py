"""Simulation settings, and the config.json each simulated board gets (the firmware contract)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from iiot_codec.settings import RADIO_SETTINGS, SETTINGS

from .channel import ChannelConfig

# The firmware's own defaults (one table for the boards, the tools and this simulator).
_FW: dict[str, Any] = {row[0]: row[1] for row in SETTINGS}
_FW_RADIO: dict[str, Any] = {row[0]: row[1] for row in RADIO_SETTINGS}

GATEWAY_ID = 2
NODE1_DEVICES = ("bme680@0x77", "sht3x@0x44", "ssd1306@0x3c")
NODE2_DEVICES = ("sht3x@0x44", "ssd1306@0x3c")
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{32}$")


class ConfigError(ValueError):
    """Invalid simulation settings."""


def node1_ids(count: int) -> list[int]:
    """Node ids of ``count`` node1 instances: 1, then 3, 4, ... (2 is the gateway)."""
    if count < 1 or count > 250:
        raise ConfigError(f"node count must be 1..250, got {count}")
    return [1] + list(range(3, count + 2))


def gateway_ids(count: int) -> list[int]:
    """Node ids of ``count`` node2 gateways: 2, then 100, 101, ..."""
    return [GATEWAY_ID] + list(range(100, 99 + count))


def check_key(key: str) -> str:
    if not _HEX_KEY.match(key):
        raise ConfigError("a MIC key is 32 hex characters (16 bytes)")
    return key.lower()


def parse_keys(text: str) -> dict[int, str]:
    """Keys from "1=00112233...,3=..." or a JSON object {"1": "0011..."}."""
    text = text.strip()
    if not text:
        return {}
    items: list[tuple[Any, Any]]
    if text.startswith("{"):
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ConfigError("keys JSON must be an object")
        items = list(raw.items())
    else:
        pairs = (part.split("=", 1) for part in text.split(",") if part.strip())
        items = [(p[0], p[1] if len(p) > 1 else "") for p in pairs]
    keys: dict[int, str] = {}
    for node, key in items:
        keys[int(node)] = check_key(str(key).strip())
    return keys


def read_key_file(path: Path) -> dict[int, str]:
    """A key file: JSON object, or lines "NODE=HEX" / "NODE HEX" (# comments allowed)."""
    text = path.read_text()
    if text.lstrip().startswith("{"):
        return parse_keys(text)
    keys: dict[int, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        node, key = re.split(r"[=\s:]+", line, maxsplit=1)
        keys[int(node)] = check_key(key.strip())
    return keys


@dataclass
class RadioConfig:
    """The `radio` section of config.json (micropython-lib lora_cfg names)."""

    freq_khz: int = _FW_RADIO["freq_khz"]
    sf: int = _FW_RADIO["sf"]
    bw: str = _FW_RADIO["bw"]
    coding_rate: int = _FW_RADIO["coding_rate"]
    output_power: int = _FW_RADIO["output_power"]
    preamble_len: int = _FW_RADIO["preamble_len"]
    crc_en: bool = _FW_RADIO["crc_en"]
    syncword: int = _FW_RADIO["syncword"]
    tx_ant: str = _FW_RADIO["tx_ant"]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class NodeSpec:
    """One simulated board."""

    node_id: int
    role: str  # "node1" or "node2"
    devices: tuple[str, ...] = ()
    env: dict[str, float] = field(default_factory=dict)  # sensor truth (see mp/_simhw/env.py)
    uid: str | None = None  # hex machine.unique_id()
    radio_present: bool = True
    antenna: str = "PA_BOOST"  # the output pin the module wires to the antenna
    config: dict[str, Any] = field(default_factory=dict)  # extra/overriding config.json keys
    heapsize: str | None = None  # [fwheap hook] this board's -X heapsize (None: SimConfig's)

    def __post_init__(self) -> None:
        if self.role not in ("node1", "node2"):
            raise ConfigError(f"role must be node1 or node2, got {self.role!r}")
        if not 1 <= self.node_id <= 255:
            raise ConfigError(f"node id must be 1..255, got {self.node_id}")
        if not self.devices:
            self.devices = NODE1_DEVICES if self.role == "node1" else NODE2_DEVICES


@dataclass
class SimConfig:
    """Everything a simulation run needs; `Simulation(SimConfig(...))` runs it."""

    nodes: int = 1  # node1 instances (ids 1, 3, 4, ...); node2 is id 2
    gateways: int = 1  # node2 instances: ids 2, then 100, 101, ...; node1s assigned in turn
    specs: list[NodeSpec] | None = None  # explicit boards instead of `nodes`
    interval_s: int = _FW["interval_s"]
    interval_ms: int | None = None
    keys: dict[int, str] = field(default_factory=dict)  # node id -> 32 hex chars
    radio: RadioConfig = field(default_factory=RadioConfig)
    channel: ChannelConfig = field(default_factory=ChannelConfig)
    max_retries: int = _FW["max_retries"]
    stats_interval_s: int = _FW["stats_interval_s"]
    queue_len: int = _FW["queue_len"]
    duty_cycle_pct: float | None = None
    extra_config: dict[str, Any] = field(default_factory=dict)  # merged into every config.json
    heapsize: str = "128K"
    workdir: Path | None = None  # per-node state directories; a temporary one if None
    repo: Path | None = None  # the project checkout (firmware); found automatically if None
    shared_dir: Path | None = None  # the boards' shared modules and codec (default repo/shared)
    capture: Path | None = None  # node2's serial output, as written
    pty_link: Path | None = None  # symlink to the pty slave
    report: Path | None = None  # JSON report written at stop
    precompile: bool = True  # run the stand-ins from .mpy like the board's packages
    # Run the firmware as deployed (main.py source, other modules .mpy, one flat tree) rather
    # than straight from the repo's sources (which compiles them in the board's heap).
    deploy_tree: bool = True
    # [fwheap hook] Run each board on the 32-bit port with its firmware frozen in, as an image
    # would (paths.frozen_binary, `make frozen-heap`): main.py alone, MICROPYPATH .frozen first.
    frozen: bool = False
    restart_on_wdt: bool = True  # a missed watchdog feed resets the board
    heap_sample_ms: int = 500
    # Boards power up at independent moments: each node1 starts after a seeded random delay
    # up to one report interval (at most this many ms), so their schedules are not aligned.
    stagger_max_ms: int = 3000
    seed: int = 1

    def boards(self) -> list[NodeSpec]:
        if self.specs is not None:
            ids = [s.node_id for s in self.specs]
            if len(set(ids)) != len(ids):
                raise ConfigError("node ids must be distinct")
            if not any(s.role == "node2" for s in self.specs):
                raise ConfigError("at least one node2 (gateway) is needed")
            return list(self.specs)
        if not 1 <= self.gateways <= 50:
            raise ConfigError(f"gateway count must be 1..50, got {self.gateways}")
        specs = [NodeSpec(g, "node2") for g in gateway_ids(self.gateways)]
        specs += [NodeSpec(n, "node1") for n in node1_ids(self.nodes)]
        return specs

    def gateway_ids(self) -> list[int]:
        return [s.node_id for s in self.boards() if s.role == "node2"]

    def gateway_id(self) -> int:
        """The first gateway (the one most tools talk to)."""
        return self.gateway_ids()[0]

    def assigned_gateways(self, node: int) -> tuple[int, int]:
        """(gateway_id, backup_gateway_id) of a node1: the gateways in turn, the next one
        as its backup (0: none, with a single gateway)."""
        gws = self.gateway_ids()
        node1s = sorted(s.node_id for s in self.boards() if s.role == "node1")
        i = node1s.index(node) if node in node1s else 0
        primary = gws[i % len(gws)]
        return primary, (gws[(i + 1) % len(gws)] if len(gws) > 1 else 0)

    def board_config(self, spec: NodeSpec) -> dict[str, Any]:
        """The config.json for one board, per the firmware contract."""
        keys = {n: check_key(k) for n, k in self.keys.items()}
        primary, backup = self.assigned_gateways(spec.node_id)
        cfg: dict[str, Any] = {
            "node_id": spec.node_id,
            "gateway_id": primary,
            "backup_gateway_id": backup,
            "interval_s": self.interval_s,
            "interval_ms": self.interval_ms,
            "radio": self.radio.as_dict(),
            "key": keys.get(spec.node_id) if spec.role == "node1" else None,
            "keys": {str(n): k for n, k in keys.items()} if spec.role == "node2" else {},
            "duty_cycle_pct": self.duty_cycle_pct,
            "max_retries": self.max_retries,
            "stats_interval_s": self.stats_interval_s,
            "queue_len": self.queue_len,
        }
        cfg.update(self.extra_config)
        cfg.update(spec.config)
        return cfg
