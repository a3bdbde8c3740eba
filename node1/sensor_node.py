# node1's application (main.py boots it): the sensor node. Reads the SHT3x (temperature,
# humidity), the BME680 (pressure, gas resistance; its temperature and humidity stand in
# when the SHT3x fails) and the supply voltage, every interval and at once when B1 is
# pressed; shows them on the OLED and sends them to node2 over LoRa with ACK,
# retransmission and store-and-forward.
import gc
import random
import time

import board
import machine
from bme680 import BME680
from console import event, log
from display import Display
from fcounter import FrameCounter
from link import AirtimeBudget, Uplink
from radio import Radio
from sfqueue import FIELDS, quantize
from sht3x import SHT3x
from uptime import Uptime

_DISPLAY_MS = 1000
_DEBOUNCE_MS = 300
_VREF = 1.21  # V, the STM32F4's internal reference (datasheet typical)


def _seed_random():
    # Backoff jitter must differ between boards, and between boots of one board.
    seed = time.ticks_ms()
    try:
        for b in machine.unique_id():
            seed = (seed * 31 + b) & 0x3FFFFFFF
    except Exception:
        pass
    random.seed(seed)


class Node1:
    def __init__(self, cfg, queue):
        self.cfg = cfg
        self.node = cfg["node_id"]
        self.interval_ms = cfg["interval_ms"] or int(cfg["interval_s"] * 1000)
        self.uptime = Uptime()
        self.errors = {"sht3x": 0, "bme680": 0, "adc": 0, "i2c": 0, "loop": 0}
        self._i2c = None
        self._sht = None
        self._bme = None
        self._adc = None
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
        )
        self.display = Display(self.i2c, board.OLED_ADDR, cfg["display"])
        self._pressed = False
        self._last_press = time.ticks_ms()
        try:
            self._button = board.button(self._on_button)
        except Exception as e:
            log("node1: no button (%r)" % (e,))
        if not self.radio.ready():
            log("node1: radio not found (%r), retrying every %ss" % (
                self.radio.last_error, cfg["radio_retry_s"]))  # fmt: skip
        now = time.ticks_ms()
        self.next_reading = now
        self.next_display = now

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
        self.display.screen.dev = None

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
                return _VREF * 65535 / raw
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
            for name, decimals, _, _ in FIELDS:
                if name in r:
                    r[name] = quantize(r[name], decimals)
        return r

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
        self.uplink.service()
        if self.uplink.interval_s and self.uplink.interval_s * 1000 != self.interval_ms:
            self.interval_ms = self.uplink.interval_s * 1000  # downlink from the gateway
        now = time.ticks_ms()
        if time.ticks_diff(now, self.next_display) >= 0:
            self.next_display = time.ticks_add(now, _DISPLAY_MS)
            self.show()

    def show(self):
        status = "" if self.radio.modem is not None else "radio down"
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

    def idle_ms(self):
        if self.uplink.busy():
            return 1
        left = time.ticks_diff(self.next_reading, time.ticks_ms())
        return 1 if left < 1 else (left if left < 50 else 50)

    def run(self, wdt=None):
        while True:
            if wdt is not None:
                wdt.feed()
            try:
                self.step()
            except MemoryError:
                gc.collect()
                self.errors["loop"] += 1
            except Exception as e:  # a bug must not stop the reports; count and go on
                self.errors["loop"] += 1
                log("node1: loop error %r" % (e,))
            time.sleep_ms(self.idle_ms())


def run(cfg, queue):
    _seed_random()
    node = Node1(cfg, queue)
    wdt = None
    try:
        wdt = machine.WDT(timeout=cfg["wdt_ms"])
    except Exception as e:
        log("node1: no watchdog (%r)" % (e,))
    node.run(wdt)
