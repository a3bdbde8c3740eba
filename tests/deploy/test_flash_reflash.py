"""`make flash-nodeN` over a board, for real: the recipe itself, run by make, with the real
mpremote, against a FAT image of the board's geometry served behind a raw REPL on a pty
(tools/mp/rawrepl.py). A full install, the firmware's own files as a running board leaves
them, then a re-flash on the same image, which must not run out of space."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
import tty
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy_paths import REPO, make_var

TOOLS_MP = REPO / "tools" / "mp"
COUNTER = "5120 22437\n"  # a frame counter reservation, as shared/fcounter.py writes it


@dataclass
class Board:
    port: str
    image: Path
    slave: int
    micropython: str

    def wait_for_boot(self, timeout: float = 15.0) -> None:
        """Until the board printed its banner after a reset (the image is saved by then)."""
        seen = b""
        end = time.monotonic() + timeout
        while b">>> " not in seen:
            left = end - time.monotonic()
            assert left > 0, f"the board did not come back after the reset: {seen[-200:]!r}"
            ready, _, _ = select.select([self.slave], [], [], left)
            if ready:
                seen += os.read(self.slave, 4096)

    def files(self) -> dict[str, bytes]:
        """Every file on the image and its content, read back through oofatfs."""
        code = (
            "import sys, json, binascii\n"
            f"sys.path.insert(0, {str(TOOLS_MP)!r})\n"
            "import fatimage\n"
            f"fatimage.mount(fatimage.load({str(self.image)!r}))\n"
            "print(json.dumps({f[7:]: binascii.hexlify(open(f, 'rb').read()).decode()"
            " for f in fatimage.walk('/flash')}))\n"
        )
        out = subprocess.run(
            [self.micropython, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        return {k: bytes.fromhex(v) for k, v in json.loads(out).items()}

    def free_line(self) -> str:
        proc = subprocess.run(
            [self.micropython, str(TOOLS_MP / "fatimage.py"), str(self.image), "--report"],
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout.strip().split(": ", 1)[1]

    def mpremote(self, *args: str) -> str:
        proc = subprocess.run(
            [str(REPO / ".venv" / "bin" / "mpremote"), "connect", self.port, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A scratch BUILD (MicroPython's build stays in MP_BUILD) with a local mip index."""
    subprocess.run(["make", "-s", "micropython"], cwd=REPO, capture_output=True)
    out = tmp_path / "build"
    out.mkdir()
    proc = subprocess.run(
        ["make", "-s", "--no-print-directory", "mip-index", f"BUILD={out}"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(params=["node1", "node2"])
def node(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def board(tmp_path: Path, node: str) -> Iterator[Board]:
    """A factory-fresh board: a formatted image with boot.py and main.py, behind a pty."""
    micropython = make_var("FW_FAT_MP")
    image = tmp_path / "flash.img"
    subprocess.run([micropython, str(TOOLS_MP / "fatimage.py"), str(image)], check=True)
    state = make_var(f"FW_STATE_{node}").split()
    master, slave = pty.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen(
        [micropython, str(TOOLS_MP / "rawrepl.py"), str(image), *state],
        stdin=master,
        stdout=master,
    )
    try:
        b = Board(os.ttyname(slave), image, slave, micropython)
        b.wait_for_boot()
        yield b
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)


def flash(board: Board, build: Path, node: str, *extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [
            "make",
            "--no-print-directory",
            f"flash-{node}",
            f"PORT={board.port}",
            f"BUILD={build}",
            f"MIP_INDEX={build / 'mip-index'}",
            "RESET_WAIT=0",
            # the sequence must work however full the board is: the margin is make firmware's
            "FLASH_MIN_FREE_KB=0",
            *extra,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode == 0:
        board.wait_for_boot()
    return proc


PUT = "def put(name, data):\n    with open(name, 'w') as f:\n        f.write(data)\n"


def test_full_install_then_reflash_on_one_image(board: Board, build: Path, node: str) -> None:
    # An earlier source install left modules behind (they would shadow the new .mpy files).
    board.mpremote(
        "exec",
        PUT + "import os\nput('stale.py', 'x = 1')\nos.mkdir('old')\nput('old/gone.py', 'y = 2')\n",
    )
    first = flash(board, build, node)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "No space left" not in first.stdout + first.stderr
    tree = {
        str(p.relative_to(build / node)): p.read_bytes()
        for p in (build / node).rglob("*")
        if p.is_file()
    }
    mplib = REPO / make_var("MPLIB")
    libs = {"lib/" + str(p.relative_to(mplib)): p.read_bytes() for p in mplib.rglob("*.mpy")}
    state = make_var(f"FW_STATE_{node}").split()
    files = board.files()
    assert set(files) == {"boot.py", "config.json", *tree, *libs, *state}
    for name, data in {**tree, **libs}.items():
        assert files[name] == data, name
    assert files["config.json"] == (build / f"{node}-config.json").read_bytes()
    installed = board.free_line()

    # What a flashed board measures is what make firmware measured (same files, same FAT).
    measured = next(x for x in first.stdout.splitlines() if re.match(rf"{node}: \d+ files", x))
    assert measured.split(": ", 1)[1] == installed

    # The firmware ran and its frame counter moved on; then the same firmware again.
    board.mpremote("exec", PUT + f"put('fcnt0.dat', {COUNTER!r})\n")
    again = flash(board, build, node)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No space left" not in again.stdout + again.stderr
    after = board.files()
    assert set(after) == set(files)
    assert after["fcnt0.dat"] == COUNTER.encode()  # the counter survives a re-flash
    # the same clusters as after the first install (the counter file is smaller, not fewer)
    assert board.free_line().split("bytes, ")[1] == installed.split("bytes, ")[1]


@pytest.mark.parametrize("node", ["node1"])
def test_frozen_flash_leaves_only_main_and_config(board: Board, build: Path, node: str) -> None:
    """After a custom image (make image-nodeN) the firmware is frozen: FROZEN=1 takes the
    old tree's modules off (they would shadow the frozen ones) and copies two files."""
    first = flash(board, build, node)
    assert first.returncode == 0, first.stdout + first.stderr
    frozen = flash(board, build, node, "FROZEN=1")
    assert frozen.returncode == 0, frozen.stdout + frozen.stderr
    assert " mip install " not in frozen.stdout
    files = board.files()
    lib = {f for f in files if f.startswith("lib/")}
    state = make_var(f"FW_STATE_{node}").split()
    assert set(files) == {"boot.py", "config.json", "main.py", *lib, *state}
    assert files["main.py"] == (REPO / node / "main.py").read_bytes()
