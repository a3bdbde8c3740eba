# ruff: noqa: UP031  (MicroPython: %-formatting)
# Run on the board by `make flash-nodeN` (mpremote run) before a new firmware is copied.
#
# Removes the old firmware's code: main.py first (after the reset that follows, the board
# stays at its REPL, so the old firmware's watchdog cannot reset it mid-copy), then every
# other .py/.mpy file outside lib/ (and main.off, left by an older flash recipe), and
# directories left empty. The filesystem has no room for two firmwares side by side, and a
# stale module (say a .py from a source install) would shadow its new .mpy. Kept: boot.py,
# lib/ (mip updates it file by file) and all data, such as config.json and the frame
# counter's fcnt0.dat/fcnt1.dat, which must survive a re-flash or the gateway would refuse
# the node's frames as replays.
import os

KEEP = ("boot.py", "lib")


def _is_dir(path):
    return os.stat(path)[0] & 0x4000 != 0


def _clean(path):
    removed = 0
    for name in os.listdir(path or "."):
        full = path + "/" + name if path else name
        if full in KEEP:
            continue
        if _is_dir(full):
            removed += _clean(full)
            if not os.listdir(full):
                os.rmdir(full)
        elif name.endswith(".py") or name.endswith(".mpy") or full == "main.off":
            os.remove(full)
            removed += 1
    return removed


def main():
    try:
        os.remove("main.py")
        n = 1
    except OSError:
        n = 0
    n += _clean("")
    st = os.statvfs("/flash")
    print("flash_clean: removed %d files, %d bytes free" % (n, st[0] * st[3]))


main()
