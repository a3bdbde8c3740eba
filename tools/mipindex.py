"""A local mip package index of the micropython-lib packages the manifests pin.

    python tools/mipindex.py --out build/mip-index --lib-dir build/mplib/lib \\
        --mplib-src build/micropython/lib/micropython-lib node1/manifest.py node2/manifest.py

`mpremote mip install --index build/mip-index lora-sync@0.1.1` (make flash-nodeN
MIP_INDEX=build/mip-index) then installs, offline, the very files `make firmware` put on the
FAT image. Same layout as micropython-lib's published index (its tools/build.py):
package/<mpy version>/<name>/<version>.json (and latest.json) listing
{"hashes": [[path, sha256 prefix]], "version"}, and the files under file/<2 hex>/<prefix>.
As there, a package lists every file it installs, those of the packages it requires too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

import fwmanifest

HASH_LEN = 8


def package_files(mplib_src: Path, name: str) -> list[str]:
    """Board paths (.mpy) a package installs: its own files and its requirements'."""
    m = fwmanifest.load(fwmanifest.package_manifest(mplib_src, name), mplib_src)
    return [e.target.removesuffix(".py") + ".mpy" for e in [*m.files, *m.libs]]


def mpy_version(compiled: Path) -> str:
    header = compiled.read_bytes()[:2]
    if header[:1] != b"M":
        raise fwmanifest.ManifestError(f"{compiled} is not a .mpy file")
    return str(header[1])


def build(out: Path, lib_dir: Path, mplib_src: Path, manifests: list[Path]) -> list[str]:
    """Write the index; returns the name@version of each package in it."""
    pins: dict[str, str] = {}
    for path in manifests:
        for r in fwmanifest.load(path).requires:
            if r.version is None:
                raise fwmanifest.ManifestError(f"{path}: {r.name} is not pinned")
            if pins.setdefault(r.name, r.version) != r.version:
                raise fwmanifest.ManifestError(
                    f"{r.name} pinned twice: {pins[r.name]}, {r.version}"
                )
    if out.exists():
        shutil.rmtree(out)
    for name, version in sorted(pins.items()):
        hashes = []
        for target in package_files(mplib_src, name):
            compiled = lib_dir / target
            data = compiled.read_bytes()
            short = hashlib.sha256(data).hexdigest()[:HASH_LEN]
            blob = out / "file" / short[:2] / short
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(data)
            hashes.append([target, short])
        doc = json.dumps({"v": 1, "hashes": hashes, "version": version}) + "\n"
        folder = out / "package" / mpy_version(lib_dir / hashes[0][0]) / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{version}.json").write_text(doc)
        (folder / "latest.json").write_text(doc)
    return [f"{n}@{v}" for n, v in sorted(pins.items())]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("manifests", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--lib-dir", type=Path, required=True, help="the packages, compiled")
    p.add_argument("--mplib-src", type=Path, required=True, help="micropython-lib's source")
    args = p.parse_args(argv)
    try:
        names = build(args.out, args.lib_dir, args.mplib_src, args.manifests)
    except (fwmanifest.ManifestError, OSError) as e:
        print(f"error: mip index: {e}", file=sys.stderr)
        return 2
    print(f"mip index {args.out}: {' '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
