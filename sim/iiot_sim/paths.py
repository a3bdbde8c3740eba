"""Where the simulator finds its MicroPython pieces, the firmware and the interpreter.

`make micropython` (mk/micropython.mk) builds the 32-bit unix port into
build/micropython and micropython-lib's drivers into build/mplib/lib; everything here finds
them from the project checkout.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

MP_DIR = Path(__file__).resolve().parent / "mp"  # stand-ins: machine, _simhw
BUSD = MP_DIR / "_simhw" / "busd.py"
# Inside the project's build/ (mk/micropython.mk writes both).
MP_32BIT = Path("micropython", "ports", "unix", "build-32", "micropython")
MPLIB = Path("mplib", "lib")
# The 32-bit port with a board's firmware frozen in (`make frozen-heap`, tools/frozenheap.py).
MP_FROZEN_DIR = Path("micropython", "ports", "unix")
FROZEN_STAMPS = Path("frozen")  # build/frozen/<role>.built: when make frozen-heap last ran


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


def _build_dir() -> Path | None:
    try:
        return repo_root() / "build"
    except SimSetupError:
        return None


@dataclass(frozen=True)
class MicroPython:
    """An interpreter and where it came from; ``bits`` from its sys.maxsize."""

    path: str
    source: str  # "32-bit build", "IIOT_SIM_MICROPYTHON" or "PyPI unix port"
    bits: int

    @property
    def label(self) -> str:
        """For reports next to heap figures: "32-bit" is the board's object size."""
        return f"{self.bits}-bit"


def micropython_binary() -> str:
    """The MicroPython unix port: the 32-bit build (`make micropython`), else
    $IIOT_SIM_MICROPYTHON, else the venv's (PyPI, 64-bit) or one on PATH."""
    return _locate()[0]


def _locate() -> tuple[str, str]:
    build = _build_dir()
    if build is not None and (build / MP_32BIT).is_file():
        return str(build / MP_32BIT), "32-bit build"
    env = os.environ.get("IIOT_SIM_MICROPYTHON")
    if env:
        return env, "IIOT_SIM_MICROPYTHON"
    found = next_to_python("micropython")
    if not found:
        raise SimSetupError(
            "the MicroPython unix port is missing: run `make micropython` "
            "(or install the project's [sim] extra)"
        )
    return found, "PyPI unix port"


def micropython_info(binary: str | None = None) -> MicroPython:
    """Which interpreter the simulator uses (or ``binary``) and whether it is 32-bit, so
    heap figures can be labelled (the board is 32-bit; 64-bit objects are ~1.4x larger)."""
    path, source = _locate()
    if binary is not None and binary != path:
        path, source = binary, "given"
    return MicroPython(path, source, _bits(path))


