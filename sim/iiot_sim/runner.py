"""Run the simulated boards: `Simulation(SimConfig(...))`, as a context manager or start/stop.

    with Simulation(SimConfig(nodes=2, interval_ms=300)) as sim:
        print(sim.serial_path)          # node2's serial port (a pty)
        sim.run(30)                     # or do things: sim.unplug(1, 0x44), sim.restart(2)
    report = sim.report()               # also written to config.report at stop

Each board gets a state directory (its /flash: config.json, the counter file, console.log,
bus.log, display_3c.bin, truth.log) under the work directory.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .channel import Hub, Transmission
from .config import NodeSpec, SimConfig
from .display import DisplayImage
from .events import EventLog
from .paths import (
    MP_DIR,
    SimSetupError,
    build_firmware_tree,
    compile_standins,
    frozen_binary,
    frozen_main,
    micropython_binary,
    micropython_info,
    repo_root,
)
from .process import BusProcess, FirmwareProcess, micropython_path
from .report import build_report
from .serialport import PtyPort

log = logging.getLogger(__name__)

RESET_CAUSES = {"power": 1, "reset": 2, "wdt": 3}


class Simulation:
    """node2 and one or more node1 running their real firmware over a simulated channel."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self.specs: dict[int, NodeSpec] = {s.node_id: s for s in self.config.boards()}
        self.gateways = self.config.gateway_ids()
        self.gateway = self.gateways[0]  # the first gateway: serial_path, write_serial
        self.events = EventLog({n: s.role for n, s in self.specs.items()}, self.gateway)
        self.hub = Hub(self.config.channel)
        self.serial: PtyPort | None = None  # the first gateway's
        self.serials: dict[int, PtyPort] = {}  # every gateway's serial port
        self.workdir: Path = Path()
        self._own_workdir = False
        self._micropython = ""
        self._repo = Path()
        self._shared = Path()
        self._standins = Path()
        self._frozen: dict[str, str] = {}  # [fwheap hook] role -> its frozen interpreter
        self._bus: dict[int, BusProcess] = {}
        self._fw: dict[int, FirmwareProcess] = {}
        self._capture: IO[bytes] | None = None
        self._jobs: queue.Queue[tuple[Callable[[], Any], queue.Queue[Any]] | None] = queue.Queue()
        self._supervisor: threading.Thread | None = None
        self._started = False
        self._stopped = False
        self._report: dict[str, Any] | None = None
        self._t_start = 0.0

    # ---- lifetime ------------------------------------------------------------------------
    def start(self) -> Simulation:
        if self._started:
            raise RuntimeError("simulation already started")
        self._started = True
        cfg = self.config
        self._micropython = micropython_binary()
        self._repo = Path(cfg.repo).resolve() if cfg.repo else repo_root()
        self._shared = Path(cfg.shared_dir).resolve() if cfg.shared_dir else self._repo / "shared"
        for spec in self.specs.values():
            main = self._repo / spec.role / "main.py"
            if not main.exists():
                raise SimSetupError(f"firmware not found: {main}")
            if cfg.frozen:  # [fwheap hook] built (make frozen-heap) before any board starts
                self._frozen[spec.role] = str(frozen_binary(spec.role, self._repo))
        if cfg.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="iiot-sim-"))
            self._own_workdir = True
        else:
            self.workdir = Path(cfg.workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
        standins = self.workdir / "_standins"
        if cfg.precompile:
            self._standins = compile_standins(standins)
        else:
            self._standins = MP_DIR
        self.hub.on_wdt_expired = self._wdt_expired
        self.hub.on_reset_request = self._reset_requested
        self.hub.start()
        self._supervisor = threading.Thread(target=self._supervise, name="sim-supervisor")
        self._supervisor.start()
        if cfg.capture is not None:
            self._capture = open(cfg.capture, "wb")  # noqa: SIM115 (closed in stop)
        for gw in self.gateways:
            link = cfg.pty_link
            if link is not None and gw != self.gateway:
                link = Path(f"{link}-{gw}")
            self.serials[gw] = PtyPort(functools.partial(self._host_input, gateway=gw), link)
        self.serial = self.serials[self.gateway]
        self._t_start = time.monotonic()
        try:
            # The gateways first, so they listen when the first sensor node reports; the
            # others at independent (seeded) moments within one report interval.
            import random

            rng = random.Random(cfg.seed)
            interval = cfg.interval_ms or cfg.interval_s * 1000
            span = min(interval, cfg.stagger_max_ms) / 1000.0
            t0 = time.monotonic()
            delays = {n: (0.0 if n in self.gateways else rng.uniform(0, span)) for n in self.specs}
            for node in sorted(self.specs, key=lambda n: (delays[n], n)):
                time.sleep(max(0.0, t0 + delays[node] - time.monotonic()))
                self._call(functools.partial(self._spawn, node, "power"))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> dict[str, Any]:
        """Stop every board, write the report (config.report) and return it."""
        if self._stopped:
            return self.report()
        self._stopped = True
        if self._supervisor is not None:
            self._call(self._kill_all)
            self._jobs.put(None)
            self._supervisor.join(timeout=10)
        self.hub.stop()
        self._report = self._build_report()
        for port in self.serials.values():
            port.close()
        if self._capture is not None:
            self._capture.close()
        if self.config.report is not None:
            Path(self.config.report).write_text(json.dumps(self._report, indent=1) + "\n")
        if self._own_workdir and not os.environ.get("IIOT_SIM_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)
        return self._report

    def __enter__(self) -> Simulation:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self, duration: float | None, stop: threading.Event | None = None) -> dict[str, Any]:
        """Let the boards run for ``duration`` seconds (None: until ``stop`` is set)."""
        deadline = None if duration is None else time.monotonic() + duration
        stop = stop or threading.Event()
        while not stop.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            stop.wait(0.2 if left is None else min(0.2, left))
        return self.report()

    # ---- what tests and tools use --------------------------------------------------------
    @property
    def serial_path(self) -> str:
        """The first gateway's serial port (serial_path_of for the others)."""
        if self.serial is None:
            raise RuntimeError("simulation not started")
        return self.serial.path

    def serial_path_of(self, gateway: int) -> str:
        if gateway not in self.serials:
            raise RuntimeError(f"no gateway {gateway} (or not started)")
        return self.serials[gateway].path

    def state_dir(self, node: int) -> Path:
        return self.workdir / f"node{node}"

    def report(self) -> dict[str, Any]:
        """The report so far (the final one after stop)."""
        if self._report is not None:
            return self._report
        return self._build_report()

    def elapsed(self) -> float:
        return self.events.now()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``predicate()`` holds (checked on every console line), up to timeout."""
        deadline = time.monotonic() + timeout
        with self.events.changed:
            while True:
                if predicate():
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.events.changed.wait(min(left, 0.25))

    def restart(self, node: int, down_s: float = 0.0, cause: str = "reset") -> None:
        """Reset a board (its MCU: sensors keep their state); off for ``down_s`` seconds."""

        def job() -> None:
            self._kill(node)
            if down_s > 0:
                time.sleep(down_s)
            self._spawn(node, cause)

        self._call(job)

    def power_off(self, node: int) -> None:
        self._call(lambda: self._kill(node))

    def power_on(self, node: int) -> None:
        self._call(lambda: self._spawn(node, "power"))

    def alive(self, node: int) -> bool:
        fw = self._fw.get(node)
        return fw is not None and fw.alive()

    def unplug(self, node: int, addr: int, bus: int = 1) -> None:
        self._bus[node].control({"op": "unplug", "addr": addr, "bus": bus})

    def plug(self, node: int, addr: int, bus: int = 1) -> None:
        self._bus[node].control({"op": "plug", "addr": addr, "bus": bus})

    def fail_i2c(self, node: int, addr: int, n: int = 1, errno: int = 5, bus: int = 1) -> None:
        """The next ``n`` transactions with ``addr`` fail with OSError(errno)."""
        self._bus[node].control({"op": "fail", "addr": addr, "n": n, "errno": errno, "bus": bus})

    def set_env(self, node: int, **values: float) -> None:
        """Change the truth a board's sensors measure (temperature, humidity, pressure, gas,
        drift)."""
        self._bus[node].control(dict(values, op="env"))

    def press(self, node: int, pin: str = "PC13") -> None:
        self.hub.control(node, {"op": "press", "pin": pin})

    def display(self, node: int, addr: int = 0x3C) -> DisplayImage:
        """What the board's OLED shows now."""
        self._bus[node].control({"op": "dump"})
        return DisplayImage.load(self.state_dir(node) / f"display_{addr:02x}.bin")

    def inject(self, payload: bytes, **kwargs: Any) -> Transmission:
        """Put a raw packet on the air (see Hub.inject)."""
        return self.hub.inject(payload, **kwargs)

    def write_serial(self, data: bytes, gateway: int | None = None) -> None:
        """Bytes for a node2's serial input (the first's by default), as if a host wrote them
        to its pty."""
        self._host_input(data, gateway)

    # ---- internals -----------------------------------------------------------------------
    def _supervise(self) -> None:
        # Every process is started from this thread: children die with their parent thread
        # (PR_SET_PDEATHSIG), and this one lives as long as the simulation.
        while True:
            item = self._jobs.get()
            if item is None:
                return
            fn, reply = item
            try:
                reply.put((True, fn()))
            except BaseException as e:  # handed back to the caller
                reply.put((False, e))

    def _call(self, fn: Callable[[], Any]) -> Any:
        if threading.current_thread() is self._supervisor:
            return fn()
        reply: queue.Queue[Any] = queue.Queue()
        self._jobs.put((fn, reply))
        ok, value = reply.get()
        if not ok:
            raise value
        return value

    def _post(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on the supervisor without waiting (from the hub's or a reader thread)."""
        if not self._stopped:
            self._jobs.put((fn, queue.Queue()))

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_SIM_")}
        env.pop("MICROPYPATH", None)
        env["IIOT_SIM_SEED"] = str(self.config.seed)
        return env

    def _spawn(self, node: int, cause: str) -> None:
        if self._stopped and cause != "power":
            return
        spec = self.specs[node]
        state = self.state_dir(node)
        state.mkdir(parents=True, exist_ok=True)
        if node not in self._bus:
            (state / "config.json").write_text(
                json.dumps(self.config.board_config(spec), indent=1) + "\n"
            )
            bus_env = dict(
                self._base_env(),
                MICROPYPATH=str(MP_DIR),
                IIOT_SIM_NODE=str(node),
                IIOT_SIM_I2C=",".join(spec.devices),
                IIOT_SIM_ENV=json.dumps(spec.env),
                IIOT_SIM_TRUTH=str(state / "truth.log"),
                IIOT_SIM_DISPLAY_DIR=str(state),
            )
            self._bus[node] = BusProcess(self._micropython, bus_env, state)
        binary = self._micropython
        if self.config.frozen:  # [fwheap hook] an image: the firmware is in the interpreter
            binary = self._frozen[spec.role]
            main = frozen_main(self._repo / spec.role, self.workdir / "_fw" / f"{spec.role}-frozen")
            firmware_dirs = []
        elif self.config.deploy_tree:
            main = build_firmware_tree(
                self._repo / spec.role, self._shared, self.workdir / "_fw" / spec.role
            )
            firmware_dirs = [main.parent]
        else:
            main = self._repo / spec.role / "main.py"
            firmware_dirs = [self._repo / spec.role, self._shared]
        env = dict(
            self._base_env(),
            MICROPYPATH=micropython_path(self._standins, firmware_dirs, binary, self.config.frozen),
            IIOT_SIM_NODE=str(node),
            IIOT_SIM_HUB=str(self.hub.port),
            IIOT_SIM_BUS=str(self._bus[node].port),
            IIOT_SIM_RESET_CAUSE=str(RESET_CAUSES.get(cause, 2)),
            IIOT_SIM_HEAP_MS=str(self.config.heap_sample_ms),
            IIOT_SIM_ANT=spec.antenna,
            IIOT_SIM_UID=spec.uid or f"33004f000f51353637{node:06x}",
        )
        if not spec.radio_present:
            env["IIOT_SIM_RADIO"] = "0"
        argv = [
            binary,
            "-X",
            f"heapsize={spec.heapsize or self.config.heapsize}",  # [fwheap hook] per board
            str(main),
        ]
        fw = FirmwareProcess(node, argv, env, state, self._output, self._line, self._exited)
        self._fw[node] = fw
        self.events.boot(node, cause, fw.pid)
        self._console(node, f"--- boot ({cause}) pid {fw.pid}\n".encode())

    def _kill(self, node: int) -> None:
        fw = self._fw.pop(node, None)
        if fw is not None:
            fw.kill()
        self.hub.forget(node)

    def _kill_all(self) -> None:
        for node in list(self._fw):
            self._kill(node)
        for bus in self._bus.values():
            bus.stop()
        self._bus.clear()

    def _console(self, node: int, data: bytes) -> None:
        with open(self.state_dir(node) / "console.log", "ab") as f:
            f.write(data)

    def _output(self, node: int, chunk: bytes) -> None:
        self._console(node, chunk)
        port = self.serials.get(node)
        if port is not None:
            port.write(chunk)
            if self._capture is not None and node == self.gateway:
                with contextlib.suppress(ValueError):
                    self._capture.write(chunk)
                    self._capture.flush()

    def _line(self, node: int, text: str) -> None:
        self.events.line(node, text)

    def _exited(self, node: int, code: int, expected: bool) -> None:
        self.events.exited(node, code, expected)
        if not expected:
            log.warning("node %d exited with code %d", node, code)
            # Like a board at the REPL after an uncaught exception: only its watchdog (if
            # it started one) brings it back, through the hub's missed-feed detection.

    def _host_input(self, data: bytes, gateway: int | None = None) -> None:
        gw = self.gateway if gateway is None else gateway
        fw = self._fw.get(gw)
        if fw is not None and fw.write_stdin(data):
            self.events.host_input(data, gw)

    def _wdt_expired(self, node: int) -> None:
        if self.config.restart_on_wdt:
            self._post(lambda: self._restart_now(node, "wdt"))

    def _reset_requested(self, node: int, reason: str) -> None:
        self._post(lambda: self._restart_now(node, "reset"))

    def _restart_now(self, node: int, cause: str) -> None:
        if self._stopped:
            return
        self._kill(node)
        self._spawn(node, cause)

    def _interpreter(self) -> dict[str, Any] | None:
        if not self._micropython:
            return None
        info = micropython_info(self._micropython)
        return {"path": info.path, "source": info.source, "bits": info.bits, "label": info.label}

    def _build_report(self) -> dict[str, Any]:
        cfg = self.config
        extra = {
            "serial": self.serial.path if self.serial else None,
            "duration_s": round(self.events.now(), 3),
            "heapsize": cfg.heapsize,
            # which interpreter ran the boards: heap figures are the board's only on 32 bits
            "micropython": self._interpreter(),
            "channel": dict(self.hub.stats),
            # what each board's radio was offered: outcome -> count (crc_error: bad packets)
            "channel_by_receiver": {str(n): dict(c) for n, c in self.hub.by_receiver.items()},
            "config": {
                "nodes": sorted(self.specs),
                "gateway": self.gateway,
                "gateways": list(self.gateways),
                "interval_ms": cfg.interval_ms,
                "interval_s": cfg.interval_s,
                "loss": cfg.channel.link.loss,
                "corrupt": cfg.channel.link.corrupt,
                "latency_ms": cfg.channel.link.latency_ms,
                "seed": cfg.seed,
                "keys": sorted(cfg.keys),
                "radio": cfg.radio.as_dict(),
            },
        }
        return build_report(self.events, extra)
