# The stm32 port's `machine` (NUCLEO-F446RE) as the firmware sees it, for the unix port
# (the `machine` shim re-exports it). Buses and pins reach the board's hardware models:
# I2C goes to the bus process (busd.py) with the stm32 port's OSError codes (ENODEV: no
# ACK, EIO: data NACK, ETIMEDOUT); SPI reaches the SX1276 register model (sx1276.py) on
# the bus its chip select pin addresses, nothing else answers (MISO reads 0xFF); pins carry
# levels both ways (chip select and reset into the chip, DIO lines out of it, with the
# port's soft IRQs); WDT feeds go to the orchestrator, which resets the board when one is
# missed. Kept small: it lives in the firmware's heap.
import gc
import os
import sys
import time

import micropython

from _simhw import hub

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
# pin name -> [level, irq handler, trigger, hard, wire(level) into a chip, Pin for the irq]
_pins = {}


def _state(id):
    s = _pins.get(id)
    if s is None:
        # B1 (PC13) has an external pull-up: it reads 1 until pressed.
        s = _pins[id] = [1 if id == "PC13" else 0, None, 0, False, None, None]
    return s


def _drive(s, level):
    # The MCU drives a pin; a chip input wired to it (chip select, reset) follows.
    if s[0] != level:
        s[0] = level
        if s[4] is not None:
            s[4](level)


def _level(name, level):
    # Something outside the MCU drives a pin (a chip's DIO line, the button): edge IRQs.
    s = _state(name)
    if s[0] == level:
        return
    s[0] = level
    t = Pin.IRQ_FALLING if level == 0 else Pin.IRQ_RISING
    if s[1] is not None and s[2] & t == t:
        if s[3]:
            s[1](s[5])
        else:
            try:
                micropython.schedule(s[1], s[5])  # soft IRQ, as the stm32 port's default
            except RuntimeError:
                pass  # schedule queue full: the edge is lost, as on the board


def wire(name, fn):
    """Connect a chip input to pin ``name``: fn(level) on every change the MCU drives."""
    _state(name)[4] = fn


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 17
    ALT = 2
    ANALOG = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 0x10110000
    IRQ_FALLING = 0x10210000

    def __init__(self, id, mode=-1, pull=-1, value=None, alt=-1):
        if isinstance(id, Pin):
            id = id.id
        if not (isinstance(id, str) and len(id) in (3, 4) and id[0] == "P" and id[1] in "ABCDEFGH"):
            raise ValueError("Pin(%s) doesn't exist" % (id,))
        self.id = id
        self._s = _state(id)
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None, alt=-1):
        if value is not None:
            _drive(self._s, 1 if value else 0)

    def value(self, x=None):
        if x is None:
            hub.service()
            return self._s[0]
        _drive(self._s, 1 if x else 0)

    __call__ = value

    def on(self):
        _drive(self._s, 1)

    def off(self):
        _drive(self._s, 0)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        s = self._s
        s[1] = handler
        s[2] = trigger
        s[3] = hard
        s[5] = self


def _press(msg):
    _level(msg.get("pin", "PC13"), 0)
    _level(msg.get("pin", "PC13"), 1)


hub.handlers["press"] = _press
hub.handlers["pin"] = lambda msg: _level(msg["pin"], 1 if msg.get("value") else 0)


class I2C:
    def __init__(self, id=-1, scl=None, sda=None, freq=400000, timeout=50000):
        if id not in (1, 2, 3, -1):
            raise ValueError("I2C(%s) doesn't exist" % (id,))
        self._id = 1 if id == -1 else id

    # Each call: pending messages first (they reuse hub.BUF), then the bytes to write into
    # hub.BUF[6:], then one transaction; what was read is at hub.BUF[5:].
    def _mem(self, memaddr, addrsize):
        hub.service()
        hub.heap_tick()
        if addrsize == 16:
            hub.BUF[6] = (memaddr >> 8) & 0xFF
            hub.BUF[7] = memaddr & 0xFF
            return 2
        hub.BUF[6] = memaddr & 0xFF
        return 1

    def scan(self):
        self._mem(0, 8)
        n = hub.bus(0x53, self._id, 0, 128, 0)
        return [hub.BUF[5 + i] for i in range(n)]

    def writeto(self, addr, buf, stop=True):
        self._mem(0, 8)
        n = len(buf)
        hub.BUF[6 : 6 + n] = buf
        return hub.bus(0x57, self._id, addr, 0, n)

    def writevto(self, addr, vector, stop=True):
        self._mem(0, 8)
        n = 0
        for part in vector:
            k = len(part)
            hub.BUF[6 + n : 6 + n + k] = part
            n += k
        return hub.bus(0x57, self._id, addr, 0, n)

    def readfrom(self, addr, nbytes, stop=True):
        self._mem(0, 8)
        hub.bus(0x52, self._id, addr, nbytes, 0)
        return bytes(hub.MV[5 : 5 + nbytes])

    def readfrom_into(self, addr, buf, stop=True):
        self._mem(0, 8)
        n = len(buf)
        hub.bus(0x52, self._id, addr, n, 0)
        _copy(buf, n)

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        k = self._mem(memaddr, addrsize)
        n = len(buf)
        hub.BUF[6 + k : 6 + k + n] = buf
        hub.bus(0x57, self._id, addr, 0, k + n)

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        hub.bus(0x58, self._id, addr, nbytes, self._mem(memaddr, addrsize))
        return bytes(hub.MV[5 : 5 + nbytes])

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        n = len(buf)
        hub.bus(0x58, self._id, addr, n, self._mem(memaddr, addrsize))
        _copy(buf, n)


