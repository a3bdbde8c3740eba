# node1's application (main.py boots it): the sensor node. Reads the SHT3x (temperature,
# humidity), the BME680 (pressure, gas resistance; its temperature and humidity stand in
# when the SHT3x fails) and the supply voltage, every interval and at once when B1 is
# pressed; shows them on the OLED and sends them to node2 over LoRa with ACK,
# retransmission and store-and-forward. Every stats_interval_s, and right after it applied
# a setting sent down in an ACK, it reports its own health and settings in a STATS frame.
import gc
import random
import time

import board
import machine
from bme680 import BME680
from console import event, log, oom_count
from display import Display
from fcounter import FrameCounter
from link import AirtimeBudget, Uplink
from micropython import const
from radio import Radio
from sht3x import SHT3x

import iiot_codec

_DISPLAY_MS = const(1000)
_DEBOUNCE_MS = const(300)


class Node1:
    def __init__(self, cfg, queue):
        self.cfg = cfg
        self.node = cfg["node_id"]
        self.interval_ms = cfg["interval_ms"] or int(cfg["interval_s"] * 1000)
        self.stats_ms = int(cfg["stats_interval_s"] * 1000)
        self.uptime = board.Uptime()
        self.errors = {"sht3x": 0, "bme680": 0, "adc": 0, "i2c": 0, "loop": 0}
        self._i2c = self._sht = self._bme = self._adc = None
        self.rn = 0  # reading number, from 0 each boot
        self.last = {}
        self.counter = FrameCounter(reserve=cfg["fcnt_reserve"])
        event("boot", self.node, fcnt=self.counter.value)
        self.queue = queue
        self.radio = Radio(board.radio, cfg["radio"], int(cfg["radio_retry_s"] * 1000))
        self.uplink = Uplink(
            self.radio,
            self.counter,
            self.queue,
            cfg,
            AirtimeBudget(cfg["duty_cycle_pct"]),
            node=self.node,
            clock_ds=self.uptime.ds,
            on_options=self._options,
        )
        self.display = Display(self.i2c, board.OLED_ADDR, cfg["display"])
        self._pressed = False
        self._last_press = time.ticks_ms()
        try:
            self._button = board.button(self._on_button)
        except Exception as e:
            log("node1: no button: %r" % e)
        if not self.radio.ready():
            log("node1: radio not found (%r)" % self.radio.last_error)
        now = self.next_reading = self.next_display = time.ticks_ms()
        self.next_stats = time.ticks_add(now, self.stats_ms)
        self.backup = cfg["backup_gateway_id"]
        self._acked = self._fails = 0  # uplink counters when the gateway last answered

    def _on_button(self, pin):
        self._pressed = True  # IRQ context: set a flag, nothing else

    # --- sensors -----------------------------------------------------------------------

    def i2c(self):
        if self._i2c is None:
            self._i2c = board.i2c()
        return self._i2c

    def _drop_bus(self):
        # Every device failed with a bus error: build the bus (and the drivers) again.
        self.errors["i2c"] += 1
        self._i2c = None
        self._sht = None
        self._bme = None
        self.display.dev = None

    def _read_sht(self):
        try:
            if self._sht is None:
                self._sht = SHT3x(self.i2c(), board.SHT3X_ADDR)
            return self._sht.measure()
        except Exception as e:
            self.errors["sht3x"] += 1
            self._sht = None
            return isinstance(e, OSError)

    def _read_bme(self):
        try:
            if self._bme is None:
                self._bme = BME680(self.i2c(), self.cfg["bme680_addr"])
            return self._bme.measure()
        except Exception as e:
            self.errors["bme680"] += 1
            self._bme = None
            return isinstance(e, OSError)

    def _voltage(self):
        try:
            if self._adc is None:
                self._adc = machine.ADC(machine.ADC.CORE_VREF)
            raw = self._adc.read_u16()
            if raw:
                return 1.21 * 65535 / raw  # the STM32F4's 1.21 V reference (typical)
        except Exception:
            self.errors["adc"] += 1
            self._adc = None
        return None

    def read_sensors(self):
        """One reading as a dict; empty when neither sensor produced anything."""
        r = {}
        sht = self._read_sht()
        bme = self._read_bme()
        if isinstance(sht, tuple):
            r["temperature"], r["humidity"] = sht
        if isinstance(bme, tuple):
            t, h, p, g = bme
            if not isinstance(sht, tuple):  # the BME680 stands in for a failed SHT3x
                r["temperature"] = t
                r["humidity"] = h
            r["pressure"] = p
            if g is not None:
                r["gas_resistance"] = g
        elif sht is True and bme is True:
            self._drop_bus()
        if r:
            v = self._voltage()
            if v is not None:
                r["voltage"] = v
            # At the resolution the frame carries, so the console event shows what is sent.
            for name in r:
                r[name] = iiot_codec.quantize(name, r[name])
        return r

    # --- settings sent down, and the node's own report --------------------------------

    def _options(self, options):
        """Apply the settings in an accepted ACK; persist and confirm the ones that changed."""
        changed = False
        for tag in options:
            known = self.cfg["downlink"].get(tag)
            value = options[tag]
            if known is None:
                continue  # a setting of a later firmware, or link control
            name, lo, hi = known
            if not lo <= value <= hi:
                log("node1: %s=%d sent down: out of range" % (name, value))
            elif name == "interval_s" and value * 1000 != self.interval_ms:
                self.interval_ms = value * 1000
                self.next_reading = time.ticks_add(time.ticks_ms(), self.interval_ms)
                changed = True
        if changed:
            value = self.interval_ms // 1000
            try:  # kept across reboots; config.load() applies it over config.json
                with open(self.cfg["downlink_path"], "w") as f:
                    f.write('{"interval_s": %d}' % value)
            except OSError as e:
                log("node1: cannot keep the setting (%r)" % e)
            event("setting", self.node, interval_s=value)
            self.next_stats = time.ticks_ms()  # confirm it at once

    def stats(self):
        """The node's health and settings, as a STATS frame carries them."""
        up = self.uplink
        e = self.errors
        return {
            "queue_depth": len(self.queue),
            "queue_drops": self.queue.drops,
            "retransmissions": up.retransmissions,
            "failed_rounds": up.failed_rounds,
            "radio_errors": self.radio.errors,
            "sensor_errors": e["sht3x"] + e["bme680"] + e["adc"] + e["i2c"],
            "free_heap": gc.mem_free(),
            "memory_errors": oom_count(),
            "acks_rejected": up.acks_rejected,
            "holds": up.holds,
            "interval_s": self.interval_ms // 1000,
            "uptime": self.uptime.update(),
        }

    # --- the loop ----------------------------------------------------------------------

    def take_reading(self):
        r = self.read_sensors()
        if not r:
            return
        self.last = r
        event("reading", self.node, rn=self.rn, r=r)
        self.uplink.push(self.rn, r)
        self.rn += 1

    def step(self):
        now = time.ticks_ms()
        if self._pressed:
            self._pressed = False
            if time.ticks_diff(now, self._last_press) >= _DEBOUNCE_MS:
                self._last_press = now
                self.next_reading = now
        if time.ticks_diff(now, self.next_reading) >= 0:
            # Up to 1/16 of the interval of random jitter: boards powered up together would
            # otherwise report in lockstep and collide on air every time.
            jitter = random.getrandbits(16) % (self.interval_ms // 16 + 1)
            self.next_reading = time.ticks_add(self.next_reading, self.interval_ms + jitter)
            if time.ticks_diff(self.next_reading, now) <= 0:
                self.next_reading = time.ticks_add(now, self.interval_ms)  # fell behind
            self.take_reading()
            gc.collect()
        up = self.uplink
        up.service()
        if up.acked != self._acked:
            self._acked, self._fails = up.acked, up.failed_rounds
        elif self.backup and up.failed_rounds - self._fails >= self.cfg["failover_rounds"]:
            # The gateway stayed silent round after round: try the other one (a gateway
            # only ACKs the nodes assigned to it, so two never answer at once).
            # (it answers RESYNC if it does not know our counter yet)
            up.gateway, self.backup = self.backup, up.gateway
            self._fails = up.failed_rounds
        now = time.ticks_ms()
        if time.ticks_diff(now, self.next_stats) >= 0 and not self.uplink.busy():
            self.next_stats = time.ticks_add(now, self.stats_ms)
            self.uplink.send_stats(self.stats())
        if time.ticks_diff(now, self.next_display) >= 0:
            self.next_display = time.ticks_add(now, _DISPLAY_MS)
            self.show()
        # Sleep until the next reading is due (at most 50 ms: the button and the display),
        # not at all while a round is under way.
        left = 0 if self.uplink.busy() else time.ticks_diff(self.next_reading, time.ticks_ms())
        time.sleep_ms(1 if left < 1 else (left if left < 50 else 50))

    def show(self):
        status = "" if self.radio.modem is not None else "no radio"
        left = time.ticks_diff(self.next_reading, time.ticks_ms())
        self.display.update(
            self.last,
            self.counter.value - 1 if self.counter.value else None,
            self.uplink.last_rssi,
            self.uplink.last_snr,
            len(self.queue),
            left // 1000 if left > 0 else 0,
            status,
        )


def run(cfg, queue):
    board.seed_random()
    board.supervise(Node1(cfg, queue), "node1", cfg["wdt_ms"])
