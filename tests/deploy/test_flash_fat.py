"""The flash figure, measured: tools/mp/fatimage.py writes a FAT volume of the board's
geometry with MicroPython's own oofatfs, and `make firmware` reports what each board keeps
free on it."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
from deploy_paths import REPO, make_var

FATIMAGE = REPO / "tools" / "mp" / "fatimage.py"
LINE = re.compile(r"^(\S+): (\d+) files, (\d+) bytes, (\d+) clusters used, ([\d.]+) KiB free$")
SECTOR = 512


@pytest.fixture(scope="module")
def micropython() -> str:
    """The interpreter make firmware writes the FAT with (after make micropython)."""
    subprocess.run(["make", "-s", "micropython"], cwd=REPO, capture_output=True)
    path = make_var("FW_FAT_MP")
    assert Path(REPO / path).exists() or Path(path).exists(), path
    return path


def fat(micropython: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [micropython, str(FATIMAGE), *args], cwd=REPO, capture_output=True, text=True
    )


def listing(micropython: str, image: Path) -> dict[str, str]:
    """Path -> sha256 of every file on an image, read back through oofatfs."""
    code = (
        "import sys, json, hashlib, binascii\n"
        f"sys.path.insert(0, {str(FATIMAGE.parent)!r})\n"
        "import fatimage\n"
        f"fatimage.mount(fatimage.load({str(image)!r}))\n"
        "out = {}\n"
        "for f in fatimage.walk('/flash'):\n"
        "    digest = hashlib.sha256(open(f, 'rb').read()).digest()\n"
        "    out[f[7:]] = binascii.hexlify(digest).decode()\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([micropython, "-c", code], capture_output=True, text=True, check=True)
    result: dict[str, str] = json.loads(proc.stdout)
    return result


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_fresh_volume_of_the_boards_geometry_has_94_clusters(
    micropython: str, tmp_path: Path
) -> None:
    proc = fat(micropython, "--fresh")
    assert proc.stdout.strip() == "fresh volume: 94 clusters = 47.0 KiB free", proc.stderr
    image = tmp_path / "fresh.img"
    proc = fat(micropython, str(image))
    assert proc.returncode == 0, proc.stderr
    data = image.read_bytes()
    assert len(data) == 128 * SECTOR

    def field(offset: int, size: int) -> int:  # the boot sector's BIOS parameter block
        return int.from_bytes(data[offset : offset + size], "little")

    assert field(11, 2) == SECTOR and field(19, 2) == 128  # bytes per sector, sectors
    per_cluster, reserved, fats, root_entries, fat_sectors = (
        field(13, 1),
        field(14, 2),
        field(16, 1),
        field(17, 2),
        field(22, 2),
    )
    root_sectors = root_entries * 32 // SECTOR
    assert per_cluster == 1
    assert (128 - reserved - fats * fat_sectors - root_sectors) // per_cluster == 94
    # the board's first boot writes the factory boot.py and main.py
    files = listing(micropython, image)
    assert sorted(files) == ["boot.py", "main.py"]
    assert LINE.match(proc.stdout.strip()).groups()[1:] == ("2", "207", "2", "46.0")  # type: ignore[union-attr]


def _sample(tmp_path: Path) -> tuple[list[str], dict[str, bytes]]:
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    lib = tmp_path / "lib"
    (lib / "x").mkdir(parents=True)
    content = {
        "a.mpy": b"a" * 1000,
        "b.py": b"print(1)\n",
        "pkg/c.mpy": b"c" * 600,
        "lib/x/y.mpy": b"y" * 513,
        "config.json": b'{"node_id": 1}\n',
    }
    for name, data in content.items():
        if name.startswith("lib/"):
            (lib / name[4:]).write_bytes(data)
        elif name != "config.json":
            (tree / name).write_bytes(data)
    (tmp_path / "config.json").write_bytes(content["config.json"])
    (tree / ".stamp").write_text("not for the board")
    args = ["--tree", str(tree), "--lib", str(lib), "--file", f"config.json={tmp_path}/config.json"]
    return [*args, "--reserve", "fcnt0.dat", "--name", "sample"], content


def test_the_figures_are_what_an_independent_count_gives(micropython: str, tmp_path: Path) -> None:
    args, content = _sample(tmp_path)
    image = tmp_path / "sample.img"
    proc = fat(micropython, str(image), *args)
    assert proc.returncode == 0, proc.stderr
    factory = {"boot.py": 173, "main.py": 34}
    sizes = {**factory, **{k: len(v) for k, v in content.items()}, "fcnt0.dat": SECTOR}
    clusters = sum(-(-s // SECTOR) for s in sizes.values()) + 3  # pkg/, lib/, lib/x/: one each
    free_kib = (94 - clusters) * SECTOR / 1024
    expected = f"sample: {len(sizes)} files, {sum(sizes.values())} bytes, {clusters} clusters used"
    assert proc.stdout.strip() == f"{expected}, {free_kib:.1f} KiB free"
    files = listing(micropython, image)
    assert set(files) == set(sizes)  # no dotfile
    for name, data in content.items():
        assert files[name] == sha(data), name
    again = fat(micropython, str(image), "--report", "--name", "sample")
    assert again.stdout == proc.stdout


def test_under_the_margin_is_a_clear_failure(micropython: str, tmp_path: Path) -> None:
    args, _ = _sample(tmp_path)
    proc = fat(micropython, str(tmp_path / "m.img"), *args, "--min-free", str(41 * 1024))
    assert proc.returncode == 1
    assert (
        "error: sample leaves 40.0 KiB free on the board's filesystem, under the 41.0 KiB margin"
        in proc.stderr
    )


def test_a_tree_that_does_not_fit_names_the_file(micropython: str, tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "big.mpy").write_bytes(b"x" * 40 * 1024)
    (tmp_path / "tree" / "zz.mpy").write_bytes(b"x" * 8 * 1024)
    proc = fat(micropython, str(tmp_path / "big.img"), "--tree", str(tmp_path / "tree"))
    assert proc.returncode == 1
    assert "does not fit the board's filesystem: /flash/zz.mpy did not fit" in proc.stderr
    assert "the rest (1 files) needs at least 8.0 KiB more" in proc.stderr


def run_firmware(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """make firmware into a scratch BUILD (MicroPython's build stays in MP_BUILD)."""
    build = tmp_path / "build"
    build.mkdir()
    proc = subprocess.run(
        ["make", "-s", "--no-print-directory", "firmware", f"BUILD={build}", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    return proc, build


def test_make_firmware_fails_under_the_margin(micropython: str, tmp_path: Path) -> None:
    proc, _ = run_firmware(tmp_path, "FLASH_MIN_FREE_KB=47")
    assert proc.returncode != 0
    for node in ("node1", "node2"):
        assert re.search(
            rf"error: {node} (leaves .* under the 47.0 KiB margin|does not fit)", proc.stderr
        )
    assert "a board's firmware does not fit its flash" in proc.stderr


def test_make_firmware_measures_both_boards_on_their_fat(micropython: str, tmp_path: Path) -> None:
    """Each board keeps at least FLASH_MIN_FREE_KB free with everything a flashed, running
    board holds: factory boot.py, the tree, config.json, lib/, the firmware's own files."""
    proc, build = run_firmware(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fresh volume: 94 clusters = 47.0 KiB free" in proc.stdout
    margin = float(make_var("FLASH_MIN_FREE_KB"))
    for node in ("node1", "node2"):
        line = next(x for x in proc.stdout.splitlines() if x.startswith(node + ": ") and "KiB" in x)
        m = LINE.match(line)
        assert m, line
        assert float(m.group(5)) >= margin
        image = build / f"{node}.img"
        report = fat(micropython, str(image), "--report", "--name", node)
        assert report.stdout.strip() == line
        files = listing(micropython, image)
        tree = {
            str(p.relative_to(build / node)): p for p in (build / node).rglob("*") if p.is_file()
        }
        for name, path in tree.items():
            assert files[name] == sha(path.read_bytes()), name
        libs = [f for f in files if f.startswith("lib/")]
        assert sorted(libs) == sorted(
            "lib/" + str(p.relative_to(REPO / make_var("MPLIB")))
            for p in (REPO / make_var("MPLIB")).rglob("*.mpy")
        )
        state = make_var(f"FW_STATE_{node}").split()
        assert set(files) == {"boot.py", "config.json", *tree, *libs, *state}
