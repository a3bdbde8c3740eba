"""Machine information and tool versions recorded with every run."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from typing import Any

from . import nodered, tools


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_mb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _run_version(argv: list[str], pattern: str) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"not available: {exc}"
    match = re.search(pattern, proc.stdout + proc.stderr)
    return match.group(1) if match else "unknown"


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _micropython_version(binary: str) -> str:
    code = "import sys; v = sys.implementation.version; print('MP', v[0], v[1], v[2], sys.version)"
    text = _run_version([binary, "-c", code], r"MP (.+)")
    parts = text.split(" ", 3)
    if len(parts) == 4:
        return f"{'.'.join(parts[:3])} ({parts[3]})"
    return text


def _victoria_metrics_version(binary: str) -> str:
    # Debian's build prints nothing for -version; its package version is the release.
    found = _run_version([binary, "-version"], r"(v\d+\.\d+\.\d+\S*)")
    if found not in ("unknown", ""):
        return found
    return _run_version(["dpkg-query", "-W", "-f", "${Version}", "victoria-metrics"], r"(\S+)")


def machine_info() -> dict[str, Any]:
    mp = tools.micropython()
    vm = tools.find_program(tools.VICTORIA_METRICS)
    mosq = tools.find_program(tools.MOSQUITTO)
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_mb": _mem_total_mb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "micropython": _micropython_version(mp) if mp else "not installed",
        "mosquitto": _run_version([mosq, "-h"], r"mosquitto version (\S+)")
        if mosq
        else "not installed",
        "victoria_metrics": _victoria_metrics_version(vm) if vm else "not installed",
        "paho_mqtt": _package("paho-mqtt"),
        "influxdb_client": _package("influxdb-client"),
        "pyserial": _package("pyserial"),
        "node_red": nodered.versions(),
        "valgrind": _run_version(["valgrind", "--version"], r"valgrind-(\S+)"),
    }
