"""Read a board's firmware manifest (node1/manifest.py, node2/manifest.py) on the host.

The manifests are the one list of what goes on each board. They use MicroPython's manifest
syntax (metadata, module, package, require, include, options) so that MicroPython's own
tools can freeze them into an image (`make image-node1`); this module evaluates them with
stand-in functions that record the files and the required micropython-lib packages, for
the deploy tree (`make firmware`), the mip commands and package.json (`make flash-node1`).

    python tools/fwmanifest.py files node1/manifest.py         # "<source> <target>" lines
    python tools/fwmanifest.py requires node1/manifest.py      # "name@version", install order
    python tools/fwmanifest.py package-json node1/manifest.py  # node1/package.json's text
    python tools/fwmanifest.py check-pins node1/manifest.py --mplib DIR  # pins = DIR's versions
    python tools/fwmanifest.py libs node1/manifest.py --mplib DIR  # the packages' files:
        # "<source> <target> <package version> <opt or ->", as mip installs them

A manifest's include() of a port's manifest ($(PORT_DIR)/...) only matters for an image:
the stand-ins pass port_manifest="" so the manifest skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The board's entry script: never frozen, always copied as source (the board runs
# /flash/main.py; removing it is how the flash recipe stops the firmware).
BOOT_SCRIPT = "main.py"
VARIABLE = re.compile(r"\$\((\w+)\)")


class ManifestError(ValueError):
    """A manifest this reader cannot evaluate, with the file and the reason."""


@dataclass(frozen=True)
class Entry:
    source: Path  # absolute path of the .py file
    target: str  # path on the board, e.g. "iiot_codec/crc.py"
    opt: int | None = None
    version: str | None = None  # a required package's files: that package's version


@dataclass(frozen=True)
class Require:
    name: str
    version: str | None

    def __str__(self) -> str:
        return f"{self.name}@{self.version}" if self.version else self.name


@dataclass
class Manifest:
    path: Path
    version: str | None = None
    description: str | None = None
    files: list[Entry] = field(default_factory=list)
    requires: list[Require] = field(default_factory=list)
    libs: list[Entry] = field(default_factory=list)  # files of required packages (with mplib)


class _Options:
    """The `options` global of a manifest (include() keyword arguments over defaults)."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._defaults: dict[str, Any] = {}

    def defaults(self, **kwargs: Any) -> None:
        self._defaults = kwargs

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._kwargs.get(name, self._defaults.get(name))


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


class _Reader:
    """Evaluates manifests like MicroPython's tools/manifestfile.py (freeze mode), recording."""

    def __init__(self, top: Path, mplib: Path | None) -> None:
        self.result = Manifest(top)
        self.mplib = mplib
        self.visited: set[Path] = set()
        self.depth = 0  # >0 while inside a required micropython-lib package
        self.versions: list[str | None] = []  # metadata version of each package being read

    def _path(self, text: str) -> Path:
        """A path relative to the manifest being read; $(VAR)s only an image build knows."""
        found = VARIABLE.search(text)
        if found:
            raise ManifestError(f"{text}: $({found.group(1)}) is only known to an image build")
        return Path(text).resolve()

    def _add(self, source: Path, target: str, opt: int | None) -> None:
        if not source.is_file():
            raise ManifestError(f"no such file: {source}")
        if source.suffix != ".py":
            raise ManifestError(f"{source}: only .py files can be listed")
        if self.depth:
            version = self.versions[-1]
            self.result.libs.append(Entry(source, target.replace(os.sep, "/"), opt, version))
            return
        entry = Entry(source, target.replace(os.sep, "/"), opt)
        if entry.target == BOOT_SCRIPT:
            raise ManifestError(
                f"{BOOT_SCRIPT} must not be in the manifest: it stays on the filesystem as source"
            )
        clash = [e for e in self.result.files if e.target == entry.target]
        if clash:
            raise ManifestError(f"{entry.target} listed twice ({clash[0].source}, {source})")
        self.result.files.append(entry)

    # --- the manifest API ---------------------------------------------------------------

    def metadata(
        self, description: str | None = None, version: str | None = None, **_: Any
    ) -> None:
        if self.depth:
            self.versions[-1] = version
        else:
            self.result.description = description
            self.result.version = version

    def module(self, module_path: str, base_path: str = ".", opt: int | None = None) -> None:
        self._add(self._path(base_path) / module_path, module_path, opt)

    def package(
        self,
        package_path: str,
        files: list[str] | None = None,
        base_path: str = ".",
        opt: int | None = None,
    ) -> None:
        base = self._path(base_path)
        if files is None:
            found = sorted((base / package_path).rglob("*.py"))
            names = [str(p.relative_to(base / package_path)) for p in found]
        else:
            names = list(files)
        for name in names:
            target = os.path.join(package_path, name)
            self._add(base / target, target, opt)

    def require(self, name: str, version: str | None = None, **_: Any) -> None:
        if not self.depth:
            self.result.requires.append(Require(name, version))
        if self.mplib is not None:
            self.depth += 1
            self.versions.append(None)
            try:
                self.include(str(package_manifest(self.mplib, name)))
            finally:
                self.depth -= 1
                self.versions.pop()

    def include(self, manifest_path: str, **kwargs: Any) -> None:
        path = self._path(manifest_path)
        if path.is_dir():
            path = path / "manifest.py"
        if path in self.visited:
            return
        self.visited.add(path)
        try:
            code = compile(path.read_text(encoding="utf-8"), str(path), "exec")
        except OSError as e:
            raise ManifestError(f"cannot read {path}: {e.strerror}") from None
        except SyntaxError as e:
            raise ManifestError(f"{path}:{e.lineno}: {e.msg}") from None
        api: dict[str, Callable[..., Any] | _Options] = {
            "metadata": self.metadata,
            "module": self.module,
            "package": self.package,
            "require": self.require,
            "include": self.include,
            "options": _Options(**kwargs),
        }
        with _cwd(path.parent):
            try:
                exec(code, dict(api))
            except ManifestError:
                raise
            except Exception as e:  # the manifest's own error, named with its file
                raise ManifestError(f"{path}: {type(e).__name__}: {e}") from None


