"""node1/manifest.py and node2/manifest.py: the one list of what goes on each board.

Read by tools/fwmanifest.py (deploy tree, mip pins, package.json) and by MicroPython's own
manifest tool (the frozen image); both must see the same files.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_paths import REPO, load_module, make_var

sys.path.insert(0, str(REPO / "tools"))
import fwmanifest  # noqa: E402

NODES = ("node1", "node2")
SHARED = REPO / "shared"


VENDORED = REPO / make_var("MP_SRC")  # mk/micropython.mk unpacks the vendored source there
MPLIB_SRC = VENDORED / "lib" / "micropython-lib"


def vendored() -> Path:
    """The vendored MicroPython source (make micropython unpacks it)."""
    if not MPLIB_SRC.is_dir():
        proc = subprocess.run(["make", "-s", "micropython"], cwd=REPO, capture_output=True)
        if not MPLIB_SRC.is_dir():
            pytest.skip(f"no vendored MicroPython source ({proc.stderr.decode()[-200:]})")
    return VENDORED


def manifest(node: str) -> fwmanifest.Manifest:
    return fwmanifest.load(REPO / node / "manifest.py")


@pytest.mark.parametrize("node", NODES)
def test_manifest_lists_each_file_once_and_never_main_py(node: str) -> None:
    m = manifest(node)
    targets = [e.target for e in m.files]
    assert len(targets) == len(set(targets))
    assert all(e.source.is_file() and e.source.suffix == ".py" for e in m.files)
    assert fwmanifest.BOOT_SCRIPT not in targets
    assert {r.name for r in m.requires} >= {"lora-sync", "lora-sx127x", "ssd1306"}


def _local_modules() -> dict[str, Path]:
    """Import name -> source of every module a board could import from this repository."""
    found = {f"iiot_codec.{p.stem}": p for p in (SHARED / "iiot_codec").glob("*.py")}
    found["iiot_codec"] = SHARED / "iiot_codec" / "__init__.py"
    return found


def _host_only(test: ast.expr) -> bool | None:
    """True for `sys.implementation.name != "micropython"`, False for `==`, else None."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return None
    text = ast.unparse(test)
    if "sys.implementation.name" not in text or "'micropython'" not in text:
        return None
    return isinstance(test.ops[0], ast.NotEq)


def _imports(source: Path, package: str | None) -> set[str]:
    """Every module a file imports on the board: lazy imports inside functions included; left
    out are the host-only branch of `if sys.implementation.name != "micropython"` and a
    module's `__getattr__` (PEP 562 lazy loading: which of those a board needs is the
    manifest's call, as node1 leaving out the codec's serial line)."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            return
        if isinstance(node, ast.If) and (host := _host_only(node.test)) is not None:
            for branch in node.orelse if host else node.body:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and package:
                base = package + ("." + base if base else "")
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source.read_text(encoding="utf-8")))
    return names


@pytest.mark.parametrize("node", NODES)
def test_every_module_the_firmware_imports_is_in_its_manifest(node: str) -> None:
    """A module added to the firmware but not to the manifest would be missing on the board."""
    m = manifest(node)
    on_board = {
        e.target.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for e in m.files
    }
    candidates = _local_modules()
    for folder in (SHARED, REPO / node):  # the node's own modules win, as in the flat tree
        candidates.update({p.stem: p for p in folder.glob("*.py") if p.stem != "manifest"})
    sources = [REPO / node / fwmanifest.BOOT_SCRIPT, *(e.source for e in m.files)]
    missing = set()
    for src in sources:
        package = "iiot_codec" if src.parent.name == "iiot_codec" else None
        for name in _imports(src, package):
            if name in candidates and name not in on_board and name != "main":
                missing.add(f"{name} (imported by {src.relative_to(REPO)})")
    assert not missing, f"{node}/manifest.py lacks: {sorted(missing)}"


def test_node1_leaves_out_the_codec_serial_line_node2_keeps_it() -> None:
    """Which codec modules a board carries is the manifest's call (the import test checks
    it); the serial line is node2's only, and the host's eager importer no board's."""
    codec = {p.name for p in (SHARED / "iiot_codec").glob("*.py")}
    got = {
        n: {Path(e.target).name for e in manifest(n).files if e.target.startswith("iiot_codec/")}
        for n in NODES
    }
    assert "line.py" not in got["node1"] and "line.py" in got["node2"]
    for node in NODES:
        assert "__init__.py" in got[node] and got[node] <= codec
        assert "_host.py" not in got[node]


