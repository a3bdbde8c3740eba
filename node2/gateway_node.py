# node2's application (main.py boots it): the gateway. Receives frames, checks and ACKs
# them (gateway.Gateway), keeps each accepted frame in the serial ring until the host
# acknowledges it ({"ack": n} on stdin) and writes it to the serial port (stdout); adds its
# own SHT3x readings every interval and a STATS frame every stats_interval_s. Settings for
# the nodes arrive from the host as {"dl": node, "t": tag, "v": value} lines.
#
# The ring goes to the host as a stream, oldest line first and never out of order: up to
# _WINDOW lines written and not yet acknowledged, more as acknowledgements come back, so a
# backlog drains as fast as the link and the host allow. When acknowledgements stop
# (no host, or a line lost on the way) the stream starts again from the oldest line after
# resend_ms, and that pause doubles while the host stays silent (up to a minute), so a
# gateway with no host attached does not flood its console. Each line says how long node2
# held its frame ("h"), so the host can date the readings in it.
import gc
import select
import sys
import time

import board
from console import event, log, oom_count
from display import Display
from fcounter import FrameCounter
from gateway import Gateway
from micropython import const
from radio import Radio
from sht3x import SHT3x

import iiot_codec

_RX_SLICE_MS = const(40)  # one recv() at a time, so the serial line and the timers stay served
_DISPLAY_MS = const(1000)
_RESEND_MAX_MS = const(60000)
_WINDOW = const(16)  # lines written to the host and not acknowledged yet, at most
_BURST = const(8)  # lines written per loop pass, so a long drain never starves the radio
_HOST_LINE = const(64)


