# node1's boot script (kept short: the board compiles it at every boot). The queue is made
# first, while the heap is empty, so its 8 KB buffer is one piece; config is then dropped.
import gc
import sys

import config

cfg = config.load()
del config, sys.modules["config"]
from sfqueue import SFQueue  # noqa: E402

queue = SFQueue(cfg["queue_len"])
gc.collect()
from sensor_node import run  # noqa: E402

run(cfg, queue)
