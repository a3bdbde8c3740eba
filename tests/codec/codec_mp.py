"""Run codec operations in batches under the MicroPython unix port and under CPython.

Both interpreters run the same script (mp_codec_batch.py) on the same cases, one process per
batch, so the tests compare the codec's behaviour on the two ports and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BATCH_SCRIPT = HERE / "mp_codec_batch.py"
REPO = HERE.parents[1]
SHARED = REPO / "shared"
CODEC_DIR = SHARED / "iiot_codec"
TIMEOUT_S = 120
# The 32-bit unix port `make micropython` builds from the vendored source: its objects are
# the board's size, so heap figures measured on it are the board's.
MICROPYTHON_32 = REPO / "build" / "micropython" / "ports" / "unix" / "build-32" / "micropython"


def _venv_micropython() -> str | None:
    candidate = Path(sys.executable).parent / "micropython"
    return str(candidate) if candidate.exists() else shutil.which("micropython")


def interpreters() -> dict[str, str]:
    """label -> binary: "unix32" (the 32-bit build) when it exists, and "venv" (the
    virtualenv's 64-bit port). Without the virtualenv's interpreter the codec tests fail
    rather than skip."""
    found: dict[str, str] = {}
    if MICROPYTHON_32.is_file() and os.access(MICROPYTHON_32, os.X_OK):
        found["unix32"] = str(MICROPYTHON_32)
    venv = _venv_micropython()
    if not venv:
        raise RuntimeError("the MicroPython unix port is missing: run `make install`")
    found["venv"] = venv
    return found


INTERPRETERS = interpreters()


def board_like() -> str:
    """The interpreter closest to the board: the 32-bit build when it is there."""
    return "unix32" if "unix32" in INTERPRETERS else "venv"


def pack_float(x: float | int) -> Any:
    """A value as mp_codec_batch.py expects it: floats as the hex of their double bits."""
    if isinstance(x, float):
        return {"d": struct.pack("<d", x).hex()}
    return x


def unpack_float(v: Any) -> Any:
    if isinstance(v, dict) and set(v) == {"d"}:
        return struct.unpack("<d", bytes.fromhex(v["d"]))[0]
    return v


class BatchError(RuntimeError):
    """The batch process itself failed (not a codec error: those are results)."""


def _run(
    argv: list[str], env: dict[str, str], cases: list[dict[str, Any]], workdir: Path
) -> list[dict[str, Any]]:
    workdir.mkdir(parents=True, exist_ok=True)
    cases_path = workdir / "cases.jsonl"
    results_path = workdir / "results.jsonl"
    cases_path.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    results_path.unlink(missing_ok=True)
    proc = subprocess.run(
        [*argv, str(BATCH_SCRIPT), str(cases_path), str(results_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise BatchError(f"{argv[0]} exited {proc.returncode}: {proc.stderr[-2000:]}")
    lines = results_path.read_text(encoding="utf-8").splitlines()
    if len(lines) != len(cases):
        raise BatchError(f"{len(cases)} cases in, {len(lines)} results out")
    return [json.loads(line) for line in lines]


class MicroPython:
    """The unix port with the codec importable from ``codec_root`` (sources or .mpy)."""

    def __init__(self, binary: str, codec_root: Path, workdir: Path, label: str = "") -> None:
        self.binary = binary
        self.label = label
        self.codec_root = codec_root
        self.workdir = workdir
        self._batches = 0

    def env(self) -> dict[str, str]:
        # .frozen keeps the port's frozen modules; nothing else from the host may leak in.
        return {**os.environ, "MICROPYPATH": f".frozen:{self.codec_root}"}

    def run_batch(
        self, cases: Iterable[dict[str, Any]], heapsize: str | None = None
    ) -> list[dict[str, Any]]:
        self._batches += 1
        argv = [self.binary] + (["-X", f"heapsize={heapsize}"] if heapsize else [])
        return _run(argv, self.env(), list(cases), self.workdir / f"batch{self._batches}")

    def exec(self, code: str, heapsize: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [self.binary] + (["-X", f"heapsize={heapsize}"] if heapsize else [])
        return subprocess.run(
            [*argv, "-c", code],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )


def cpython_batch(cases: Iterable[dict[str, Any]], workdir: Path) -> list[dict[str, Any]]:
    """The same batch under CPython, importing the codec from the working tree."""
    env = {**os.environ, "PYTHONPATH": str(SHARED)}
    return _run([sys.executable], env, list(cases), workdir)
