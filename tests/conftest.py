"""Root pytest configuration: paths every test area shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def micropython_bin() -> str:
    """The MicroPython unix port installed in the virtualenv next to this interpreter."""
    import shutil
    import sys

    candidate = Path(sys.executable).parent / "micropython"
    found = str(candidate) if candidate.exists() else shutil.which("micropython")
    if not found:
        raise RuntimeError("the micropython unix port is missing: run `make install`")
    return found


os.environ.setdefault("PYTHONHASHSEED", "0")