@pytest.mark.parametrize("node", NODES)
def test_package_json_is_derived_from_the_manifest(node: str) -> None:
    m = manifest(node)
    committed = (REPO / node / "package.json").read_text(encoding="utf-8")
    assert committed == fwmanifest.package_json_text(m), "run make firmware to update it"
    pkg = json.loads(committed)
    assert [u[0] for u in pkg["urls"]] == ["main.py", *(e.target for e in m.files)]
    for _, url in pkg["urls"]:
        assert (REPO / node / url).resolve().is_file(), url
    assert pkg["deps"] == [[r.name, r.version] for r in m.requires]


def test_pins_are_the_vendored_micropython_lib_versions() -> None:
    mplib = vendored() / "lib" / "micropython-lib"
    pins = {n: [str(r) for r in manifest(n).requires] for n in NODES}
    assert pins["node1"] == pins["node2"]
    for node in NODES:
        assert fwmanifest.pin_problems(manifest(node), mplib) == []
    # the figures the design notes give for the vendored tarball
    assert pins["node1"] == ["lora-sync@0.1.1", "lora-sx127x@0.1.2", "ssd1306@0.1.0", "lora@0.2.0"]


def test_check_pins_refuses_another_micropython_lib(tmp_path: Path) -> None:
    pkg = tmp_path / "micropython" / "lora" / "lora-sx127x"
    pkg.mkdir(parents=True)
    (pkg / "manifest.py").write_text('metadata(version="0.1.9")\n')
    for name in ("lora-sync", "lora"):
        d = tmp_path / "micropython" / "lora" / name
        d.mkdir(parents=True)
        (d / "manifest.py").write_text('metadata(version="0.0.1")\n')
    d = tmp_path / "micropython" / "drivers" / "display" / "ssd1306"
    d.mkdir(parents=True)
    (d / "manifest.py").write_text('metadata(version="0.1.0")\n')
    proc = subprocess.run(
        [
            sys.executable,
            "tools/fwmanifest.py",
            "check-pins",
            "node1/manifest.py",
            "--mplib",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "lora-sx127x: pinned 0.1.2" in proc.stderr and "has 0.1.9" in proc.stderr
    assert "ssd1306" not in proc.stderr


@pytest.mark.parametrize("node", NODES)
def test_the_flash_recipe_installs_the_pins(node: str) -> None:
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", f"flash-{node}", "PORT=/dev/null"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stderr
    mip = next(x for x in dry.stdout.splitlines() if "mpremote connect" in x and "mip " in x)
    assert f"tools/fwmanifest.py requires {node}/manifest.py" in mip
    out = subprocess.run(
        [sys.executable, "tools/fwmanifest.py", "requires", f"{node}/manifest.py"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [str(r) for r in manifest(node).requires]
    assert all("@" in pin for pin in out)


@pytest.mark.parametrize("node", NODES)
def test_micropythons_manifest_tool_freezes_the_same_files(node: str, tmp_path: Path) -> None:
    """The image route reads the manifest with MicroPython's tools/manifestfile.py."""
    src = vendored()
    tool = load_module("mp_manifestfile", src / "tools" / "manifestfile.py")
    port = tmp_path / "port"
    (port / "boards").mkdir(parents=True)
    (port / "boards" / "manifest.py").write_text('include("$(MPY_DIR)/extmod/asyncio")\n')
    frozen = tool.ManifestFile(
        tool.MODE_FREEZE,
        {"MPY_DIR": str(src), "MPY_LIB_DIR": str(MPLIB_SRC), "PORT_DIR": str(port)},
    )
    frozen.execute(str(REPO / node / "manifest.py"))
    got = [f.target_path for f in frozen.files()]
    ours = fwmanifest.load(REPO / node / "manifest.py", MPLIB_SRC)
    port_files = [t for t in got if t.startswith(("asyncio/", "uasyncio"))]
    assert port_files, "the port's own manifest is kept"
    assert [t for t in got if t not in port_files] == [e.target for e in ours.files + ours.libs]
    assert all(f.kind == tool.KIND_FREEZE_AS_MPY for f in frozen.files())


def test_a_bad_manifest_gets_a_clear_error(tmp_path: Path) -> None:
    cases = {
        'module("absent.py")\n': "no such file",
        'module("main.py")\n': "main.py must not be in the manifest",
        'include("$(MPY_DIR)/x.py")\n': "$(MPY_DIR) is only known to an image build",
        'module("a.py")\nmodule("a.py")\n': "a.py listed twice",
        "module(\n": "manifest.py:",
    }
    (tmp_path / "a.py").write_text("")
    (tmp_path / "main.py").write_text("")
    for text, message in cases.items():
        (tmp_path / "manifest.py").write_text(text)
        proc = subprocess.run(
            [
                sys.executable,
                str(REPO / "tools" / "fwmanifest.py"),
                "files",
                str(tmp_path / "manifest.py"),
            ],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 2 and message in proc.stderr, (text, proc.stderr)
