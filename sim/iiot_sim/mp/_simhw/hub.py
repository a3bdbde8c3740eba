# A simulated board's one UDP socket on 127.0.0.1. It talks to the orchestrator's radio hub
# (IIOT_SIM_HUB: radio, watchdog, reset, control) and to the board's bus process
# (IIOT_SIM_BUS: I2C transactions, see busd.py). It samples the GC heap and prints
# `@{"ev":"heap",...}`, so the peak heap is measured from outside the firmware, with the
# stand-ins' own share ("standin"), the radio's SPI transaction count ("spi") and the time
# it spent receiving ("rx_ms"), both since boot.
#
# It lives in the firmware's heap, which the board would not have to give, so it allocates
# as little as the board's own calls would: I2C goes through one preallocated buffer (its
# own socket to the bus process, one transaction at a time: read with readinto); a radio
# or control datagram from the hub is read as one bytes object of its size (at most 264
# bytes; MicroPython's sockets have no recv_into, and readinto would run queued datagrams
# together), like the RxPacket the driver allocates for it anyway.
#
# board -> hub: H<json> C<json chip settings> T<u32 toa_us><payload> R<u32 session>
#   S<u32 session> W<u32 timeout_ms> F X<reason>
# hub -> board: P<u32 session><i16 rssi><i8 snr x4><u8 flags><payload>
#   D<u32 session><u16 ms left> K<json control>
# board -> bus: op seq bus addr <u16 nread> <bytes to write>;  bus -> board: B seq status
#   <u16 acked> <bytes read>
import gc
import json
import os
import select
import socket
import time

NODE = int(os.getenv("IIOT_SIM_NODE") or "0")
_HEAP_MS = int(os.getenv("IIOT_SIM_HEAP_MS") or "500")
_MAX_DATAGRAM = 264  # P with a 255-byte packet
handlers = {}  # control op -> handler(msg)
radio = [None]  # handler(data, n) for P and D datagrams (the SX1276 model)
tickers = []  # device models' update() functions, run on every service()
wakeup = [None]  # fn() -> microseconds until a device model's next event, or None
standin = [0]  # bytes of heap the stand-ins hold that the board would not
spi = [0]  # SPI transactions with the radio since boot
rx_ms = [0]  # milliseconds the radio spent receiving since boot
BUF = bytearray(1100)  # I2C requests and answers (largest: an SSD1306 frame write), T
MV = memoryview(BUF)
_hub = None
_bus = None
_sock = None  # to the hub
_poll = None
_bsock = None  # to the bus process
_bpoll = None
_seq = [0, False]  # last request, an answer may still come for a timed-out one
_heap = [0, 0, 0, 0, 0]  # next sample, next report, peak live, peak alloc, last live


def _addr(var):
    port = os.getenv(var)
    return socket.getaddrinfo("127.0.0.1", int(port))[0][-1] if port else None


def connected():
    return _hub is not None


def send(data):
    if _hub is not None:
        try:
            _sock.sendto(data, _hub)
        except OSError:
            pass  # the orchestrator is gone: the board runs on, like with no antenna


def _dispatch(data):
    kind = data[0]
    if kind == 0x4B:  # K: control message
        try:
            msg = json.loads(data[1:])
            h = handlers.get(msg.get("op"))
        except (ValueError, AttributeError):
            return
        if h:
            h(msg)
    elif kind in (0x50, 0x44) and radio[0] is not None:  # P, D
        radio[0](data, len(data))


def _drain(timeout_ms):
    # Datagrams waiting (or arriving within timeout_ms), each dispatched as it is read.
    while True:
        ready = False
        for _ in _poll.ipoll(timeout_ms):
            ready = True
        if not ready:
            return
        data = _sock.recv(_MAX_DATAGRAM)
        if data:
            _dispatch(data)
        timeout_ms = 0


