"""One simulated board: its firmware process and its I2C bus process.

The firmware runs unchanged as ``micropython -X heapsize=128K <tree>/main.py`` with its
state directory as working directory; MICROPYPATH is the board's sys.path with the
stand-in `machine` (and the SX1276 register model behind its SPI) in front. The bus
process (mp/_simhw/busd.py) holds the board's sensors and display; it outlives firmware
resets, like sensors on a board whose MCU resets.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import BUSD, MP_DIR, SimSetupError, frozen_standins, micropython_binary, mplib_dir

log = logging.getLogger(__name__)

OutputHandler = Callable[[int, bytes], None]  # (node, raw chunk)
LineHandler = Callable[[int, str], None]  # (node, line without newline)
ExitHandler = Callable[[int, int, bool], None]  # (node, return code, expected)


def _die_with_parent() -> None:
    # Children are killed if the orchestrator dies, so no board outlives a crashed run.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BusProcess:
    """The board's device models, serving I2C transactions over UDP."""

    def __init__(self, micropython: str, env: dict[str, str], cwd: Path) -> None:
        self.port = free_udp_port()
        env = dict(env, IIOT_SIM_BUS_PORT=str(self.port))
        self.log_path = cwd / "bus.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (open for the process's life)
        self._proc = subprocess.Popen(
            [micropython, "-X", "heapsize=2M", str(BUSD)],
            stdin=subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            preexec_fn=_die_with_parent,
        )
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                out = self.log_path.read_text(errors="replace")
                raise SimSetupError(f"bus process exited: {out.strip()}")
            with contextlib.suppress(TimeoutError):
                self.control({"op": "ping"}, timeout=0.2)
                return
        raise SimSetupError("bus process did not answer")

    def control(self, msg: dict[str, object], timeout: float = 2.0) -> None:
        """Send a control message (unplug, plug, fail, env, dump) and wait for the ack."""
        import json

        with self._lock:
            self._sock.settimeout(timeout)
            self._sock.sendto(b"K" + json.dumps(msg).encode(), ("127.0.0.1", self.port))
            while True:
                try:
                    data, _ = self._sock.recvfrom(16)
                except TimeoutError as e:
                    raise TimeoutError("bus process did not acknowledge") from e
                if data == b"k":
                    return

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.kill()
        with contextlib.suppress(Exception):
            self._proc.wait(timeout=5)
        with contextlib.suppress(Exception):
            self._proc.stdin.close()  # type: ignore[union-attr]
        self._log.close()
        self._sock.close()


class FirmwareProcess:
    """The firmware in the MicroPython unix port; stdout is read by a thread."""

    def __init__(
        self,
        node: int,
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        on_output: OutputHandler,
        on_line: LineHandler,
        on_exit: ExitHandler,
    ) -> None:
        self.node = node
        self._on_output = on_output
        self._on_line = on_line
        self._on_exit = on_exit
        self._expected_exit = False
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            preexec_fn=_die_with_parent,
            bufsize=0,
        )
        self.pid = self.proc.pid
        self._reader = threading.Thread(target=self._read, name=f"node{node}-out", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        pending = b""
        while True:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            self._on_output(self.node, chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._on_line(self.node, line.rstrip(b"\r").decode(errors="replace"))
        if pending:
            self._on_line(self.node, pending.decode(errors="replace"))
        code = self.proc.wait()
        self._on_exit(self.node, code, self._expected_exit)

    def write_stdin(self, data: bytes) -> bool:
        """Bytes for the firmware's stdin (node2's serial input). False if it is gone."""
        stdin = self.proc.stdin
        if stdin is None or self.proc.poll() is not None:
            return False
        try:
            stdin.write(data)
            stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            return False
        return True

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """Stop the process at once, like pulling the board's reset line."""
        self._expected_exit = True
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)
        self._reader.join(timeout=5)
        if self.proc.stdin is not None:
            with contextlib.suppress(Exception):
                self.proc.stdin.close()


@dataclass(frozen=True)
class ScriptRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def results(self) -> list[Any]:
        """The JSON values the script printed on lines starting with '='."""
        return [json.loads(line[1:]) for line in self.stdout.splitlines() if line[:1] == "="]


def run_script(
    micropython: str,
    source: str,
    firmware_dirs: list[Path],
    env: dict[str, str] | None = None,
    heapsize: str = "128K",
    timeout: float = 60,
    standins: Path = MP_DIR,
    cwd: Path | None = None,
) -> ScriptRun:
    """Run MicroPython source as a board would: the stand-ins (their sources, or
    paths.compile_standins' output), the given firmware directories and micropython-lib on
    the path; IIOT_SIM_* from ``env`` only; ``cwd`` is the board's /flash (files it writes)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("IIOT_SIM_")}
    full["MICROPYPATH"] = micropython_path(standins, firmware_dirs, micropython)
    full.update(env or {})
    proc = subprocess.run(
        [micropython, "-X", f"heapsize={heapsize}", "-c", source],
        env=full,
        cwd=cwd,
        stdin=subprocess.DEVNULL,  # a script never waits for a terminal
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return ScriptRun(proc.returncode, proc.stdout, proc.stderr)


def micropython_path(
    standins: Path,
    firmware_dirs: list[Path],
    micropython: str | None = None,
    frozen_firmware: bool = False,
) -> str:
    """MICROPYPATH as the board's sys.path ('', .frozen, /flash, /flash/lib) with the
    stand-ins first: `machine` (a file) and _simhw, frozen into the 32-bit build when it is
    up to date (".frozen" goes first then), else from ``standins``; then the firmware, then
    micropython-lib's real lora and ssd1306 (`make micropython`; SimSetupError if missing).

    ``frozen_firmware``: ``micropython`` is a board's image (paths.frozen_binary) with the
    firmware and micropython-lib frozen in: `.frozen` first, the stand-ins, nothing else."""
    binary = micropython or micropython_binary()
    if frozen_firmware:
        return os.pathsep.join([".frozen", str(standins), *(str(d) for d in firmware_dirs)])
    if frozen_standins(binary):
        front = [".frozen", str(standins)]
    else:
        log.debug("%s: no up-to-date frozen stand-ins, running them from files", binary)
        front = [str(standins), ".frozen"]
    parts = [*front, *(str(d) for d in firmware_dirs), str(mplib_dir())]
    return os.pathsep.join(parts)
