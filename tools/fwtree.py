"""`make firmware` for one board: its deploy tree from the manifest, measured on its FAT.

    python tools/fwtree.py node1 --out build/node1 --mpy-cross PATH \\
        [--micropython PATH --image build/node1.img --config build/node1-config.json
         --lib-dir build/mplib/lib [--mplib-src DIR] [--state fcnt0.dat ...]
         [--min-free-kb 4]] [-- MPY-CROSS FLAGS]

The tree: every file of nodeN/manifest.py compiled with mpy-cross to <target>.mpy (the
board loads .mpy without compiling it in its heap), nodeN/main.py copied as source (the
board runs /flash/main.py). The folder is rebuilt from scratch, so a module dropped from the
manifest never lingers.

The measurement (with --micropython): tools/mp/fatimage.py formats a volume of the board's
geometry with the interpreter's oofatfs, writes the factory boot.py, the tree, config.json,
the micropython-lib files the manifest requires as mip installs them (lib/), one cluster
per file the firmware writes at run time (--state), and reports the free space; it fails
under --min-free-kb. Without --mplib-src the whole --lib-dir is copied; without a lib
folder at all the figure leaves micropython-lib out, with a warning.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import fwmanifest

REPO = Path(__file__).resolve().parent.parent
FATIMAGE = REPO / "tools" / "mp" / "fatimage.py"


def build(node_dir: Path, out: Path, mpy_cross: str, flags: list[str]) -> list[Path]:
    """Compile the tree into `out`; returns the files written."""
    manifest = fwmanifest.load(node_dir / "manifest.py")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written = []
    for entry in manifest.files:
        dest = out / (entry.target.removesuffix(".py") + ".mpy")
        dest.parent.mkdir(parents=True, exist_ok=True)
        opt = [] if entry.opt is None else [f"-O{entry.opt}"]
        cmd = [mpy_cross, *flags, *opt, "-s", entry.target, "-o", str(dest), str(entry.source)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise fwmanifest.ManifestError(f"mpy-cross failed on {entry.source}:\n{proc.stderr}")
        written.append(dest)
    main = out / fwmanifest.BOOT_SCRIPT
    shutil.copyfile(node_dir / fwmanifest.BOOT_SCRIPT, main)
    written.append(main)
    return written


def lib_files(manifest: Path, lib_dir: Path, mplib_src: Path) -> list[tuple[str, Path]]:
    """(path on the board, compiled file) of each micropython-lib file the manifest requires."""
    out = []
    for entry in fwmanifest.load(manifest, mplib_src).libs:
        target = entry.target.removesuffix(".py") + ".mpy"
        compiled = lib_dir / target
        if not compiled.is_file():
            raise fwmanifest.ManifestError(f"{compiled} is missing (make micropython builds it)")
        out.append(("lib/" + target, compiled))
    return out


def fat_args(args: argparse.Namespace, tree: Path) -> list[str]:
    """tools/mp/fatimage.py's arguments for this board."""
    fat = [str(args.image), "--name", args.node, "--tree", str(tree)]
    fat += ["--min-free", str(int(args.min_free_kb * 1024))]
    if args.config:
        fat += ["--file", f"config.json={args.config}"]
    if args.mplib_src and args.lib_dir:
        for dest, src in lib_files(REPO / args.node / "manifest.py", args.lib_dir, args.mplib_src):
            fat += ["--file", f"{dest}={src}"]
    elif args.lib_dir and any(args.lib_dir.rglob("*.mpy")):
        fat += ["--lib", str(args.lib_dir)]
    else:
        fat[2] = f"{args.node}(without-lib)"  # never taken for the board's figure
        print(
            f"WARNING: {args.node}: no micropython-lib packages ({args.lib_dir}): the flash "
            "figure below leaves out lib/ (about 12.5 KiB on the board); run `make micropython` "
            "with the vendored MicroPython source for the board's real figure",
            file=sys.stderr,
        )
    for name in args.state:
        fat += ["--reserve", name]
    return fat


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("node", help="node folder name, e.g. node1")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--mpy-cross", default=shutil.which("mpy-cross") or "mpy-cross")
    p.add_argument("--micropython", help="a MicroPython unix port with os.VfsFat: measure")
    p.add_argument("--image", type=Path, help="the FAT image to write (default OUT.img)")
    p.add_argument("--config", type=Path, help="the config.json to put on the image")
    p.add_argument("--lib-dir", type=Path, help="micropython-lib compiled as mip installs it")
    p.add_argument("--mplib-src", type=Path, help="micropython-lib source (per-file list)")
    p.add_argument("--state", nargs="*", default=[], help="files the firmware writes")
    p.add_argument("--min-free-kb", type=float, default=4.0)
    argv = sys.argv[1:] if argv is None else argv
    flags = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = p.parse_args(argv[: len(argv) - len(flags) - (1 if flags else 0)])
    try:
        files = build(REPO / args.node, args.out, args.mpy_cross, flags)
        size = sum(f.stat().st_size for f in files)
        print(f"{args.node}: deploy tree {args.out}: {len(files)} files, {size} bytes")
        if not args.micropython:
            return 0
        args.image = args.image or args.out.with_suffix(".img")
        fat = fat_args(args, args.out)
    except fwmanifest.ManifestError as e:
        print(f"error: {args.node}: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"error: {args.node}: {e.filename} not found", file=sys.stderr)
        return 2
    proc = subprocess.run([args.micropython, str(FATIMAGE), *fat])
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