def package_manifest(mplib: Path, name: str) -> Path:
    """micropython-lib's manifest.py of package `name` (searched as manifestfile does)."""
    for lib in ("micropython", "python-stdlib", "python-ecosys"):
        for found in sorted((mplib / lib).rglob(f"{name}/manifest.py")):
            if found.parent.name == name:
                return found
    raise ManifestError(f"micropython-lib package {name!r} not found under {mplib}")


def load(path: Path, mplib: Path | None = None, **options: Any) -> Manifest:
    """Evaluate a manifest: its firmware files and requires (and, given micropython-lib's
    checkout as `mplib`, the files of the required packages as mip installs them)."""
    options.setdefault("port_manifest", "")
    reader = _Reader(path.resolve(), mplib.resolve() if mplib else None)
    reader.include(str(path), **options)
    return reader.result


def package_version(mplib: Path, name: str) -> str | None:
    """The version micropython-lib's manifest of `name` declares."""
    return load(package_manifest(mplib, name)).version


def package_json(manifest: Manifest) -> dict[str, Any]:
    """The node's package.json (mpremote mip install github:ORG/REPO/nodeN): the sources
    with URLs relative to the node folder, main.py first, the pinned packages as deps."""
    node_dir = manifest.path.parent
    urls = [[BOOT_SCRIPT, BOOT_SCRIPT]]
    for e in manifest.files:
        urls.append([e.target, os.path.relpath(e.source, node_dir).replace(os.sep, "/")])
    deps = [[r.name, r.version or "latest"] for r in manifest.requires]
    return {"urls": urls, "deps": deps, "version": manifest.version or "0.0.0"}


def package_json_text(manifest: Manifest) -> str:
    return json.dumps(package_json(manifest), indent=1) + "\n"


def pin_problems(manifest: Manifest, mplib: Path) -> list[str]:
    """Requires whose pinned version differs from the one in this micropython-lib."""
    problems = []
    for r in manifest.requires:
        have = package_version(mplib, r.name)
        if r.version is None:
            problems.append(f"{r.name} is not pinned (require({r.name!r}, version=...))")
        elif have != r.version:
            problems.append(f"{r.name}: pinned {r.version}, {mplib} has {have}")
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("command", choices=("files", "requires", "package-json", "check-pins", "libs"))
    p.add_argument("manifest", type=Path)
    p.add_argument("--mplib", type=Path, help="a micropython-lib checkout (check-pins, libs)")
    args = p.parse_args(argv)
    if args.command in ("check-pins", "libs") and args.mplib is None:
        p.error(f"{args.command} needs --mplib")
    try:
        manifest = load(args.manifest, args.mplib if args.command == "libs" else None)
        if args.command == "files":
            for e in manifest.files:
                print(os.path.relpath(e.source), e.target)
        elif args.command == "requires":
            print("\n".join(str(r) for r in manifest.requires))
        elif args.command == "package-json":
            sys.stdout.write(package_json_text(manifest))
        elif args.command == "libs":
            for e in manifest.libs:
                opt = "-" if e.opt is None else str(e.opt)
                print(e.source, e.target, e.version or "-", opt)
        else:
            assert args.mplib is not None
            problems = pin_problems(manifest, args.mplib)
            for line in problems:
                print(f"error: {args.manifest}: {line}", file=sys.stderr)
            return 1 if problems else 0
    except ManifestError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
