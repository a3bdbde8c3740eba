# ruff: noqa: UP031, B904  (MicroPython: %-formatting, no "raise ... from")
# The board's filesystem, for real: FAT on 64 KiB of internal flash (128 x 512 B sectors,
# stm32f411.ld's FLASH_FS), formatted and written by the same oofatfs the board runs.
# MicroPython (unix port) only: it needs os.VfsFat.
#
#   micropython tools/mp/fatimage.py IMAGE [--name N] [--min-free BYTES]
#       [--tree DIR] [--lib DIR] [--file DEST=SRC]... [--reserve NAME]...
#
# formats a fresh volume as the board does at first boot (mkfs, then the factory boot.py and
# main.py), copies DIR's files to /flash, DIR's lib tree to /flash/lib, single files, and one
# placeholder cluster per file the firmware writes at run time (--reserve), then prints what
# the volume holds and what is free (os.statvfs), saves IMAGE, and exits 1 when the free
# space is under --min-free. `fatimage.py IMAGE --report` prints the figures of an image.
# tools/mp/rawrepl.py serves such an image behind a raw REPL, for the flash recipe's test.
import os
import sys

SECTOR = 512
SECTORS = 128
MOUNT = "/flash"
ENOSPC = 28

# ports/stm32/factoryreset.c (MicroPython 1.29) for a board without USB and network, as
# NUCLEO_F446RE: the files a freshly formatted internal flash gets.
BOOT_PY = (
    "# boot.py -- run on boot to configure USB and filesystem\r\n"
    "# Put app code in main.py\r\n"
    "\r\n"
    "import machine\r\n"
    "import pyb\r\n"
    "#pyb.main('main.py') # main script to run after this one\r\n"
)
MAIN_PY = "# main.py -- put your code here!\r\n"
FACTORY_FILES = (("boot.py", BOOT_PY), ("main.py", MAIN_PY))