def _copy(buf, n):
    # What the bus answered into the caller's buffer, allocating nothing.
    b = hub.BUF
    for i in range(n):
        buf[i] = b[5 + i]


_spi = {}  # bus id -> spibus.Bus


class SPI:
    """A hardware SPI bus; the device whose chip select is low answers (sx1276.py)."""

    MSB = 0
    LSB = 1

    def __init__(self, id=1, *args, **kwargs):
        if id not in (1, 2, 3, 4):
            raise ValueError("SPI(%s) doesn't exist" % (id,))
        b = _spi.get(id)
        if b is None:
            if os.getenv("IIOT_SIM_SPI") is None:
                try:  # the wiring comes from the firmware's board module: its heap, not ours
                    import board  # noqa: F401
                except ImportError:
                    pass
            gc.collect()
            a = gc.mem_alloc()
            from _simhw import spibus

            b = _spi[id] = spibus.bus(id)
            hub.measured(a)
        self._bus = b

    def init(self, *args, **kwargs):
        pass

    def deinit(self):
        pass

    def read(self, nbytes, write=0):
        buf = bytearray(nbytes)
        self._bus.xfer(None, buf, nbytes, write)
        return bytes(buf)

    def readinto(self, buf, write=0):
        self._bus.xfer(None, buf, len(buf), write)

    def write(self, buf):
        self._bus.xfer(buf, None, len(buf), 0)

    def write_readinto(self, wbuf, rbuf):
        self._bus.xfer(wbuf, rbuf, len(wbuf), 0)


_wdt = [1000, 0]  # timeout ms, ticks of the last feed message


class WDT:
    def __init__(self, id=0, timeout=5000):
        if not 1 <= timeout <= 32768:
            raise ValueError("WDT timeout too long")
        _wdt[0] = timeout
        _wdt[1] = time.ticks_ms()
        hub.send(b"W" + timeout.to_bytes(4, "big"))

    def feed(self):
        # The board's feed is one register write and cannot fail; this stand-in also
        # services the hub, which allocates. Feed first, and keep the stand-in's own
        # MemoryError (a tight heap test) out of the firmware: the next feed retries.
        now = time.ticks_ms()
        if time.ticks_diff(now, _wdt[1]) >= _wdt[0] // 8:  # the hub allows for this
            _wdt[1] = now
            hub.send(b"F")
        try:
            hub.service()
            hub.heap_tick()
        except MemoryError:
            pass


class ADC:
    CORE_TEMP = 16
    CORE_VREF = 17
    CORE_VBAT = 18

    def __init__(self, ch):
        self._ch = ch

    def read_u16(self):
        if self._ch == ADC.CORE_VREF:  # 1.21 V reference against the supply
            return int(1.21 * 65535 / float(os.getenv("IIOT_SIM_VDD") or "3.3"))
        return 0x8000


def reset():
    # The orchestrator restarts the process, like a hardware reset.
    print("machine.reset()")
    hub.send(b"Xreset")
    if not hub.connected():
        sys.exit(1)
    while True:
        time.sleep_ms(100)


soft_reset = deepsleep = reset


def lightsleep(ms=0):
    time.sleep_ms(ms)


_idles = [0]


def idle():
    # WFI: the core sleeps until the next interrupt, at the latest the 1 ms SysTick. A
    # driver polling through idle() gets a heap sample every 16 calls: gc.mem_alloc() walks
    # the whole heap (about 0.35M instructions at 128K), too dear for every millisecond.
    _idles[0] += 1
    if not _idles[0] & 15:
        hub.heap_tick()
    hub.wait(1000 - time.ticks_us() % 1000)


def unique_id():
    uid = os.getenv("IIOT_SIM_UID") or "33004f000f513536373230%02x" % hub.NODE
    return bytes(int(uid[i : i + 2], 16) for i in range(0, len(uid), 2))


def reset_cause():
    return int(os.getenv("IIOT_SIM_RESET_CAUSE") or "1")


def freq():
    return (180000000, 180000000, 45000000, 90000000)
