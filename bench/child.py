"""A system under test as a child process: its command, log file, liveness and shutdown.

iiot-bridge (bench/bridge_run.py) and the Node-RED peer (bench/nodered.py) are both one, so
the two are started, watched, killed and stopped the same way in every benchmark.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from . import procstat
from .spec import Unavailable


class ChildProcess:
    """``argv`` run in ``cwd`` with ``env``, its output appended to ``log_path``."""

    name = "process"  # in error messages
    tail_lines = 1  # log lines quoted when it dies or times out

    def __init__(self, argv: Sequence[str], log_path: Path, env: dict[str, str], cwd: Path) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd, env=self.env
            )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.running():
            code = None if self.proc is None else self.proc.returncode
            raise Unavailable(f"{self.name} exited with code {code}: {self.log_tail()}")

    def wait_port_open(self, port: str, timeout_s: float = 60.0) -> None:
        """Return once the process (or a child of it) holds ``port`` open."""
        if not procstat.wait_open(self.pid, port, timeout_s, self.check_alive):
            raise Unavailable(f"{self.name} did not open {port} within {timeout_s:.0f} s")

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-self.tail_lines :])[:300] if lines else "no output"

    def kill(self) -> None:
        """SIGKILL: the process dies as in a crash or an OOM kill."""
        if self.proc is not None and self.running():
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not ended within 15 s."""
        if self.proc is not None and self.running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
