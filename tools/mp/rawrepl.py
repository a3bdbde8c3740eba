# ruff: noqa: UP031  (MicroPython: %-formatting)
# A board's filesystem behind its REPL, for running the real flash recipe without a board.
#
#   micropython tools/mp/rawrepl.py IMAGE [STATE-FILE...]   (stdin/stdout: the serial line)
#
# IMAGE (tools/mp/fatimage.py: the board's FAT geometry, written by the same oofatfs) is
# mounted at /flash, the working directory; sys.path is the board's. The REPL speaks what
# mpremote uses of the board's: the raw REPL (Ctrl-A), raw-paste mode, soft reset (Ctrl-D)
# and machine.reset(). Each command runs here, in the board's filesystem, so `mpremote cp`,
# `mip install`, `run` and `exec` do to IMAGE what they do to a board's flash; IMAGE is
# written back after every command. A reset does not run main.py (no hardware here): the
# board comes up at its REPL. It stands in for the firmware's first boot, though: when
# main.py exists, each STATE-FILE the firmware writes (fcnt0.dat, ...) is created if
# missing, as one 512 B cluster, so a re-flash meets the space a running board has used.
# A test puts this process behind a pty and runs `make flash-node1 PORT=<the pty>`.
import io
import os
import struct
import sys
import time

import fatimage

WINDOW = 128  # raw-paste flow-control window (the board's stdin buffer is 256 bytes)
BANNER = b'MicroPython (board image) with a FAT filesystem; Type "help()" for more information.\r\n'
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
BOARD_PATH = ["", ".frozen", "/flash", "/flash/lib"]

_in = sys.stdin.buffer
_out = sys.stdout.buffer


class HardReset(Exception):
    pass


class _Machine:
    """The `machine` the commands see: reset() reboots the board (here: remounts IMAGE)."""

    def reset(self):
        raise HardReset()

    def soft_reset(self):
        raise HardReset()


def write(data):
    _out.write(data)


def read():
    while True:
        try:
            c = _in.read(1)
        except OSError:  # a pty nobody has open: wait for the next connection
            time.sleep_ms(20)
            continue
        if c:
            return c[0]
        if c == b"":  # the host closed the line for good
            raise SystemExit(0)


class Board:
    def __init__(self, image, state=()):
        self.state = state
        # absolute: the working directory becomes /flash, as on the board
        self.image = image if image.startswith("/") else os.getcwd() + "/" + image
        self.dev = fatimage.load(image)
        fatimage.mount(self.dev)
        os.chdir(fatimage.MOUNT)
        self.globals = {}
        self.raw = False

    def save(self):
        fatimage.save(self.dev, self.image)

    def reboot(self):
        """Hard reset: the volume is unmounted and mounted again from the block device."""
        self.save()
        os.chdir("/")
        os.umount(fatimage.MOUNT)
        self.dev = fatimage.load(self.image)
        fatimage.mount(self.dev)
        os.chdir(fatimage.MOUNT)
        self.globals = {}
        self.raw = False
        self.boot()
        write(BANNER + b">>> ")

    def boot(self):
        """What the firmware would leave on the filesystem when main.py runs."""
        names = os.listdir()
        if "main.py" not in names:
            return
        for name in self.state:
            if name not in names:
                try:
                    fatimage.reserve(name)
                except OSError as e:  # as the firmware would: it runs on, and says so
                    write(b"firmware: cannot write %s: %s\r\n" % (name.encode(), str(e).encode()))
        self.save()

    def soft_reboot(self):
        self.globals = {}
        write(b"MPY: soft reboot\r\n")

    def execute(self, source):
        """Run one command; output, EOF, error text, EOF, as the board's raw REPL does."""
        sys.modules["machine"] = _Machine()
        err = io.StringIO()
        try:
            exec(compile(source, "<stdin>", "exec"), self.globals)
        except HardReset:
            self.reboot()
            return False
        except Exception as e:  # the command's own error goes back to the host
            sys.print_exception(e, err)
        finally:
            sys.path[:] = BOARD_PATH
        self.save()
        write(b"\x04" + err.getvalue().encode() + b"\x04")
        return True

    def raw_paste(self):
        write(b"R\x01" + struct.pack("<H", WINDOW) + b"\x01")
        data = bytearray()
        remain = WINDOW
        while True:
            c = read()
            if c == 4:  # end of data
                write(b"\x04")
                return self.execute(bytes(data))
            if c == 3:
                write(b"\x04")
                return True
            data.append(c)
            remain -= 1
            if remain == 0:
                write(b"\x01")
                remain = WINDOW

    def raw_repl(self):
        write(RAW_BANNER + b">")
        line = bytearray()
        while True:
            c = read()
            if c == 1:  # Ctrl-A: raw-paste request after "\x05A", else restart the raw REPL
                if len(line) == 2 and line[0] == 5:
                    if line[1] != ord("A"):
                        write(b"R\x00")
                    elif not self.raw_paste():
                        return
                    line = bytearray()
                    write(b">")
                    continue
                line = bytearray()
                write(RAW_BANNER + b">")
            elif c == 2:  # Ctrl-B: friendly REPL
                write(b"\r\n" + BANNER + b">>> ")
                self.raw = False
                return
            elif c == 3:
                line = bytearray()
            elif c == 4:
                write(b"OK")
                if not line:  # soft reset, back into the raw REPL
                    write(b"\r\n")
                    self.soft_reboot()
                    write(RAW_BANNER + b">")
                    continue
                if not self.execute(bytes(line)):
                    return
                line = bytearray()
                write(b">")
            else:
                line.append(c)

    def friendly_repl(self):
        while True:
            c = read()
            if c == 1:
                self.raw = True
                self.raw_repl()
            elif c == 4:
                self.soft_reboot()
                write(BANNER + b">>> ")
            elif c in (3, 13):
                write(b"\r\n>>> ")


def main(argv):
    if not argv:
        print("usage: rawrepl.py IMAGE [STATE-FILE...]", file=sys.stderr)
        return 2
    board = Board(argv[0], argv[1:])
    sys.path[:] = BOARD_PATH
    write(BANNER + b">>> ")
    board.friendly_repl()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
