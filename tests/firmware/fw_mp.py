"""Helpers to run firmware modules in the real MicroPython unix port.

Scripts print one JSON object per result line prefixed with ``=``; ``MpRunner.run`` returns
those objects. Hardware is faked only at the bus/radio boundary: tests/firmware/mp holds the
small stand-ins (machine, lora, ssd1306) the firmware imports by plain name.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FAKES = HERE / "mp"


class MpError(AssertionError):
    pass


class MpRunner:
    def __init__(self, binary: str, cwd: Path) -> None:
        self.binary = binary
        self.cwd = cwd

    def path(self, node: str = "node1", fakes: bool = True) -> str:
        dirs = ([str(FAKES)] if fakes else []) + [str(REPO / node), str(REPO / "shared")]
        return ":".join(dirs)

    def run(
        self,
        source: str,
        node: str = "node1",
        heap: str = "128K",
        env: dict[str, str] | None = None,
        timeout: float = 60,
        stdin: str | None = None,
    ) -> list[dict]:
        script = self.cwd / "_test_script.py"
        script.write_text(source)
        proc = self.raw([str(script)], node=node, heap=heap, env=env, timeout=timeout, stdin=stdin)
        if proc.returncode != 0:
            raise MpError(f"micropython exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return [json.loads(line[1:]) for line in proc.stdout.splitlines() if line.startswith("=")]

    def raw(
        self,
        args: list[str],
        node: str = "node1",
        heap: str = "128K",
        env: dict[str, str] | None = None,
        timeout: float = 60,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ)
        full_env["MICROPYPATH"] = self.path(node)
        full_env.update(env or {})
        return subprocess.run(
            [self.binary, "-X", f"heapsize={heap}", *args],
            cwd=self.cwd,
            env=full_env,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
        )