def service():
    """Run pending messages and device models' timed events, without blocking."""
    if _sock is not None:
        _drain(0)
    for t in tickers:
        t()


def wait(us):
    """Sleep up to ``us`` microseconds, woken early by a datagram or a device model's next
    event (like WFI woken by an interrupt), then service()."""
    if wakeup[0] is not None:
        due = wakeup[0]()
        if due is not None and due < us:
            us = due if due > 0 else 0
    if _sock is not None and us >= 1000:
        _drain(us // 1000)
    elif us > 0:
        time.sleep_us(us)
    service()


def bus(op, bus_id, addr, nread, wlen):
    """One I2C transaction in the bus process, its bytes to write already at BUF[6:6+wlen]:
    returns the acked count, with the bytes read at BUF[5:5+nread]; OSError(errno).

    Without a bus process (IIOT_SIM_BUS unset) the models run in this process.
    """
    if 5 + nread > len(BUF):
        raise OSError(22)  # EINVAL: longer than any transfer the firmware makes
    if _bus is None:
        from _simhw import i2cbus

        acked, data = i2cbus.local(op, bus_id, addr, bytes(MV[6 : 6 + wlen]), nread)
        BUF[5 : 5 + len(data)] = data
        return acked
    if _seq[1]:  # a late answer must not run into this one's (readinto would join them)
        for _ in _bpoll.ipoll(0):
            _bsock.readinto(BUF)
        _seq[1] = False
    seq = _seq[0] = (_seq[0] + 1) & 0xFF
    BUF[0] = op
    BUF[1] = seq
    BUF[2] = bus_id
    BUF[3] = addr
    BUF[4] = nread >> 8
    BUF[5] = nread & 0xFF
    _bsock.sendto(MV[: 6 + wlen], _bus)
    while True:
        ready = False
        for _ in _bpoll.ipoll(1000):
            ready = True
        if not ready:
            _seq[1] = True
            raise OSError(110)  # no answer: like a bus timeout (ETIMEDOUT)
        n = _bsock.readinto(BUF, 5 + nread)
        if n and n >= 5 and BUF[0] == 0x42 and BUF[1] == seq:  # B: our answer
            if BUF[2]:
                raise OSError(BUF[2])
            return (BUF[3] << 8) | BUF[4]


def measured(a):
    """Add what the heap grew by since mem_alloc() was ``a`` (after a collection) to the
    stand-ins' share; returns the new mem_alloc()."""
    gc.collect()
    b = gc.mem_alloc()
    standin[0] += b - a
    return b


def heap_tick():
    """Sample the heap; every 2 s print the peaks (live = what survives a collection)."""
    h = _heap
    a = gc.mem_alloc()
    if a > h[3]:
        h[3] = a
    now = time.ticks_ms()
    if time.ticks_diff(now, h[0]) < 0:
        return
    h[0] = time.ticks_add(now, _HEAP_MS)
    gc.collect()
    h[4] = gc.mem_alloc()
    if h[4] > h[2]:
        h[2] = h[4]
    if time.ticks_diff(now, h[1]) >= 0:
        h[1] = time.ticks_add(now, 2000)
        print(
            '@{"ev":"heap","node":%d,"live":%d,"peak_live":%d,"peak_alloc":%d,"total":%d,'
            '"standin":%d,"spi":%d,"rx_ms":%d}'
            % (NODE, h[4], h[2], h[3], gc.mem_alloc() + gc.mem_free(), standin[0], spi[0], rx_ms[0])
        )


def _socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
    p = select.poll()
    p.register(s, select.POLLIN)
    return s, p


_hub = _addr("IIOT_SIM_HUB")
_bus = _addr("IIOT_SIM_BUS")
if _hub is not None:
    _sock, _poll = _socket()
    send(('H{"node":%d}' % NODE).encode())
if _bus is not None:
    _bsock, _bpoll = _socket()
    _bsock.setblocking(False)  # readinto returns the one answer waiting (see bus())
