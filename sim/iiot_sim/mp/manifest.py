# ruff: noqa: F821  (include, package: MicroPython's manifest functions)
# Frozen into the 32-bit unix port by `make micropython` (mk/micropython.mk, FROZEN_MANIFEST):
# the simulated hardware's code then lives in the interpreter's image, as the board's own
# `machine` lives in its flash, so it costs the firmware's heap only its runtime objects.
# The port's standard variant keeps what it freezes (asyncio, mip, ...). The `machine` shim
# stays a file (an extensible built-in: frozen, it would replace the unix port's own for
# every program); busd.py is the bus process's script.
import os

include("$(PORT_DIR)/variants/standard/manifest.py")

package(
    "_simhw",
    files=sorted(f for f in os.listdir("_simhw") if f.endswith(".py") and f != "busd.py"),
)
