# node2's boot script (kept short: the board compiles it at every boot). The serial ring is
# made first, while the heap is empty, so its buffer is one piece; config is then dropped.
import gc
import sys

import config

cfg = config.load()
del config, sys.modules["config"]
from serialring import SerialRing  # noqa: E402

ring = SerialRing(cfg["ring_bytes"])
gc.collect()
from gateway_node import run  # noqa: E402

run(cfg, ring)
