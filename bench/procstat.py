"""CPU time, resident memory and open files of a process and its descendants, from /proc
(Linux)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text()
            out += [int(x) for x in text.split()]
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and every live descendant (a console script may exec or fork helpers)."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo += _children(p)
    return seen


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its live descendants."""
    total = 0
    for p in tree(pid):
        fields = _stat_fields(p)
        if fields:
            # After the name: state is index 0, so utime (field 14) is index 11, stime 12.
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` and its live descendants, in MB (10**6 bytes)."""
    total = 0
    for p in tree(pid):
        try:
            pages = int(Path(f"/proc/{p}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        total += pages * _PAGE
    return total / 1e6


def open_files(pid: int) -> set[str]:
    """Paths of the files ``pid`` has open (empty when it is gone or not ours to see)."""
    out = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                out.add(os.readlink(fd))
            except OSError:
                continue
    except OSError:
        pass
    return out


def wait_open(pid: int, path: str, timeout_s: float, check: Callable[[], None]) -> bool:
    """Poll /proc until ``pid`` or one of its children holds ``path`` open (True), or
    ``timeout_s`` passes (False). ``check`` runs on every poll and may raise (the process
    died).

    pyserial flushes the input buffer when it opens a port, so a line written before that
    moment would be lost: the benchmarks write nothing until the reader is listening.
    """
    target = os.path.realpath(path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        check()
        if any(target in open_files(p) for p in tree(pid)):
            return True
        time.sleep(0.05)
    return False
