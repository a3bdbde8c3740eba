"""Paths of the programs the benchmarks run, and small process helpers."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from . import REPO

VENV_BIN = Path(sys.executable).parent
MOSQUITTO = "/usr/sbin/mosquitto"
VICTORIA_METRICS = "victoria-metrics"


def venv_tool(name: str) -> str | None:
    """A program installed next to this interpreter, else on PATH, else None."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def micropython() -> str | None:
    return venv_tool("micropython")


def find_program(name: str) -> str | None:
    if os.path.isabs(name):
        return name if os.access(name, os.X_OK) else None
    return shutil.which(name)


def shared_dir() -> Path:
    return REPO / "shared"
