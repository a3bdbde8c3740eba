# ruff: noqa: UP031  (MicroPython code: %-formatting is the compact idiom there)
# A minimal sensor node for the simulator's own tests (not the project firmware): it uses
# the same APIs and console events, so the orchestrator, channel and report can be tested
# without depending on the real firmware's state. One SHT3x reading per interval, sent with
# ACK and up to `max_retries` retransmissions; unacknowledged readings are dropped.
import json
import time

import machine
from lora import SX1276
from machine import I2C, SPI, Pin

import iiot_codec


def load():
    with open("config.json") as f:
        return json.load(f)


def read_fcnt():
    try:
        with open("fcnt") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 0


def main():
    cfg = load()
    me = cfg["node_id"]
    gw = cfg["gateway_id"]
    interval = cfg.get("interval_ms") or cfg["interval_s"] * 1000
    key = cfg.get("key")
    key = bytes(int(key[i : i + 2], 16) for i in range(0, 32, 2)) if key else None
    r = cfg["radio"]
    modem = SX1276(
        SPI(1),
        Pin("PB6", Pin.OUT, value=1),
        dio0=Pin("PA10", Pin.IN),
        dio1=Pin("PB3", Pin.IN),
        reset=Pin("PC7", Pin.OUT, value=1),
        lora_cfg={
            "freq_khz": r["freq_khz"], "sf": r["sf"], "bw": r["bw"],
            "coding_rate": r["coding_rate"], "crc_en": True,
            "preamble_len": r["preamble_len"], "output_power": r["output_power"],
            "tx_ant": r["tx_ant"], "syncword": r["syncword"], "implicit_header": False,
        },
    )  # fmt: skip
    i2c = I2C(1, scl=Pin("PB8"), sda=Pin("PB9"))
    wdt = machine.WDT(timeout=int(cfg.get("wdt_ms", 8000)))
    fcnt = read_fcnt()
    print('@{"ev":"boot","node":%d,"fcnt":%d}' % (me, fcnt))
    pressed = [0]
    Pin("PC13", Pin.IN).irq(lambda p: pressed.__setitem__(0, 1), trigger=Pin.IRQ_FALLING)
    rn = 0
    first = True
    ack_ms = modem.get_time_on_air_us(12) // 1000 + 150
    hang_at = int(cfg["hang_after"]) if cfg.get("hang_after") else -1
    while True:
        start = time.ticks_ms()
        wdt.feed()
        if rn == hang_at:
            while True:  # a firmware bug: the loop hangs, the watchdog must reset the board
                time.sleep_ms(100)
        readings = None
        try:
            i2c.writeto(0x44, b"\x24\x00")
            time.sleep_ms(16)
            d = i2c.readfrom(0x44, 6)
            readings = {
                "temperature": -45 + 175 * ((d[0] << 8) | d[1]) / 65535,
                "humidity": 100 * ((d[3] << 8) | d[4]) / 65535,
            }
        except OSError as e:
            print("sht3x error", e)
        if readings is not None:
            print('@{"ev":"reading","node":%d,"rn":%d,"r":%s}' % (me, rn, json.dumps(readings)))
            fcnt += 1
            with open("fcnt", "w") as f:
                f.write(str(fcnt))
            frame = iiot_codec.encode_telemetry(
                me, fcnt, readings, dst=gw, key=key, full_counter=first
            )
            print('@{"ev":"tx","node":%d,"rn":%d,"fcnt":%d}' % (me, rn, fcnt))
            acked = False
            for attempt in range(cfg.get("max_retries", 3) + 1):
                modem.send(frame)
                deadline = time.ticks_add(time.ticks_ms(), ack_ms)
                while not acked:
                    left = time.ticks_diff(deadline, time.ticks_ms())
                    if left <= 0:
                        break
                    pkt = modem.recv(timeout_ms=left)
                    if pkt is None:
                        break
                    try:
                        a = iiot_codec.decode(pkt)
                    except iiot_codec.CodecError:
                        continue
                    if a.kind == "ack" and a.dst == me and a.seq == fcnt & 0xFFFF:
                        acked = True
                if acked:
                    break
                time.sleep_ms(20 + attempt * 30)
            if acked:
                first = False
                print('@{"ev":"acked","node":%d,"fcnt":%d}' % (me, fcnt))
            else:
                print('@{"ev":"drop","node":%d,"rn":%d}' % (me, rn))
            rn += 1
        while time.ticks_diff(time.ticks_ms(), start) < interval and not pressed[0]:
            wdt.feed()
            time.sleep_ms(10)
        pressed[0] = 0


if __name__ == "__main__":
    main()
