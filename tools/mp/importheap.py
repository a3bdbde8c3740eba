# What importing a firmware costs the heap: MicroPython (unix port) only.
#
#   micropython tools/mp/importheap.py MODULE...
#
# Imports the stand-in `machine` first (the board's is in flash), then each MODULE in order,
# and prints one JSON line: the heap bytes the MODULEs hold once imported (gc.mem_alloc()
# after a collection, minus the same before), and how many were loaded from .mpy files
# (the others are frozen into the interpreter). Run it with the firmware as .mpy files on
# MICROPYPATH, or frozen into the interpreter (make frozen-heap).
import gc
import json
import sys

# Not this script's folder: the firmware's modules come from MICROPYPATH or .frozen only.
_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else ""
if _here in sys.path:
    sys.path.remove(_here)

import machine  # noqa: E402, F401  (the stand-in, outside the measurement)

gc.collect()
before = gc.mem_alloc()
mpy = []
for name in sys.argv[1:]:
    __import__(name)
    if getattr(sys.modules[name], "__file__", "").endswith(".mpy"):
        mpy.append(name)
gc.collect()
heap = gc.mem_alloc() - before
print(json.dumps({"modules": len(sys.argv) - 1, "mpy": len(mpy), "heap": heap, "from_mpy": mpy}))
