# node1 boot script: runs the sensor node (sensor_node.py) when executed as main.py.
#
# Kept tiny because the board compiles it from source at every boot. Order matters for the
# heap: the codec first, while the heap is empty (compiling it needs the most room), then
# the store-and-forward queue (the largest buffer, in one piece), then the rest of the application.
# The configuration module is dropped once read.
import gc
import sys


def main():
    # isort: off
    import iiot_codec  # noqa: F401
    import config

    # isort: on
    cfg = config.load()
    del config, sys.modules["config"]
    from sfqueue import SFQueue

    queue = SFQueue(cfg["queue_len"])
    gc.collect()
    from sensor_node import run

    run(cfg, queue)


if __name__ == "__main__":
    main()
