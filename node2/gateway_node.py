# node2's application (main.py boots it): the gateway. Receives frames, checks and ACKs
# them (gateway.Gateway), writes one line per accepted frame to the serial port (stdout)
# and keeps it until the host acknowledges it ({"ack": n} on stdin); adds its own SHT3x
# readings every interval and a STATS frame every stats_interval_s.
import gc
import random
import select
import sys
import time

import board
import machine
from console import event, log
from display import Display
from fcounter import FrameCounter
from gateway import Gateway
from radio import Radio
from sfqueue import quantize
from sht3x import SHT3x
from uptime import Uptime

import iiot_codec

_RX_SLICE_MS = 40  # one recv() at a time, so the serial line and the timers stay served
_DISPLAY_MS = 1000
_RESEND_MAX_MS = 60000
_RESEND_BURST = 8  # lines per loop pass, so a long resend never starves the radio
_HOST_LINE = 64


class Node2:
    def __init__(self, cfg, ring):
        self.cfg = cfg
        self.node = cfg["node_id"]
        self.key = cfg["key"]
        self.interval_ms = cfg["interval_ms"] or int(cfg["interval_s"] * 1000)
        self.stats_ms = int(cfg["stats_interval_s"] * 1000)
        self.resend_ms = cfg["resend_ms"]
        self.uptime = Uptime()
        self.ring = ring
        self.errors = {"sht3x": 0, "i2c": 0, "serial": 0, "loop": 0, "encode": 0}
        self.counter = FrameCounter(reserve=cfg["fcnt_reserve"])
        event("boot", self.node)
        self.radio = Radio(board.radio, cfg["radio"], int(cfg["radio_retry_s"] * 1000))
        self.gateway = Gateway(self.node, cfg["keys"], self.radio.send, self.forward)
        self._i2c = None
        self._sht = None
        self.display = Display(self.i2c, board.OLED_ADDR, cfg["display"])
        self.own = {}
        self.rn = 0
        self._host = bytearray(_HOST_LINE)
        self._host_len = 0
        self._poll = None
        try:
            self._poll = select.poll()
            self._poll.register(sys.stdin, select.POLLIN)
        except Exception as e:
            log("node2: host acks unavailable (%r)" % (e,))
        now = time.ticks_ms()
        self._resend_wait = self.resend_ms
        self._resend_at = time.ticks_add(now, self._resend_wait)
        self._resend_idx = -1  # >= 0 while a resend pass is under way
        self.next_reading = now
        self.next_stats = time.ticks_add(now, self.stats_ms)
        self.next_display = now
        if not self.radio.ready():
            log("node2: radio not found (%r), retrying" % (self.radio.last_error,))

    def i2c(self):
        if self._i2c is None:
            self._i2c = board.i2c()
        return self._i2c

    # --- serial line -------------------------------------------------------------------

    def _write(self, frame, rssi, snr, n):
        try:
            print(iiot_codec.encode_line(frame, rssi=rssi, snr=snr, n=n))
        except Exception:
            self.errors["serial"] += 1

    def forward(self, frame, rssi=None, snr=None):
        """A frame for the host: into the ring, and out on the serial line at once."""
        n = self.ring.add(frame, rssi, snr)
        self._write(frame, rssi, snr, n)
        return n

    def _host_input(self):
        # Non-blocking: read what the host sent, one character at a time, up to a newline.
        p = self._poll
        if p is None:
            return
        for _ in range(_HOST_LINE * 2):
            if not p.poll(0):
                return
            c = sys.stdin.read(1)
            if not c:  # end of input: no host on this side, stop polling
                p.unregister(sys.stdin)
                self._poll = None
                return
            if c == "\n" or c == "\r":
                if self._host_len:
                    self._host_line(bytes(self._host[: self._host_len]))
                self._host_len = 0
            elif self._host_len < _HOST_LINE:
                self._host[self._host_len] = ord(c)
                self._host_len += 1

    def _host_line(self, line):
        n = iiot_codec.decode_host_ack(line)
        if n is None:
            return
        if self.ring.ack(n):
            # The host is there and keeping up: resend soon again if it stops answering.
            self._resend_wait = self.resend_ms
            self._resend_at = time.ticks_add(time.ticks_ms(), self._resend_wait)
            self._resend_idx = -1

    def _resend(self, now):
        ring = self.ring
        if not len(ring):
            self._resend_idx = -1
            self._resend_at = time.ticks_add(now, self._resend_wait)
            return
        if self._resend_idx < 0:
            if time.ticks_diff(now, self._resend_at) < 0:
                return
            self._resend_idx = 0
        for _ in range(_RESEND_BURST):
            if self._resend_idx >= len(ring):
                # Pass done; back off while the host stays silent (no host attached).
                self._resend_idx = -1
                self._resend_wait = min(self._resend_wait * 2, _RESEND_MAX_MS)
                self._resend_at = time.ticks_add(now, self._resend_wait)
                return
            frame, rssi, snr, n = ring.entry(self._resend_idx)
            self._write(frame, rssi, snr, n)
            self._resend_idx += 1

    # --- own frames --------------------------------------------------------------------

    def _own_frame(self, kind, values):
        fcnt = self.counter.next()
        try:
            if kind == "stats":
                frame = iiot_codec.encode_stats(
                    self.node, fcnt, values, key=self.key, full_counter=True
                )
            else:
                frame = iiot_codec.encode_telemetry(
                    self.node, fcnt, values, key=self.key, ack_req=False, full_counter=True
                )
        except ValueError:
            self.errors["encode"] += 1
            return None
        self.forward(frame)
        return fcnt

    def take_reading(self):
        try:
            if self._sht is None:
                self._sht = SHT3x(self.i2c(), board.SHT3X_ADDR)
            t, h = self._sht.measure()
        except Exception as e:
            self.errors["sht3x"] += 1
            self._sht = None
            if isinstance(e, OSError):
                self.errors["i2c"] += 1
                self._i2c = None  # the only sensor failed on the bus: build it again
                self.display.screen.dev = None
            return
        r = {"temperature": quantize(t, 2), "humidity": quantize(h, 2)}
        self.own = r
        event("reading", self.node, rn=self.rn, r=r)
        fcnt = self._own_frame("telemetry", r)
        if fcnt is not None:
            event("tx", self.node, rn=self.rn, fcnt=fcnt)
        self.rn += 1

    def stats(self):
        gw = self.gateway
        return {
            "packets_received": gw.packets_received,
            "crc_errors": gw.crc_errors + self.radio.crc_errors,
            "duplicates": gw.duplicates,
            "auth_failures": gw.auth_failures,
            "queue_drops": self.ring.drops,
            "uptime": self.uptime.update(),
        }

    # --- the loop ----------------------------------------------------------------------

    def step(self):
        if self.radio.ready():
            pkt = self.radio.recv(_RX_SLICE_MS)
            if pkt is not None:
                self.gateway.handle(pkt, pkt.rssi, pkt.snr / 4)
        else:
            time.sleep_ms(_RX_SLICE_MS)
        self._host_input()
        now = time.ticks_ms()
        self._resend(now)
        if time.ticks_diff(now, self.next_reading) >= 0:
            self.next_reading = time.ticks_add(now, self.interval_ms)
            self.take_reading()
            gc.collect()
        if time.ticks_diff(now, self.next_stats) >= 0:
            self.next_stats = time.ticks_add(now, self.stats_ms)
            self._own_frame("stats", self.stats())
        if time.ticks_diff(now, self.next_display) >= 0:
            self.next_display = time.ticks_add(now, _DISPLAY_MS)
            status = "" if self.radio.modem is not None else "radio down"
            self.display.update(self.gateway, len(self.ring), self.ring.drops, self.own, status)

    def run(self, wdt=None):
        while True:
            if wdt is not None:
                wdt.feed()
            try:
                self.step()
            except MemoryError:
                gc.collect()
                self.errors["loop"] += 1
            except Exception as e:  # a bug must not stop the gateway; count and go on
                self.errors["loop"] += 1
                log("node2: loop error %r" % (e,))
                time.sleep_ms(10)


def run(cfg, ring):
    seed = time.ticks_ms()
    try:
        for b in machine.unique_id():
            seed = (seed * 31 + b) & 0x3FFFFFFF
    except Exception:
        pass
    random.seed(seed)
    node = Node2(cfg, ring)
    wdt = None
    try:
        wdt = machine.WDT(timeout=cfg["wdt_ms"])
    except Exception as e:
        log("node2: no watchdog (%r)" % (e,))
    node.run(wdt)
