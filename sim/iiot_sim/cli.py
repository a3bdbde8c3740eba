"""`iiot-sim`: run node2 and node1 firmware in the MicroPython unix port over a simulated radio.

    iiot-sim --nodes 2 --interval-ms 500 --loss 0.3 --duration 60 --report report.json

Prints node2's serial port (`serial: /dev/pts/N`) at start; a host such as `iiot-bridge`
opens it. Stops after --duration, or on Ctrl-C / SIGTERM, and then writes --report.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from .airtime import BANDWIDTHS_HZ
from .channel import ChannelConfig, LinkParams
from .config import ConfigError, RadioConfig, SimConfig, parse_keys, read_key_file
from .paths import SimSetupError
from .runner import Simulation


def _mean_jitter(text: str) -> tuple[float, float | None]:
    """ "MEAN" or "MEAN:JITTER" (dB/dBm)."""
    mean, _, jitter = text.partition(":")
    try:
        return float(mean), (float(jitter) if jitter else None)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected MEAN[:JITTER], got {text!r}") from e


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("a probability is 0..1")
    return value


def _link(text: str) -> tuple[int, int, dict[str, float]]:
    """SRC:DST:key=value,... e.g. 1:2:loss=0.5,rssi_dbm=-110"""
    try:
        src, dst, rest = text.split(":", 2)
        fields = {k.strip(): float(v) for k, v in (p.split("=", 1) for p in rest.split(","))}
        return int(src), int(dst), fields
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected SRC:DST:key=value,..., got {text!r}") from e


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="iiot-sim",
        description="Run the node firmware in the MicroPython unix port with simulated "
        "sensors and radio; node2's serial port appears as a pty.",
    )
    sim = SimConfig()  # the defaults: the firmware's own (iiot_codec.settings)
    radio = RadioConfig()
    g = p.add_argument_group("boards")
    g.add_argument("--nodes", type=int, default=1, help="node1 instances (ids 1, 3, 4, ...)")
    g.add_argument("--gateways", type=int, default=1,
                   help="node2 gateways (ids 2, 100, 101, ...; a pty each)")  # fmt: skip
    g.add_argument("--interval-ms", type=int, help="report interval in ms (overrides -s)")
    g.add_argument("--interval-s", type=int, default=sim.interval_s,
                   help=f"report interval, s ({sim.interval_s})")  # fmt: skip
    g.add_argument("--keys", help='MIC keys: "1=<32 hex>,3=..." or a JSON object')
    g.add_argument("--key-file", type=Path, help="MIC keys file (JSON or NODE=HEX lines)")
    g.add_argument("--heapsize", default=sim.heapsize,
                   help=f"MicroPython heap per board ({sim.heapsize})")  # fmt: skip
    g.add_argument("--max-retries", type=int, default=sim.max_retries)
    g.add_argument("--queue-len", type=int, default=sim.queue_len)
    g.add_argument("--stats-interval-s", type=int, default=sim.stats_interval_s)
    g.add_argument("--duty-cycle-pct", type=float)
    g.add_argument("--config", action="append", default=[], metavar="KEY=JSON",
                   help="extra config.json key for every board (repeatable)")  # fmt: skip
    g.add_argument("--workdir", type=Path, help="keep the boards' state directories here")
    g.add_argument("--repo", type=Path, help="project checkout with node1/, node2/, shared/")
    g.add_argument("--shared-dir", type=Path, help="the boards' shared modules (repo/shared)")
    r = p.add_argument_group("radio (config.json `radio`)")
    r.add_argument("--freq-khz", type=int, default=radio.freq_khz)
    r.add_argument("--sf", type=int, default=radio.sf, choices=range(6, 13))
    r.add_argument("--bw", default=radio.bw, choices=sorted(BANDWIDTHS_HZ, key=float))
    r.add_argument("--coding-rate", type=int, default=radio.coding_rate, choices=range(5, 9))
    r.add_argument("--output-power", type=int, default=radio.output_power)
    r.add_argument("--preamble-len", type=int, default=radio.preamble_len)
    c = p.add_argument_group("channel")
    c.add_argument("--loss", type=_probability, default=0.0, help="packet loss probability")
    c.add_argument("--corrupt", type=_probability, default=0.0, help="bit-flip probability")
    c.add_argument("--latency-ms", type=float, default=0.0)
    c.add_argument("--rssi", type=_mean_jitter, default=(-60.0, None),
                   help="RSSI dBm at 14 dBm, MEAN[:JITTER] (use --rssi=-60:2)")  # fmt: skip
    c.add_argument("--snr", type=_mean_jitter, default=(9.0, None), help="SNR dB, MEAN[:JITTER]")
    c.add_argument("--link", type=_link, action="append", default=[],
                   help="per-link SRC:DST:loss=0.5,rssi_dbm=-100 (repeatable)")  # fmt: skip
    c.add_argument("--no-collisions", action="store_true", help="overlapping packets both pass")
    c.add_argument("--seed", type=int, default=1)
    o = p.add_argument_group("run and output")
    o.add_argument("--duration", type=float, help="seconds to run (default: until Ctrl-C)")
    o.add_argument("--report", type=Path, help="write the JSON report here at exit")
    o.add_argument("--capture", type=Path, help="save node2's serial output here")
    o.add_argument("--pty-link", type=Path, help="also make this symlink to the pty")
    o.add_argument("-v", "--verbose", action="store_true")
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    keys: dict[int, str] = {}
    if args.key_file:
        keys.update(read_key_file(args.key_file))
    if args.keys:
        keys.update(parse_keys(args.keys))
    rssi, rssi_jitter = args.rssi
    snr, snr_jitter = args.snr
    base = LinkParams()
    link = LinkParams(
        loss=args.loss,
        corrupt=args.corrupt,
        latency_ms=args.latency_ms,
        rssi_dbm=rssi,
        rssi_jitter_db=base.rssi_jitter_db if rssi_jitter is None else rssi_jitter,
        snr_db=snr,
        snr_jitter_db=base.snr_jitter_db if snr_jitter is None else snr_jitter,
    )
    links = {}
    for src, dst, fields in args.link:
        values = {k: v for k, v in vars(link).items()}
        unknown = set(fields) - set(values)
        if unknown:
            raise ConfigError(f"unknown link fields: {', '.join(sorted(unknown))}")
        values.update(fields)
        links[(src, dst)] = LinkParams(**values)
    extra = {}
    for item in args.config:
        key, _, value = item.partition("=")
        try:
            extra[key] = json.loads(value)
        except ValueError as e:
            raise ConfigError(f"--config {item!r}: value must be JSON") from e
    return SimConfig(
        nodes=args.nodes,
        gateways=args.gateways,
        interval_s=args.interval_s,
        interval_ms=args.interval_ms,
        keys=keys,
        radio=RadioConfig(
            freq_khz=args.freq_khz,
            sf=args.sf,
            bw=args.bw,
            coding_rate=args.coding_rate,
            output_power=args.output_power,
            preamble_len=args.preamble_len,
        ),
        channel=ChannelConfig(
            link=link, links=links, seed=args.seed, collisions=not args.no_collisions
        ),
        max_retries=args.max_retries,
        stats_interval_s=args.stats_interval_s,
        queue_len=args.queue_len,
        duty_cycle_pct=args.duty_cycle_pct,
        extra_config=extra,
        heapsize=args.heapsize,
        workdir=args.workdir,
        repo=args.repo,
        shared_dir=args.shared_dir,
        capture=args.capture,
        pty_link=args.pty_link,
        report=args.report,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="iiot-sim: %(levelname)s %(message)s",
    )
    try:
        config = config_from_args(args)
    except (ConfigError, OSError) as e:
        print(f"iiot-sim: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sim = Simulation(config)
    try:
        sim.start()
    except (SimSetupError, ConfigError, OSError) as e:
        print(f"iiot-sim: {e}", file=sys.stderr)
        return 2
    try:
        print(f"serial: {sim.serial_path}", flush=True)
        for gw in sim.gateways[1:]:
            print(f"serial of gateway {gw}: {sim.serial_path_of(gw)}", flush=True)
        if config.pty_link:
            print(f"link: {config.pty_link}", flush=True)
        sim.run(args.duration, stop)
    finally:
        report = sim.stop()
    totals = report.get("totals", {})
    print(
        "readings {readings}, delivered once {delivered_once}, missing {missing}, "
        "duplicated {duplicated}, dropped {dropped}".format(**totals),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
