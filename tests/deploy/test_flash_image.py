"""The production route: `make image-nodeN MPY_DIR=...` freezes the node's manifest into a
NUCLEO_F446RE image with MicroPython's stm32 port. That port is not here, so the recipe runs
against a checkout whose make files record what they are asked to do; the manifest itself
is evaluated by the real manifest tool, and its heap effect measured by freezing it into
the vendored 32-bit unix port."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_paths import REPO, load_module, make_var

sys.path.insert(0, str(REPO / "tools"))
import frozenheap  # noqa: E402
import fwmanifest  # noqa: E402

RECORDER = """\
all:
\t@echo "$(CURDIR) all BOARD=$(BOARD) FROZEN_MANIFEST=$(FROZEN_MANIFEST) BUILD=$(BUILD) \
MPY_LIB_DIR=$(MPY_LIB_DIR) $(MAKEFLAGS)" >> {log}
\t@mkdir -p $(BUILD) && echo hex > $(BUILD)/firmware.hex && echo dfu > $(BUILD)/firmware.dfu
submodules:
\t@echo "$(CURDIR) submodules BOARD=$(BOARD) FROZEN_MANIFEST=$(FROZEN_MANIFEST)" >> {log}
"""


MP_SRC = REPO / make_var("MP_SRC")  # mk/micropython.mk unpacks the vendored source there


def vendored() -> Path:
    if not (MP_SRC / "lib" / "micropython-lib").is_dir():
        subprocess.run(["make", "-s", "micropython"], cwd=REPO, capture_output=True)
    if not (REPO / make_var("MP_BIN")).exists():
        pytest.skip("no vendored MicroPython source (make micropython)")
    return MP_SRC


def run_make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True
    )


def fake_checkout(root: Path, log: Path, mplib: Path) -> Path:
    """A MicroPython checkout whose stm32 and mpy-cross make files only record."""
    stm32 = root / "ports" / "stm32"
    (stm32 / "boards" / "NUCLEO_F446RE").mkdir(parents=True)
    (stm32 / "Makefile").write_text(RECORDER.format(log=log))
    (root / "mpy-cross").mkdir()
    (root / "mpy-cross" / "Makefile").write_text(f'all:\n\t@echo "$(CURDIR) all" >> {log}\n')
    (root / "lib").mkdir()
    (root / "lib" / "micropython-lib").symlink_to(mplib)
    return root


def test_image_without_a_checkout_says_what_to_give() -> None:
    proc = run_make("image-node1")
    assert proc.returncode == 2
    assert "make image-node1 MPY_DIR=<a clone of the micropython repository>" in proc.stderr


def test_image_with_a_folder_that_is_no_checkout(tmp_path: Path) -> None:
    proc = run_make("image-node2", f"MPY_DIR={tmp_path}")
    assert proc.returncode == 2
    assert f"{tmp_path} is not a MicroPython checkout with ports/stm32/boards/NUCLEO_F446RE" in (
        proc.stderr
    )


def test_image_without_the_arm_toolchain(tmp_path: Path) -> None:
    mpy = fake_checkout(tmp_path / "mpy", tmp_path / "log", tmp_path)
    proc = run_make("image-node1", f"MPY_DIR={mpy}", "ARM_CC=no-such-gcc")
    assert proc.returncode == 2 and "the stm32 build needs no-such-gcc" in proc.stderr


@pytest.mark.parametrize("node", ["node1", "node2"])
def test_image_recipe_freezes_the_manifest_into_the_stm32_port(node: str, tmp_path: Path) -> None:
    src = vendored()
    log = tmp_path / "log"
    mpy = fake_checkout(tmp_path / "mpy", log, src / "lib" / "micropython-lib")
    build = tmp_path / "build"
    proc = run_make(f"image-{node}", f"MPY_DIR={mpy}", f"BUILD={build}", "ARM_CC=true")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    calls = log.read_text().splitlines()
    stm32 = str(mpy / "ports" / "stm32")
    manifest = f"FROZEN_MANIFEST={REPO / node / 'manifest.py'}"
    assert calls[0] == f"{stm32} submodules BOARD=NUCLEO_F446RE {manifest}"
    assert calls[1] == f"{mpy / 'mpy-cross'} all"
    assert calls[2].startswith(
        f"{stm32} all BOARD=NUCLEO_F446RE {manifest} BUILD={build}/image-{node}"
    )
    makeflags = calls[2].split("MPY_LIB_DIR=", 1)[1]
    assert re.search(r"(^| )-?j2\b", makeflags)
    assert "ARM_CC" not in makeflags and "MPY_DIR" not in makeflags  # none of our variables
    assert (build / f"NUCLEO_F446RE-{node}.hex").read_text() == "hex\n"
    assert (build / f"NUCLEO_F446RE-{node}.dfu").read_text() == "dfu\n"
    assert f"make flash-{node} PORT=/dev/ttyACM0 FROZEN=1" in proc.stdout


def test_image_refuses_a_micropython_lib_other_than_the_pins(tmp_path: Path) -> None:
    mplib = tmp_path / "mplib"
    for folder, version in (
        ("micropython/lora/lora", "0.2.0"),
        ("micropython/lora/lora-sync", "0.1.1"),
        ("micropython/lora/lora-sx127x", "0.2.5"),
        ("micropython/drivers/display/ssd1306", "0.1.0"),
    ):
        (mplib / folder).mkdir(parents=True)
        (mplib / folder / "manifest.py").write_text(f'metadata(version="{version}")\n')
    log = tmp_path / "log"
    mpy = fake_checkout(tmp_path / "mpy", log, mplib)
    proc = run_make("image-node1", f"MPY_DIR={mpy}", f"BUILD={tmp_path / 'b'}", "ARM_CC=true")
    assert proc.returncode != 0
    assert "lora-sx127x: pinned 0.1.2" in proc.stderr and "has 0.2.5" in proc.stderr
    assert [c.split()[1] for c in log.read_text().splitlines()] == ["submodules"]  # no build


def test_the_unix_ports_frozen_manifest_is_the_nodes_with_the_unix_variants() -> None:
    src = vendored()
    tool = load_module("mp_manifestfile_unix", src / "tools" / "manifestfile.py")
    port = src / "ports" / "unix"
    frozen = tool.ManifestFile(
        tool.MODE_FREEZE,
        {
            "MPY_DIR": str(src),
            "MPY_LIB_DIR": str(src / "lib" / "micropython-lib"),
            "PORT_DIR": str(port),
        },
    )
    frozen.execute(frozenheap.wrapper("node1"))
    got = [f.target_path for f in frozen.files()]
    ours = fwmanifest.load(REPO / "node1" / "manifest.py", src / "lib" / "micropython-lib")
    assert all(t in got for t in (e.target for e in ours.files + ours.libs))
    assert "asyncio/core.py" in got  # the unix variant's own frozen modules stay


def test_freezing_keeps_the_firmwares_bytecode_out_of_the_heap() -> None:
    """make frozen-heap for one node: every module imported from .mpy, then frozen."""
    vendored()
    proc = subprocess.run(
        ["make", "-s", "--no-print-directory", "frozen-heap", "FW_NODES=node1"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(
        r"node1: importing its (\d+) modules holds (\d+) B of heap from \.mpy, (\d+) B frozen",
        proc.stdout,
    )
    assert m, proc.stdout
    modules, from_mpy, frozen = (int(g) for g in m.groups())
    manifest = fwmanifest.load(REPO / "node1" / "manifest.py", MP_SRC / "lib" / "micropython-lib")
    assert modules == len(manifest.files) + len(manifest.libs)
    assert 0 < frozen < from_mpy
