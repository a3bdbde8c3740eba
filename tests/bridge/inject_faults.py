"""Faults for test_bridge_outbox_faults, loaded into the real bridge process before it
starts: the InfluxDB sink's 3rd write raises an unexpected error (a bug), and its 6th
kills the sink's thread outright (SystemExit ends a thread without any handler)."""

from __future__ import annotations

from collections.abc import Sequence

from iiot_bridge.outbox import Row
from iiot_bridge.outputs.base import Done
from iiot_bridge.outputs.influx import InfluxSink

_write = InfluxSink.write
_calls = [0]


def _faulty_write(self: InfluxSink, rows: Sequence[Row]) -> Done:
    if rows:
        _calls[0] += 1
        if _calls[0] == 3:
            raise RuntimeError("injected: a bug in the sink")
        if _calls[0] == 6:
            raise SystemExit("injected: the sink's thread is killed")
    return _write(self, rows)


InfluxSink.write = _faulty_write  # type: ignore[method-assign]