class Node2:
    def __init__(self, cfg, ring):
        self.cfg = cfg
        self.node = cfg["node_id"]
        self.key = cfg["key"]
        self.interval_ms = cfg["interval_ms"] or int(cfg["interval_s"] * 1000)
        self.stats_ms = int(cfg["stats_interval_s"] * 1000)
        self.resend_ms = cfg["resend_ms"]
        self.uptime = board.Uptime()
        self.ring = ring
        self.errors = {"sht3x": 0, "i2c": 0, "serial": 0, "loop": 0, "encode": 0}
        self.own_drops = 0  # own readings and STATS the full ring could not keep
        self.counter = FrameCounter(reserve=cfg["fcnt_reserve"])
        # This boot's name for the host: the frame counter at boot never repeats.
        self.boot = self.counter.value
        event("boot", self.node)
        self.radio = Radio(board.radio, cfg["radio"], int(cfg["radio_retry_s"] * 1000))
        self.gateway = Gateway(
            self.node,
            cfg["keys"],
            self.radio.send,
            ring.room,
            self.forward,
            cfg["downlink"],
            cfg["hold_retry_s"],
        )
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
        self._written = 0  # lines from the oldest on written since the stream (re)started
        self._cursor = ring.first()  # ring offset of the next line to write (-1: none)
        self._wait = self.resend_ms  # pause before the stream restarts from the oldest
        self._restart_at = time.ticks_add(now, self._wait)
        self.next_reading = now
        self.next_stats = time.ticks_add(now, self.stats_ms)
        self.next_display = now
        print(iiot_codec.encode_session(self.boot))
        if not self.radio.ready():
            log("node2: radio not found (%r), retrying" % self.radio.last_error)

    def i2c(self):
        if self._i2c is None:
            self._i2c = board.i2c()
        return self._i2c

    # --- serial line -------------------------------------------------------------------

    def _write(self, pos):
        frame, rssi, snr, n, kept = self.ring.entry(pos)
        held = (self.uptime.ds() - kept) * 100
        try:
            print(iiot_codec.encode_line(frame, rssi=rssi, snr=snr, n=n, hold_ms=held))
        except Exception:
            self.errors["serial"] += 1

    def forward(self, frame, rssi=None, snr=None):
        """Keep a frame for the host (room was checked); it joins the stream."""
        n = self.ring.add(frame, rssi, snr, self.uptime.ds())
        if n is not None:
            if self._cursor < 0:  # every older line is written: this one is next
                self._cursor = self.ring.newest
            self._stream(1)
        return n

    def _stream(self, budget=_BURST):
        # Write the next lines, oldest first, while the window has room. The cursor is the
        # ring offset of line number _written from the oldest (-1: all are written).
        ring = self.ring
        while budget and self._cursor >= 0 and self._written < _WINDOW:
            if not self._written:
                self._restart_at = time.ticks_add(time.ticks_ms(), self._wait)
            self._write(self._cursor)
            self._written += 1
            self._cursor = ring.after(self._cursor)
            budget -= 1

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
        msg = iiot_codec.decode_host_line(line)
        if msg is None:
            return
        if msg[0] == "dl":
            if not self.gateway.set_pending(msg[1], msg[2], msg[3]):
                log("node2: setting %d for node %d refused" % (msg[2], msg[1]))
            return
        if msg[0] == "hello":
            # A host (re)opened the port: answer, so it can tell this line from what sat in
            # the link's buffers, and send every line again from the oldest, now.
            print(iiot_codec.encode_session(self.boot, msg[1]))
            self._wait = self.resend_ms
            self._written = 0
            self._cursor = self.ring.first()
            return
        if msg[2] is not None and msg[2] != self.boot:
            return  # meant for an earlier boot's lines: they are not these
        released = self.ring.ack(msg[1])
        # The host is there: the stream goes on at once, and restarts soon if it stalls.
        self._wait = self.resend_ms
        self._restart_at = time.ticks_add(time.ticks_ms(), self._wait)
        if released > self._written:  # lines of an earlier pass: continue after them
            self._written = 0
            self._cursor = self.ring.first()
        else:
            self._written -= released

    def _resend(self, now):
        if self._written and time.ticks_diff(now, self._restart_at) >= 0:
            # No acknowledgement for a while: start again from the oldest line, and wait
            # longer next time while the host stays silent.
            self._written = 0
            self._cursor = self.ring.first()
            self._wait = min(self._wait * 2, _RESEND_MAX_MS)
        self._stream()

    # --- own frames --------------------------------------------------------------------

    def _own_frame(self, values, stats=False):
        fcnt = self.counter.next()
        try:
            if stats:
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
        if not self.ring.room(len(frame)):
            self.own_drops += 1  # counted in queue_drops: the host is away too long
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
                self.display.dev = None
            return
        r = {
            "temperature": iiot_codec.quantize("temperature", t),
            "humidity": iiot_codec.quantize("humidity", h),
        }
        self.own = r
        event("reading", self.node, rn=self.rn, r=r)
        fcnt = self._own_frame(r)
        if fcnt is not None:
            event("tx", self.node, rns=[self.rn], fcnt=fcnt)
        else:
            event("drop", self.node, rn=self.rn)
        self.rn += 1

    def stats(self):
        gw = self.gateway
        e = self.errors
        return {
            "packets_received": gw.packets_received,
            "crc_errors": gw.crc_errors + self.radio.crc_errors,
            "duplicates": gw.duplicates,
            "auth_failures": gw.auth_failures,
            "queue_drops": self.own_drops + gw.drops,
            "queue_depth": len(self.ring),
            "holds": gw.holds,
            "radio_errors": self.radio.errors,
            "sensor_errors": e["sht3x"],
            "free_heap": gc.mem_free(),
            "memory_errors": oom_count(),
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
            self._own_frame(self.stats(), True)
        if time.ticks_diff(now, self.next_display) >= 0:
            self.next_display = time.ticks_add(now, _DISPLAY_MS)
            status = "" if self.radio.modem is not None else "no radio"
            own = self.own
            self.display.update(
                self.gateway, len(self.ring), self.own_drops, own.get("temperature"),
                own.get("humidity"), status,
            )  # fmt: skip


def run(cfg, ring):
    board.seed_random()
    board.supervise(Node2(cfg, ring), "node2", cfg["wdt_ms"])
