"""What freezing a board's firmware saves in heap, measured on the 32-bit unix port.

    python tools/frozenheap.py node1 --mp-src build/micropython --mpy-cross PATH \\
        --lib-dir build/mplib/lib --work build/frozen [--standins DIR] \\
        [--make-arg VAR=VALUE ...] [-- MPY-CROSS FLAGS]

The node's manifest is frozen into a second build of the vendored unix port
(ports/unix/build-32-frozen-<node>, started from a copy of build-32 so only the frozen
modules and the link are redone), with what build-32 itself freezes (--port-manifest: the
unix variant's manifest, or the simulator's that includes it) in place of the stm32
board's (the manifest's port_manifest option): the two interpreters differ by the firmware.
Then every module the manifest lists, its micropython-lib packages included, is imported
(tools/mp/importheap.py) twice: from the frozen interpreter, and from the .mpy deploy tree
on the plain build-32. Prints both heap figures. The frozen interpreter
(`<mp-src>/ports/unix/build-32-frozen-<node>/micropython`) can run the simulator's firmware
as an image would: MICROPYPATH=.frozen:<stand-ins>, main.py alone in its folder, no tree.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import fwmanifest
import fwtree

REPO = Path(__file__).resolve().parent.parent
IMPORTHEAP = REPO / "tools" / "mp" / "importheap.py"
UNIX_MANIFEST = "$(PORT_DIR)/variants/standard/manifest.py"


def module_names(manifest: fwmanifest.Manifest) -> list[str]:
    """Import names of the manifest's files, then of its packages' files."""
    names = []
    for e in [*manifest.files, *manifest.libs]:
        name = e.target.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        names.append(name)
    return names


def wrapper(node: str, port_manifest: str = UNIX_MANIFEST) -> str:
    """The FROZEN_MANIFEST of the unix build: the node's manifest with the port's own."""
    path = REPO / node / "manifest.py"
    return f"include({str(path)!r}, port_manifest={port_manifest!r})\n"


def build_frozen(
    node: str, mp_src: Path, work: Path, make_args: list[str], port_manifest: str
) -> Path:
    unix = mp_src / "ports" / "unix"
    name = f"build-32-frozen-{node}"
    if not (unix / name).is_dir():
        shutil.copytree(unix / "build-32", unix / name, symlinks=True)
    work.mkdir(parents=True, exist_ok=True)
    manifest = (work / f"{node}-manifest.py").resolve()
    manifest.write_text(wrapper(node, port_manifest))
    args = [a for a in make_args if not a.startswith("BUILD=")]
    cmd = ["make", "-s", "-C", str(unix), *args, f"BUILD={name}", f"FROZEN_MANIFEST={manifest}"]
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(mp_src.resolve().parent))
    for inherited in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # none of our make's variables
        env.pop(inherited, None)
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        raise RuntimeError(f"building the frozen unix port failed: {' '.join(cmd)}")
    return unix / name / "micropython"


def import_heap(micropython: Path, path: list[Path | str], modules: list[str]) -> dict[str, int]:
    env = dict(os.environ, MICROPYPATH=":".join(str(p) for p in path))
    proc = subprocess.run(
        [str(micropython), str(IMPORTHEAP), *modules], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{micropython} importing the firmware failed:\n{proc.stderr}")
    result: dict[str, int] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("node")
    p.add_argument("--mp-src", type=Path, required=True, help="the vendored MicroPython source")
    p.add_argument("--mpy-cross", required=True)
    p.add_argument("--lib-dir", type=Path, required=True)
    p.add_argument(
        "--standins", type=Path, default=None, help="the stand-in machine (the simulator's)"
    )
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--make-arg", action="append", default=[], help="the unix port's make args")
    p.add_argument(
        "--port-manifest",
        default=UNIX_MANIFEST,
        help="what build-32 freezes besides (its FROZEN_MANIFEST), kept in the frozen build",
    )
    argv = sys.argv[1:] if argv is None else argv
    flags = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = p.parse_args(argv[: len(argv) - len(flags) - (1 if flags else 0)])

    if args.standins is None:  # the simulator's stand-ins for the board's machine
        args.standins = Path(importlib.import_module("iiot_sim.paths").MP_DIR)
    mplib = args.mp_src / "lib" / "micropython-lib"
    manifest = fwmanifest.load(REPO / args.node / "manifest.py", mplib)
    modules = module_names(manifest)
    tree = args.work / f"{args.node}-mpy"
    plain = args.mp_src / "ports" / "unix" / "build-32" / "micropython"
    try:
        fwtree.build(REPO / args.node, tree, args.mpy_cross, flags)
        frozen = build_frozen(args.node, args.mp_src, args.work, args.make_arg, args.port_manifest)
        as_mpy = import_heap(plain, [tree, args.lib_dir, args.standins], modules)
        as_frozen = import_heap(frozen, [".frozen", args.standins], modules)
    except (RuntimeError, fwmanifest.ManifestError) as e:
        print(f"error: {args.node}: {e}", file=sys.stderr)
        return 1
    if as_mpy["mpy"] != len(modules) or as_frozen["mpy"] != 0:
        print(f"error: {args.node}: modules came from the wrong place: {as_mpy} {as_frozen}")
        return 1
    saved = as_mpy["heap"] - as_frozen["heap"]
    print(
        f"{args.node}: importing its {len(modules)} modules holds {as_mpy['heap']} B of heap "
        f"from .mpy, {as_frozen['heap']} B frozen (freezing saves {saved} B, "
        f"{100 * saved / as_mpy['heap']:.0f} %); frozen interpreter: {frozen}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
