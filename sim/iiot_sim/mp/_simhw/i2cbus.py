# The I2C buses of a simulated board: which device models answer at which address.
#
# IIOT_SIM_I2C lists the devices, comma-separated, as KIND@ADDR or BUS:KIND@ADDR (bus 1 by
# default), e.g. "bme680@0x77,sht3x@0x44,ssd1306@0x3c". Models are created on first use.
# Control messages: {"op": "unplug"|"plug", "addr": 68, "bus": 1} and
# {"op": "fail", "addr": 68, "n": 3, "errno": 5} (the next n transactions fail).
import errno
import os

from _simhw import control

ENODEV = errno.ENODEV
EIO = errno.EIO

_kinds = {}  # (bus, addr) -> kind
_models = {}  # (bus, addr) -> model instance
_unplugged = {}  # (bus, addr) -> True
_fail = {}  # (bus, addr) -> [count, errno]


def _parse(spec):
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        bus = 1
        if ":" in item:
            b, item = item.split(":", 1)
            bus = int(b)
        kind, addr = item.split("@")
        _kinds[(bus, int(addr, 0))] = kind.strip().lower()


def _key(msg):
    return (int(msg.get("bus", 1)), int(msg["addr"]))


def _on_unplug(msg):
    _unplugged[_key(msg)] = True


def _on_plug(msg):
    key = _key(msg)
    if key in _unplugged:
        del _unplugged[key]
        # A re-plugged device powers up again: its registers are back at reset values.
        if key in _models:
            del _models[key]


def _on_fail(msg):
    _fail[_key(msg)] = [int(msg.get("n", 1)), int(msg.get("errno", EIO))]


_parse(os.getenv("IIOT_SIM_I2C") or "")
control.on("unplug", _on_unplug)
control.on("plug", _on_plug)
control.on("fail", _on_fail)


def _create(kind, addr):
    if kind == "bme680":
        from _simhw.bme680 import BME680

        return BME680(addr)
    if kind == "sht3x":
        from _simhw.sht3x import SHT3x

        return SHT3x(addr)
    if kind == "ssd1306":
        from _simhw.ssd1306 import SSD1306

        return SSD1306(addr)
    raise ValueError("unknown simulated I2C device %r" % kind)


def device(bus, addr):
    """The model at ``addr`` or OSError(ENODEV), as a stm32 I2C address NACK."""
    key = (bus, addr)
    kind = _kinds.get(key)
    if kind is None or key in _unplugged:
        raise OSError(ENODEV)
    f = _fail.get(key)
    if f:
        f[0] -= 1
        if f[0] <= 0:
            del _fail[key]
        raise OSError(f[1])
    model = _models.get(key)
    if model is None:
        model = _models[key] = _create(kind, addr)
    return model


def scan(bus):
    found = []
    for key in _kinds:
        if key[0] == bus and key not in _unplugged:
            found.append(key[1])
    found.sort()
    return found


def local(op, bus, addr, data, nread):
    """One transaction in this process, as busd.py does it: (acked, bytes read)."""
    if op == 0x53:
        found = scan(bus)
        return len(found), bytes(found)
    dev = device(bus, addr)
    acked = dev.i2c_write((data,)) if op in (0x57, 0x58) else 0
    buf = bytearray(nread)
    if op in (0x52, 0x58):
        dev.i2c_read(buf)
    return acked, bytes(buf)