@functools.lru_cache(maxsize=8)
def _bits(binary: str) -> int:
    out = subprocess.run(
        [binary, "-c", "import sys; print(32 if sys.maxsize < 1 << 32 else 64)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return int(out.stdout.strip())


def frozen_standins(binary: str) -> bool:
    """Whether ``binary`` has the stand-ins' _simhw package frozen in (`make micropython`)
    and no older than their sources: then their code costs the firmware's heap nothing."""
    try:
        built = os.stat(binary).st_mtime
    except OSError:
        return False
    sources = [MP_DIR / "manifest.py", *(MP_DIR / "_simhw").glob("*.py")]
    if any(src.stat().st_mtime > built for src in sources):
        return False
    return _has_frozen(binary, built)


@functools.lru_cache(maxsize=8)
def _has_frozen(binary: str, mtime: float) -> bool:
    return b"_simhw/sx1276.py" in Path(binary).read_bytes()


def mplib_dir() -> Path:
    """micropython-lib's drivers (lora, ssd1306) as mip installs them on the board's
    /flash/lib: $IIOT_SIM_MPLIB, else build/mplib/lib."""
    env = os.environ.get("IIOT_SIM_MPLIB")
    build = _build_dir()
    path = Path(env) if env else (build or Path("build")) / MPLIB
    if not any((path / "lora" / f"__init__.{ext}").is_file() for ext in ("mpy", "py")):
        raise SimSetupError(
            f"micropython-lib's lora and ssd1306 drivers are missing ({path}): "
            "run `make micropython`"
        )
    return path


def mpy_compile(mpy_cross: str, src: Path, out: Path, flags: list[str] | None = None) -> None:
    """``src`` compiled to ``out`` with mpy-cross, through a cache in build/sim-mpy keyed by
    the source, the flags and the compiler, so each run of the simulator (a fresh work
    directory) does not compile the same files again."""
    flags = flags or []
    tool = Path(mpy_cross)
    key = hashlib.sha256(src.read_bytes())
    key.update(repr((flags, str(tool.resolve()), tool.stat().st_mtime)).encode())
    build = _build_dir()
    cached = build / "sim-mpy" / f"{key.hexdigest()[:32]}.mpy" if build is not None else None
    if cached is None or not cached.exists():
        dest = cached or out
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{dest.name}.{_writer()}.tmp")
        subprocess.run([mpy_cross, *flags, "-o", str(tmp), str(src)], check=True)
        tmp.replace(dest)
        if cached is None:
            return
    tmp = out.with_name(f"{out.name}.{_writer()}.tmp")
    shutil.copyfile(cached, tmp)
    tmp.replace(out)


def _writer() -> str:
    """Who writes a temporary file: process and thread, since simulations started by two
    threads of one process (the custody benchmark's two runs) compile the same modules."""
    return f"{os.getpid()}-{threading.get_ident()}"


def compile_standins(cache: Path) -> Path:
    """The stand-ins compiled with mpy-cross into ``cache`` (source copies if it is missing).

    On the board the driver packages are .mpy files: loading them compiles nothing, so the
    firmware's heap is not disturbed by the compiler. Only modules changed since the last
    run are compiled again.
    """
    mpy_cross = os.environ.get("IIOT_SIM_MPY_CROSS") or next_to_python("mpy-cross")
    wanted: set[Path] = set()
    for src in MP_DIR.rglob("*.py"):
        rel = src.relative_to(MP_DIR)
        if rel.name in ("busd.py", "manifest.py") or "__pycache__" in rel.parts:
            continue  # busd runs as a script in its own process; manifest.py is make's
        out = cache / rel.with_suffix(".mpy" if mpy_cross else ".py")
        wanted.add(out)
        if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if mpy_cross:
            mpy_compile(mpy_cross, src, out)
        else:
            shutil.copyfile(src, out)
    if cache.is_dir():  # a module that no longer exists must not shadow a real one
        for old in list(cache.rglob("*.mpy")) + list(cache.rglob("*.py")):
            if old not in wanted:
                old.unlink()
    return cache


# As mk/firmware.mk's MPY_FLAGS: the deployed .mpy files carry no line numbers.
DEPLOY_MPY_FLAGS = ("-X", "no-source-lines")


def _manifest_sources(role_dir: Path, shared_dir: Path) -> list[tuple[Path, Path]] | None:
    """(source, path on the board) of what the board's manifest deploys (tools/fwmanifest.py,
    as `make firmware`), or None for a firmware without one (or another shared folder)."""
    repo = role_dir.parent
    manifest = role_dir / "manifest.py"
    tool = repo / "tools" / "fwmanifest.py"
    if not (manifest.is_file() and tool.is_file()) or shared_dir != repo / "shared":
        return None
    proc = subprocess.run(
        [sys.executable, str(tool), "files", str(manifest)],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SimSetupError(f"{manifest}: {proc.stderr.strip() or proc.stdout.strip()}")
    sources = [
        (repo / src, Path(target)) for src, target in map(str.split, proc.stdout.splitlines())
    ]
    return [*sources, (role_dir / "main.py", Path("main.py"))]


def build_firmware_tree(role_dir: Path, shared_dir: Path, out: Path) -> Path:
    """A board's /flash as `make firmware` deploys it: main.py as source, the other modules
    its manifest (nodeN/manifest.py) lists compiled to .mpy with DEPLOY_MPY_FLAGS. A
    firmware without a manifest gets every module of the node and of ``shared_dir``.

    Returns the path of main.py in ``out``. Without mpy-cross the sources are copied.
    Only files changed since the last build are compiled again.
    """
    mpy_cross = os.environ.get("IIOT_SIM_MPY_CROSS") or next_to_python("mpy-cross")
    sources = _manifest_sources(role_dir, shared_dir)
    flags: tuple[str, ...] = DEPLOY_MPY_FLAGS
    if sources is None:
        flags = ()
        sources = []
        for base in (shared_dir, role_dir):  # the node's own modules win over shared ones
            for src in sorted(base.rglob("*.py")):
                rel = src.relative_to(base)
                if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
                    continue
                if rel != Path("manifest.py"):
                    sources.append((src, rel))
    wanted: set[Path] = set()
    for src, rel in sources:
        keep_source = rel == Path("main.py") or not mpy_cross
        target = out / (rel if keep_source else rel.with_suffix(".mpy"))
        wanted.add(target)
        if target.exists() and target.stat().st_mtime >= src.stat().st_mtime:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if keep_source or mpy_cross is None:
            shutil.copyfile(src, target)
        else:
            mpy_compile(mpy_cross, src, target, [*flags, "-s", str(rel)])
    if out.is_dir():  # a module dropped or moved must not linger on the "board"
        for old in [p for p in out.rglob("*") if p.is_file() and p not in wanted]:
            old.unlink()
    return out / "main.py"


def _frozen_sources(repo: Path, role: str) -> list[Path]:
    """What ``role``'s frozen interpreter is built from: the manifest and the modules it
    freezes (main.py stays a file), and the stand-ins frozen beside them."""
    sources = _manifest_sources(repo / role, repo / "shared") or []
    files = [src for src, target in sources if target != Path("main.py")]
    return [
        repo / role / "manifest.py",
        MP_DIR / "manifest.py",
        *MP_DIR.glob("_simhw/*.py"),
        *files,
    ]


def frozen_binary(role: str, repo: Path | None = None) -> Path:
    """The 32-bit unix port with ``role``'s manifest frozen in (firmware, micropython-lib
    packages and the stand-ins' _simhw): build/micropython/ports/unix/build-32-frozen-<role>.

    Built with `make frozen-heap` (both boards) when missing or older than a file it
    freezes, under a lock so concurrent simulations build it once. SimSetupError when the
    build fails (it needs the vendored MicroPython source: `make micropython`).
    """
    import fcntl

    repo = repo or repo_root()
    build = repo / "build"
    binary = build / MP_FROZEN_DIR / f"build-32-frozen-{role}" / "micropython"
    stamp = build / FROZEN_STAMPS / f"{role}.built"
    if not (build / MP_32BIT).is_file():
        raise SimSetupError("the frozen route needs the 32-bit build: run `make micropython`")
    stamp.parent.mkdir(parents=True, exist_ok=True)
    with open(stamp.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _frozen_stale(binary, stamp, _frozen_sources(repo, role)):
            return binary
        log_path = stamp.parent / "make-frozen-heap.log"
        with open(log_path, "w") as out:
            env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS")}
            proc = subprocess.run(
                ["make", "-s", "frozen-heap"], cwd=repo, stdout=out, stderr=subprocess.STDOUT,
                env=env, check=False,
            )  # fmt: skip
        if proc.returncode != 0 or not binary.is_file():
            tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
            raise SimSetupError(f"`make frozen-heap` failed ({log_path}): " + " | ".join(tail))
        for node in ("node1", "node2"):  # the make target builds both
            (stamp.parent / f"{node}.built").touch()
    return binary


def _frozen_stale(binary: Path, stamp: Path, sources: list[Path]) -> bool:
    try:
        built = max(binary.stat().st_mtime, stamp.stat().st_mtime if stamp.exists() else 0.0)
    except OSError:
        return True
    return any(src.stat().st_mtime > built for src in sources if src.exists())


def frozen_main(role_dir: Path, out: Path) -> Path:
    """A board that runs an image with its firmware frozen in has only main.py (and its
    data) in /flash: main.py copied alone into ``out`` (the script's folder is sys.path[0]),
    so every other module comes from the image."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file() and old.name != "main.py":
            old.unlink()
    target = out / "main.py"
    src = role_dir / "main.py"
    if not target.exists() or target.stat().st_mtime < src.stat().st_mtime:
        shutil.copyfile(src, target)
    return target
