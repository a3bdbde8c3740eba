"""Paths and helpers shared by the deployment tests (a plain module: conftest.py is not
importable by name when other test folders have one too)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
GRAFANA = DEPLOY / "grafana"
DASHBOARDS_DIR = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"
ALERT_RULES = PROVISIONING / "alerting" / "iiot-rules.yaml"
MOSQUITTO_DIR = DEPLOY / "mosquitto"


def load_module(name: str, path: Path) -> ModuleType:
    """Import a file that is not on sys.path under a name no other module uses."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def make_var(name: str) -> str:
    """A variable as the Makefile computes it."""
    proc = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", "print-%: ; @echo $($*)", f"print-{name}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip()
