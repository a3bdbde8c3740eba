# Stand-in for the stm32 port's `machine` (NUCLEO-F446RE) in the unix port: the subset the
# firmware uses. I2C goes to the board's device models (bus process) with the stm32 port's
# OSError codes (ENODEV: no ACK, EIO: data NACK, ETIMEDOUT); WDT feeds go to the
# orchestrator, which resets the board when one is missed. Kept small: it lives in the
# firmware's heap.
import os
import sys
import time

from _simhw import hub

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
_pins = {}  # name -> [value, handler, trigger]


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
        # B1 (PC13) has an external pull-up: it reads 1 until pressed.
        self._s = _pins.setdefault(id, [1 if id == "PC13" else 0, None, 0])
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None, alt=-1):
        if value is not None:
            self._s[0] = 1 if value else 0

    def value(self, x=None):
        if x is None:
            hub.service()
            return self._s[0]
        self._s[0] = 1 if x else 0

    __call__ = value

    def on(self):
        self._s[0] = 1

    def off(self):
        self._s[0] = 0

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        self._s[1] = handler
        self._s[2] = trigger


def _level(name, level):
    s = _pins.setdefault(name, [1, None, 0])
    if s[0] == level:
        return
    s[0] = level
    t = Pin.IRQ_FALLING if level == 0 else Pin.IRQ_RISING
    if s[1] is not None and s[2] & t == t:
        s[1](Pin(name))  # like a soft IRQ, run from the next stand-in call


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

    def _x(self, op, addr, data=b"", nread=0):
        hub.service()
        hub.heap_tick()
        return hub.bus(op, self._id, addr, data, nread)

    def scan(self):
        return list(self._x(0x53, 0, b"", 128)[1])

    def writeto(self, addr, buf, stop=True):
        return self._x(0x57, addr, bytes(buf))[0]

    def writevto(self, addr, vector, stop=True):
        return self._x(0x57, addr, b"".join(vector))[0]

    def readfrom(self, addr, nbytes, stop=True):
        return self._x(0x52, addr, b"", nbytes)[1]

    def readfrom_into(self, addr, buf, stop=True):
        buf[:] = self._x(0x52, addr, b"", len(buf))[1]

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self._x(0x57, addr, _mem(memaddr, addrsize) + bytes(buf))

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        return self._x(0x58, addr, _mem(memaddr, addrsize), nbytes)[1]

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        buf[:] = self._x(0x58, addr, _mem(memaddr, addrsize), len(buf))[1]


def _mem(memaddr, addrsize):
    return bytes((memaddr >> 8, memaddr & 0xFF)) if addrsize == 16 else bytes((memaddr & 0xFF,))


class SPI:
    # Nothing else answers on SPI (the radio is the `lora` stand-in): MISO reads 0xFF.
    def __init__(self, id=1, *args, **kwargs):
        if id not in (1, 2, 3, 4):
            raise ValueError("SPI(%s) doesn't exist" % (id,))

    def init(self, *args, **kwargs):
        pass

    def read(self, nbytes, write=0):
        return b"\xff" * nbytes

    def readinto(self, buf, write=0):
        buf[:] = b"\xff" * len(buf)

    def write(self, buf):
        pass

    def write_readinto(self, wbuf, rbuf):
        rbuf[:] = b"\xff" * len(rbuf)


_wdt = [1000, 0]  # timeout ms, ticks of the last feed message


class WDT:
    def __init__(self, id=0, timeout=5000):
        if not 1 <= timeout <= 32768:
            raise ValueError("WDT timeout too long")
        _wdt[0] = timeout
        _wdt[1] = time.ticks_ms()
        hub.send(b"W" + timeout.to_bytes(4, "big"))

    def feed(self):
        hub.service()
        hub.heap_tick()
        now = time.ticks_ms()
        if time.ticks_diff(now, _wdt[1]) >= _wdt[0] // 8:  # the hub allows for this
            _wdt[1] = now
            hub.send(b"F")


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


def idle():
    hub.service()
    time.sleep_ms(1)


def unique_id():
    uid = os.getenv("IIOT_SIM_UID") or "33004f000f513536373230%02x" % hub.NODE
    return bytes(int(uid[i : i + 2], 16) for i in range(0, len(uid), 2))


def reset_cause():
    return int(os.getenv("IIOT_SIM_RESET_CAUSE") or "1")


def freq():
    return (180000000, 180000000, 45000000, 90000000)
