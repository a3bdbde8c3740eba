"""Encode and decode time per frame, on CPython and in the MicroPython unix port.

Both runtimes run the same timing script (bench/mp/codec_timing.py) in a child process, so
neither is measured with the other's imports or heap around it. The best of a few repeats
is kept: the benchmark measures the code, and the minimum is the run least disturbed by
the rest of the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from . import tools
from .figures import Figure, measured, unavailable

SECTION = "Codec and radio"
SCRIPT = Path(__file__).resolve().parent / "mp" / "codec_timing.py"
OPERATIONS = (
    ("encode_us", "encode, node1 frame"),
    ("encode_mic_us", "encode with MIC"),
    ("decode_us", "decode"),
    ("decode_mic_us", "decode and verify MIC"),
)


class TimingError(RuntimeError):
    """The timing script did not run or printed something unexpected."""


def _run(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise TimingError(f"exit code {proc.returncode}: {tail[0]}")
    try:
        timings: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise TimingError(f"unexpected output {proc.stdout[:200]!r}") from exc
    return timings


def _best_of(argv: list[str], env: dict[str, str], repeats: int) -> dict[str, float]:
    runs = [_run(argv, env) for _ in range(repeats)]
    return {name: min(run[name] for run in runs) for name, _ in OPERATIONS}


def figures(iterations: int, repeats: int) -> list[Figure]:
    shared = str(tools.shared_dir())
    runtimes: list[tuple[str, str, list[str] | None, dict[str, str], str]] = []
    cpython_env = {**os.environ, "PYTHONPATH": shared}
    runtimes.append(
        ("cpython", "CPython", [sys.executable, str(SCRIPT), str(iterations)], cpython_env, "")
    )
    mp = tools.micropython()
    mp_env = {**os.environ, "MICROPYPATH": shared}
    mp_argv = [mp, str(SCRIPT), str(iterations)] if mp else None
    runtimes.append(
        ("micropython", "MicroPython unix port", mp_argv, mp_env, "micropython not installed")
    )

    out: list[Figure] = []
    for tag, runtime, argv, env, missing in runtimes:
        try:
            if argv is None:
                raise TimingError(missing)
            result = _best_of(argv, env, repeats)
            error = ""
        except (TimingError, OSError, subprocess.TimeoutExpired) as exc:
            result, error = {}, str(exc)
        for name, label in OPERATIONS:
            key = f"codec.{tag}.{name.removesuffix('_us')}"
            text = f"{label} ({runtime})"
            if error:
                out.append(unavailable(key, SECTION, text, "µs", error))
            else:
                out.append(
                    measured(
                        key, SECTION, text, round(result[name], 2), "µs", iterations=iterations
                    )
                )
    return out
