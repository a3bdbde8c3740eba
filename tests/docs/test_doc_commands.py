"""Every command the README and docs show must work as written.

Commands that need boards or Docker cannot run here, so they are checked instead: a `make`
line must name real targets and pass `make --dry-run`; an `iiot-*` line may use only flags
that command's `--help` lists. `make help` and the console scripts' `--help` run for real.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_BLOCK = re.compile(r"```(?:sh|bash|shell|console|text)?\n(.*?)```", re.DOTALL)
SCRIPTS = ("iiot-bridge", "iiot-sim", "iiot-watch")


def shell_lines() -> list[tuple[str, str]]:
    """(document, command) for every command line in a shell block."""
    found = []
    for doc in DOCS:
        for block in SHELL_BLOCK.findall(doc.read_text()):
            for raw in block.replace("\\\n", " ").splitlines():
                line = raw.strip().removeprefix("$ ").split(" #")[0].strip()
                plain = [w for w in line.split() if not re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", w)]
                if plain and plain[0] in ("make", *SCRIPTS):
                    found.append((doc.name, line))
    return found


def words(line: str) -> list[str]:
    """The command's words, with leading VAR=value assignments dropped."""
    parts = shlex.split(line)
    while parts and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", parts[0]):
        parts.pop(0)
    return parts


MAKE_LINES = [(doc, line) for doc, line in shell_lines() if words(line)[:1] == ["make"]]
SCRIPT_LINES = [
    (doc, line) for doc, line in shell_lines() if words(line) and words(line)[0] in SCRIPTS
]


def test_the_readme_shows_the_two_setup_commands() -> None:
    lines = {line for doc, line in shell_lines() if doc == "README.md"}
    assert "make demo" in lines and "make test" in lines
    assert len(MAKE_LINES) >= 10 and SCRIPT_LINES


@pytest.mark.parametrize(
    ("doc", "line"), MAKE_LINES, ids=[f"{doc}:{cmd}" for doc, cmd in MAKE_LINES]
)
def test_make_commands_dry_run(doc: str, line: str) -> None:
    argv = words(line)
    # --dry-run prints the recipes without running them (nothing is flashed or started).
    proc = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", *argv[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"{doc}: `{line}` fails a dry run:\n{proc.stderr}"
    assert "No rule to make target" not in proc.stderr


def script_help(name: str) -> str:
    binary = Path(sys.executable).parent / name
    proc = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize(
    ("doc", "line"), SCRIPT_LINES, ids=[f"{doc}:{cmd}" for doc, cmd in SCRIPT_LINES]
)
def test_console_script_flags_exist(doc: str, line: str) -> None:
    argv = words(line)
    flags = {w.split("=")[0] for w in argv[1:] if w.startswith("--")}
    known = set(re.findall(r"--[a-z0-9-]+", script_help(argv[0])))
    assert flags <= known, f"{doc}: `{line}` uses unknown flags {sorted(flags - known)}"


def test_make_help_lists_the_documented_targets() -> None:
    out = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=REPO, capture_output=True, text=True
    ).stdout
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)  # the colour codes around target names
    for target in ("demo", "test", "flash-node1", "flash-node2", "up", "bridge", "bench"):
        assert re.search(rf"\b{target}\b", out), f"make help does not list {target}"
