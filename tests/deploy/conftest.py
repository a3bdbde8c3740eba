"""Fixtures of the deployment tests: the schema module, compose file, dashboards, rules."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest
import yaml
from deploy_paths import ALERT_RULES, DASHBOARDS_DIR, DEPLOY, REPO, load_module


@pytest.fixture(scope="session")
def schema() -> ModuleType:
    return load_module("iiot_deploy_schema", DEPLOY / "dashboards" / "schema.py")


@pytest.fixture(scope="session")
def envgen() -> ModuleType:
    return load_module("iiot_deploy_envgen", DEPLOY / "envgen.py")


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict[str, Any]]:
    """The committed dashboards by title."""
    boards = [json.loads(p.read_text(encoding="utf-8")) for p in DASHBOARDS_DIR.glob("*.json")]
    return {board["title"]: board for board in boards}


@pytest.fixture(scope="session")
def alert_rules() -> dict[str, dict[str, Any]]:
    """The committed alert rules by uid."""
    doc = yaml.safe_load(ALERT_RULES.read_text(encoding="utf-8"))
    return {rule["uid"]: rule for group in doc["groups"] for rule in group["rules"]}
