# ruff: noqa: UP031  (MicroPython code: %-formatting is the compact idiom there)
# A minimal gateway for the simulator's own tests (not the project firmware): receives
# TELEMETRY, ACKs it, forwards new frames as serial contract lines with a line number n,
# and re-sends lines the host has not acknowledged ({"ack": n} on stdin).
import json
import select
import sys
import time

from lora import SX1276
from machine import SPI, Pin

import iiot_codec
from iiot_codec.line import decode_host_ack, encode_line


def main():
    with open("config.json") as f:
        cfg = json.load(f)
    me = cfg["node_id"]
    r = cfg["radio"]
    modem = SX1276(
        SPI(1),
        Pin("PB6", Pin.OUT, value=1),
        lora_cfg={
            "freq_khz": r["freq_khz"], "sf": r["sf"], "bw": r["bw"],
            "coding_rate": r["coding_rate"], "crc_en": True,
            "preamble_len": r["preamble_len"], "output_power": r["output_power"],
            "tx_ant": r["tx_ant"], "syncword": r["syncword"], "implicit_header": False,
        },
    )  # fmt: skip
    print('@{"ev":"boot","node":%d}' % me)
    poll = select.poll()
    poll.register(sys.stdin, select.POLLIN)
    last = {}
    n = 0
    unacked = []  # (n, line)
    resend_at = time.ticks_add(time.ticks_ms(), 1000)
    while True:
        pkt = modem.recv(timeout_ms=200)
        if pkt is not None:
            try:
                f = iiot_codec.decode(pkt, last_fcnt=last.get(pkt[1]))
            except iiot_codec.CodecError:
                f = None
            if f is not None and f.kind == "telemetry":
                modem.send(iiot_codec.encode_ack(me, f.src, f.seq))
                if last.get(f.src) != f.fcnt:
                    last[f.src] = f.fcnt
                    n += 1
                    line = encode_line(pkt, rssi=pkt.rssi, snr=pkt.snr / 4, n=n)
                    print(line)
                    unacked.append((n, line))
                    del unacked[:-50]
        while poll.poll(0):
            text = sys.stdin.readline()
            if not text:
                poll.unregister(sys.stdin)
                break
            a = decode_host_ack(text)
            if a is not None:
                unacked[:] = [u for u in unacked if u[0] > a]
        if time.ticks_diff(time.ticks_ms(), resend_at) >= 0:
            resend_at = time.ticks_add(time.ticks_ms(), 1000)
            for _, line in unacked:
                print(line)


if __name__ == "__main__":
    main()