class FlashBdev:
    """A block device of the board's geometry, held in RAM (the stm32 flash bdev's API)."""

    def __init__(self, data=None):
        self.data = bytearray(data) if data is not None else bytearray(SECTOR * SECTORS)
        if len(self.data) != SECTOR * SECTORS:
            raise ValueError("an image is %d bytes, not %d" % (SECTOR * SECTORS, len(self.data)))

    def readblocks(self, n, buf):
        start = n * SECTOR
        buf[:] = self.data[start : start + len(buf)]

    def writeblocks(self, n, buf):
        start = n * SECTOR
        self.data[start : start + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:  # block count
            return SECTORS
        if op == 5:  # block size
            return SECTOR
        if op in (1, 2, 3, 6):  # init, deinit, sync, erase
            return 0
        return None


def fresh():
    """A block device formatted like a board's first boot, with the factory files."""
    dev = FlashBdev()
    os.VfsFat.mkfs(dev)
    mount(dev)
    try:
        for name, text in FACTORY_FILES:
            with open(MOUNT + "/" + name, "w") as f:
                f.write(text)
    finally:
        os.umount(MOUNT)
    return dev


def mount(dev):
    os.mount(os.VfsFat(dev), MOUNT)


def load(path):
    with open(path, "rb") as f:
        return FlashBdev(f.read())


def save(dev, path):
    with open(path, "wb") as f:
        f.write(dev.data)


def _isdir(path):
    try:
        return os.stat(path)[0] & 0x4000 != 0
    except OSError:
        return False


def _makedirs(path):
    parts = path.split("/")
    for i in range(2, len(parts) + 1):
        sub = "/".join(parts[:i])
        if sub and not _isdir(sub):
            os.mkdir(sub)


def copy_file(src, dest):
    """Copy a host file onto the volume; a full volume raises OSError(ENOSPC) naming dest."""
    _makedirs(dest.rsplit("/", 1)[0])
    try:
        with open(src, "rb") as fin, open(dest, "wb") as fout:
            while True:
                chunk = fin.read(SECTOR)
                if not chunk:
                    break
                fout.write(chunk)
    except OSError as e:
        if e.args[0] == ENOSPC:
            raise OSError(ENOSPC, "no space left for " + dest)
        raise


def tree_files(src, dest):
    """(source, destination) of a host directory's files, in sorted order (as mpremote cp -r);
    dotfiles (build stamps) are no part of a board's tree."""
    out = []
    for name, kind, *_ in sorted(os.ilistdir(src)):
        if name.startswith("."):
            continue
        if kind & 0x4000:
            out += tree_files(src + "/" + name, dest + "/" + name)
        else:
            out.append((src + "/" + name, dest + "/" + name))
    return out


def reserve(dest):
    """One cluster for a file the firmware writes at run time (each is under 512 bytes)."""
    try:
        with open(dest, "wb") as f:
            f.write(b"\0" * SECTOR)
    except OSError as e:
        if e.args[0] == ENOSPC:
            raise OSError(ENOSPC, "no space left for " + dest)
        raise


def walk(path):
    for name, kind, *_ in os.ilistdir(path):
        full = path + "/" + name
        if kind & 0x4000:
            yield from walk(full)
        else:
            yield full


def usage(point=MOUNT):
    """(files, bytes, clusters used, clusters free, cluster size) of a mounted volume."""
    files = list(walk(point))
    size = sum(os.stat(f)[6] for f in files)
    st = os.statvfs(point)
    return len(files), size, st[2] - st[3], st[3], st[0]


def fresh_free():
    """Free clusters and cluster size of a freshly formatted volume (before factory files)."""
    dev = FlashBdev()
    os.VfsFat.mkfs(dev)
    mount(dev)
    try:
        st = os.statvfs(MOUNT)
        return st[3], st[0]
    finally:
        os.umount(MOUNT)


def describe(name, figures):
    files, size, used, free, cluster = figures
    return "%s: %d files, %d bytes, %d clusters used, %.1f KiB free" % (
        name,
        files,
        size,
        used,
        free * cluster / 1024,
    )


def _args(argv):
    opts = {"tree": [], "lib": [], "file": [], "reserve": [], "name": None, "min-free": 0}
    image = None
    flags = set()
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--report", "--fresh"):
            flags.add(a[2:])
        elif a.startswith("--") and a[2:] in opts:
            if i + 1 >= len(argv):
                raise ValueError(a + " needs a value")
            i += 1
            if isinstance(opts[a[2:]], list):
                opts[a[2:]].append(argv[i])
            else:
                opts[a[2:]] = argv[i]
        elif a.startswith("-") or image is not None:
            raise ValueError("unknown argument " + a)
        else:
            image = a
        i += 1
    if image is None and "fresh" not in flags:
        raise ValueError("usage: fatimage.py IMAGE [--tree DIR] [--lib DIR] ... (see its header)")
    return image, opts, flags


def plan(opts):
    """[(source or None for a reserved cluster, destination)] in the order they are written."""
    items = []
    for tree in opts["tree"]:
        items += tree_files(tree, MOUNT)
    for lib in opts["lib"]:
        items += tree_files(lib, MOUNT + "/lib")
    for spec in opts["file"]:
        dest, _, src = spec.partition("=")
        if not src:
            raise ValueError("--file takes DEST=SRC, not " + spec)
        items.append((src, MOUNT + "/" + dest))
    for name in opts["reserve"]:
        items.append((None, MOUNT + "/" + name))
    return items


def _clusters(items):
    n = 0
    for src, _ in items:
        size = SECTOR if src is None else os.stat(src)[6]
        n += (size + SECTOR - 1) // SECTOR
    return n


def build(image, opts):
    """Format, fill, save. Returns the usage figures; raises OSError(ENOSPC, text) naming
    the first file that did not fit and how many clusters the rest needs at least."""
    items = plan(opts)
    dev = fresh()
    mount(dev)
    try:
        for i, (src, dest) in enumerate(items):
            try:
                if src is None:
                    reserve(dest)
                else:
                    copy_file(src, dest)
            except OSError as e:
                if e.args[0] != ENOSPC:
                    raise
                short = _clusters(items[i:])
                raise OSError(
                    ENOSPC,
                    "%s did not fit; the rest (%d files) needs at least %.1f KiB more"
                    % (dest, len(items) - i, short * SECTOR / 1024),
                )
        return usage()
    finally:
        os.umount(MOUNT)
        save(dev, image)


def main(argv):
    try:
        image, opts, flags = _args(argv)
    except ValueError as e:
        print("error:", e, file=sys.stderr)
        return 2
    if "fresh" in flags:
        free, cluster = fresh_free()
        print("fresh volume: %d clusters = %.1f KiB free" % (free, free * cluster / 1024))
        if image is None:
            return 0
    name = opts["name"] or image
    if "report" in flags:
        mount(load(image))
        try:
            print(describe(name, usage()))
        finally:
            os.umount(MOUNT)
        return 0
    try:
        figures = build(image, opts)
    except OSError as e:
        if e.args[0] == ENOSPC:
            print(
                "error: %s does not fit the board's filesystem: %s" % (name, e.args[-1]),
                file=sys.stderr,
            )
            return 1
        raise
    print(describe(name, figures))
    free_bytes = figures[3] * figures[4]
    if free_bytes < int(opts["min-free"]):
        print(
            "error: %s leaves %.1f KiB free on the board's filesystem, under the %.1f KiB margin"
            % (name, free_bytes / 1024, int(opts["min-free"]) / 1024),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
