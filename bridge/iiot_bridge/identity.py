"""Who this bridge is, which gateway each serial port is, and the lock on its state.

Several bridges can serve one site (issue 15): on one host (one per gateway, e.g. the
systemd template ``iiot-bridge@<serial>``) or on several. Each needs a name of its own, the
**bridge id**, used in its MQTT client id, its status topic and last will
(``<prefix>/bridge/<id>/status``), the ``bridge`` tag of its own measurements and its
default state directory. Unless ``--bridge-id`` names it, the id is derived from the host
name and the gateways it reads: ``<host>`` for ``--serial auto`` (one bridge takes every
ST-LINK of the host), else ``<host>-<gateway>[-<gateway>...]``.

A **gateway label** names one port: the USB serial number of an ST-LINK (from the udev name
``/dev/iiot-gateway-<serial>`` that deploy/udev gives it, or from the USB descriptors when
the port is there at start), else the device path (``ttyACM0``, ``pts-3``). Names are
sanitised to letters, digits, ``-`` and ``_``: one MQTT topic level, a client id, a
directory name and an InfluxDB tag value, with no quoting anywhere.

The state directory holds the outbox; two bridges sharing one would both read and
acknowledge from the same counters and cursors. :class:`StateLock` takes an exclusive
``flock`` on ``<state dir>/lock`` for the life of the process (the kernel drops it when the
process ends, however it ends) and writes who holds it there, so a second bridge refuses
with a message naming the first.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import socket
import time
from pathlib import Path

from serial.tools import list_ports

ST_VENDOR_ID = 0x0483  # STMicroelectronics: the ST-LINK's virtual COM port
UDEV_PREFIX = "iiot-gateway-"  # deploy/udev's name for a gateway: /dev/iiot-gateway-<serial>
MAX_NAME = 64
LOCK_FILE = "lock"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class IdentityError(ValueError):
    """A bridge id or gateway name cannot be used; the message is meant for the operator."""


class StateLocked(RuntimeError):
    """Another process holds the state directory; the message names it."""


def sanitize(text: str) -> str:
    """``text`` as a name: runs of anything but letters, digits, ``-`` and ``_`` become one
    ``-``; a name longer than 64 characters is cut, with 8 hex digits of its hash appended
    so two long names stay apart. IdentityError when nothing is left."""
    name = _UNSAFE.sub("-", text).strip("-")
    if not name:
        raise IdentityError(f"{text!r} has no letters or digits to make a name of")
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9].rstrip('-')}-{digest}"
    return name


def check_name(text: str) -> str:
    """An explicit ``--bridge-id``: used as given, so it must already be a clean name."""
    name = text.strip()
    if not name or sanitize(name) != name:
        raise IdentityError(
            f"{text!r} is not usable: letters, digits, - and _ only, at most {MAX_NAME} "
            "characters, not starting or ending with -"
        )
    return name


def host_name() -> str:
    """This machine's short host name, sanitised."""
    return sanitize(socket.gethostname().split(".")[0] or "host")


def usb_serial(device: str) -> str | None:
    """The USB serial number of the port ``device`` (a symlink is followed), or None when
    it is not a USB port, has none, or is not there now."""
    real = os.path.realpath(device)
    for port in list_ports.comports():
        if os.path.realpath(port.device) == real:
            return str(port.serial_number) if port.serial_number else None
    return None


def gateway_label(device: str) -> str:
    """The gateway's name for the port ``device`` (see the module docstring)."""
    path = Path(device)
    if path.name.startswith(UDEV_PREFIX) and len(path.name) > len(UDEV_PREFIX):
        return sanitize(path.name[len(UDEV_PREFIX) :])
    serial = usb_serial(device)
    if serial:
        return sanitize(serial)
    parts = path.parts
    if len(parts) > 2 and parts[:2] == ("/", "dev"):
        return sanitize("-".join(parts[2:]))  # /dev/pts/3 -> pts-3
    return sanitize(path.name or device)


def stlinks() -> list[tuple[str, str]]:
    """(device, gateway label) of every ST-LINK virtual COM port present, by device."""
    found = []
    for port in sorted(list_ports.comports(), key=lambda p: p.device):
        if port.vid == ST_VENDOR_ID:
            label = port.serial_number or Path(port.device).name
            found.append((str(port.device), sanitize(str(label))))
    return found


def default_bridge_id(serials: list[str], host: str | None = None) -> str:
    """The id of a bridge reading ``serials`` (``["auto"]``: every ST-LINK) on ``host``."""
    host = host or host_name()
    if serials == ["auto"]:
        return host
    return sanitize("-".join([host, *(gateway_label(s) for s in serials)]))


class StateLock:
    """An exclusive, non-blocking ``flock`` on ``<directory>/lock``, held until release()
    or the end of the process. The file says who holds it (for the refusal's message)."""

    def __init__(self, directory: Path, holder: str) -> None:
        self.path = Path(directory) / LOCK_FILE
        self.holder = holder
        self._fd: int | None = None

    def acquire(self) -> StateLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            try:
                who = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
            finally:
                os.close(fd)
            raise StateLocked(
                f"state directory {self.path.parent} is in use by {who or 'another process'}"
                f" ({err.strerror or err}); give each bridge its own --state-dir"
                " (or --bridge-id, which names the default one)"
            ) from err
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = f"bridge {self.holder} (pid {os.getpid()} on {host_name()} since {stamp})\n"
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
        self._fd = fd
        return self

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> StateLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
