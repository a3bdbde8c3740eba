"""Run firmware modules in the real MicroPython unix port as the simulator runs a board
(iiot_sim.process.run_script): the simulator's stand-ins first on MICROPYPATH (machine,
the SX1276 register model), then the node's and the shared modules, then micropython-lib's
real drivers. Hardware is faked only at the bus/radio boundary.

Scripts print one JSON object per result line prefixed with ``=``; ``MpRunner.run``
returns those objects.
"""

from __future__ import annotations

from pathlib import Path

from iiot_sim.process import ScriptRun, run_script

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


class MpError(AssertionError):
    pass


class MpRunner:
    """Scripts in ``cwd`` (the board's /flash: the files the firmware writes)."""

    def __init__(self, binary: str, cwd: Path) -> None:
        self.binary = binary
        self.cwd = cwd

    def script(
        self,
        source: str,
        node: str = "node1",
        heap: str = "128K",
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> ScriptRun:
        dirs = [REPO / node, REPO / "shared"]
        return run_script(self.binary, source, dirs, env, heap, timeout, cwd=self.cwd)

    def run(
        self,
        source: str,
        node: str = "node1",
        heap: str = "128K",
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> list[dict]:
        proc = self.script(source, node, heap, env, timeout)
        if proc.returncode != 0:
            raise MpError(f"micropython exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc.results
