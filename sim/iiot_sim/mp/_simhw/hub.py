# A simulated board's one UDP socket on 127.0.0.1, kept small: it lives in the firmware's
# heap. It talks to the orchestrator's radio hub (IIOT_SIM_HUB: radio, watchdog, reset,
# control) and to the board's bus process (IIOT_SIM_BUS: I2C transactions, see busd.py).
# It also samples the GC heap and prints `@{"ev":"heap",...}` so the peak heap is measured
# from outside the firmware.
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
import struct
import time

NODE = int(os.getenv("IIOT_SIM_NODE") or "0")
_HEAP_MS = int(os.getenv("IIOT_SIM_HEAP_MS") or "500")
handlers = {}  # control op -> handler(msg)
_hub = None
_bus = None
_sock = None
_poll = None
_seq = [0]
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


def _control(data):
    try:
        msg = json.loads(data[1:])
        h = handlers.get(msg.get("op"))
    except (ValueError, AttributeError):
        return
    if h:
        h(msg)


def recv(timeout_ms):
    """The next radio message within timeout_ms (bytes), or None; runs control messages."""
    if _sock is None:
        time.sleep_ms(timeout_ms)
        return None
    deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
    while True:
        left = max(0, time.ticks_diff(deadline, time.ticks_ms()))
        if _poll.poll(left):
            data = _sock.recv(1200)
            if data[:1] == b"K":
                _control(data)
            elif data[:1] in (b"P", b"D"):
                return data
        elif not left:
            return None


def service():
    """Run pending control messages without blocking."""
    if _sock is not None:
        recv(0)


def bus(op, bus_id, addr, data, nread):
    """One I2C transaction in the bus process: (acked count, bytes read); OSError(errno).

    Without a bus process (IIOT_SIM_BUS unset) the models run in this process.
    """
    if _bus is None:
        from _simhw import i2cbus

        return i2cbus.local(op, bus_id, addr, data, nread)
    seq = _seq[0] = (_seq[0] + 1) & 0xFF
    _sock.sendto(struct.pack(">BBBBH", op, seq, bus_id, addr, nread) + data, _bus)
    while True:
        if not _poll.poll(1000):
            raise OSError(110)  # no answer: like a bus timeout (ETIMEDOUT)
        r = _sock.recv(1200)
        if r[:1] == b"K":
            _control(r)
        elif r[:1] == b"B" and r[1] == seq:
            if r[2]:
                raise OSError(r[2])
            return (r[3] << 8) | r[4], r[5:]


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
            '@{"ev":"heap","node":%d,"live":%d,"peak_live":%d,"peak_alloc":%d,"total":%d}'
            % (NODE, h[4], h[2], h[3], gc.mem_alloc() + gc.mem_free())
        )


_hub = _addr("IIOT_SIM_HUB")
_bus = _addr("IIOT_SIM_BUS")
if _hub is not None or _bus is not None:
    _sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    _sock.bind(socket.getaddrinfo("127.0.0.1", 0)[0][-1])
    _poll = select.poll()
    _poll.register(_sock, select.POLLIN)
    send(('H{"node":%d}' % NODE).encode())
