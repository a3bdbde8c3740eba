# Stand-in for the stm32 port's `machine` (NUCLEO-F446RE) in the unix port. The classes live
# in _simhw/mcu.py; this shim measures what importing them costs the heap, which the board
# (whose `machine` is in flash) does not spend: hub.standin, reported in the `heap` console
# event. Only this shim's own bytes go unmeasured (tests/sim/test_sx1276_heap.py).
import gc

gc.collect()
_a = gc.mem_alloc()
from _simhw import hub, mcu  # noqa: E402

hub.measured(_a)


def __getattr__(name):
    return getattr(mcu, name)
