"""Benchmarks for the LoRa telemetry pipeline (issue 7).

``python -m bench`` (``make bench``) measures the codec, the radio frame, the bridge against
real Mosquitto and VictoriaMetrics servers, and the firmware in the MicroPython unix port,
then writes ``bench/results.json`` and the tables in ``docs/performance.md``.
Every figure is reported, never asserted: a part whose dependency is missing says
"not available: <reason>" instead of a number.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# The codec lives in shared/ and is importable from an editable install; putting shared/
# first also works when that install was made before shared/iiot_codec/__init__.py existed
# (setuptools then maps it as an empty namespace package).
_SHARED = str(REPO / "shared")
if _SHARED not in sys.path:
    sys.path.insert(0, _SHARED)
