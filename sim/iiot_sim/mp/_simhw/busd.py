# A board's I2C devices, as a process of their own (protocol: see hub.py).
#
# Run as: micropython busd.py, with IIOT_SIM_BUS_PORT (UDP port to serve on 127.0.0.1) and
# the model settings (IIOT_SIM_I2C, IIOT_SIM_ENV, IIOT_SIM_SEED, IIOT_SIM_NODE,
# IIOT_SIM_TRUTH, IIOT_SIM_DISPLAY_DIR). Control messages: 'K' + JSON, answered with 'k'.
# It exits when its standard input closes (the orchestrator is gone).
import os
import select
import socket
import struct
import sys

from _simhw import control, i2cbus


def main():
    control.on("ping", lambda msg: None)
    port = int(os.getenv("IIOT_SIM_BUS_PORT") or "0")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
    req = bytearray(6 + 1100)
    rsp = bytearray(5 + 1100)
    rmv = memoryview(rsp)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(sys.stdin, select.POLLIN)
    print("@bus ready %d" % port)
    while True:
        for obj, _ev in poller.poll(-1):
            if obj is not sock:
                if not sys.stdin.read(1):
                    return  # stdin closed: the orchestrator has gone
                continue
            n, peer = sock.recvfrom(len(req))
            if not n:
                continue
            req[: len(n)] = n
            size = len(n)
            op = req[0]
            if op == 0x4B:  # K: control
                control.dispatch(memoryview(req)[1:size])
                sock.sendto(b"k", peer)
                continue
            if size < 6:
                continue
            bus = req[2]
            addr = req[3]
            nread = struct.unpack_from(">H", req, 4)[0]
            data = memoryview(req)[6:size]
            status = 0
            acked = 0
            try:
                if op == 0x53:  # S: scan
                    found = i2cbus.scan(bus)
                    for i in range(len(found)):
                        rsp[5 + i] = found[i]
                    acked = len(found)
                    nread = acked
                else:
                    dev = i2cbus.device(bus, addr)
                    if op in (0x57, 0x58):
                        acked = dev.i2c_write((data,))
                    if op in (0x52, 0x58):
                        dev.i2c_read(rmv[5 : 5 + nread])
            except OSError as e:
                status = e.args[0] if e.args else 5
                nread = 0
            rsp[0] = 0x42  # B
            rsp[1] = req[1]
            rsp[2] = status
            struct.pack_into(">H", rsp, 3, acked)
            sock.sendto(rmv[: 5 + nread], peer)


main()
