"""The demo tests drive the demo in a real terminal with the live view's test kit."""

from __future__ import annotations

import sys
from pathlib import Path

WATCH_TESTS = Path(__file__).resolve().parents[1] / "watch"
if str(WATCH_TESTS) not in sys.path:
    sys.path.insert(0, str(WATCH_TESTS))  # watch_kit: tmux, wait_for
