"""Fixtures for the firmware tests (see fw_mp.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fw_mp import MpRunner


@pytest.fixture
def mp(micropython_bin: str, tmp_path: Path) -> MpRunner:
    return MpRunner(micropython_bin, tmp_path)
