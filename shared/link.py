# node1's side of the link layer: TELEMETRY with ACK request, retransmission with
# randomised backoff, and store-and-forward of what is not acknowledged.
#
# Every reading goes through the queue (sfqueue.SFQueue); the oldest one is "in flight".
# A reading gets its frame counter when it first goes out and keeps it until it is
# acknowledged, and no newer counter is used before that (stop and wait). So when the
# gateway did receive a frame but every ACK was lost, the later resend repeats the counter
# and the gateway re-ACKs it as a DUPLICATE instead of forwarding it twice; a frame the
# gateway never got is NEW. Resends carry the reading's age (age_s) at the time of sending.
#
# The airtime budget per rolling hour (duty cycle, e.g. 1 % in EU868) lives here too: a
# node over budget keeps its readings queued instead of sending.
#
# A round is one frame sent up to 1 + max_retries times with backoff. A round starts when
# a reading is taken and right after an ACK while readings wait, so a link that comes
# back drains the queue oldest first, one round per reading.
import random
import time

from console import event
from sfqueue import F_QUEUED, F_SENT

import iiot_codec

ACKED = "acked"
NO_ACK = "no_ack"
RESYNC = "resync"
BUDGET = "budget"
NO_RADIO = "no_radio"
IDLE = "idle"

_BUCKETS = 60  # the rolling hour as one-minute buckets of microseconds on air
_BUCKET_MS = 60000


class AirtimeBudget:
    """allow(toa_us) before sending, spend(toa_us) after. No budget when pct is None."""

    def __init__(self, duty_cycle_pct=None, now_ms=None):
        self.limit_us = None
        if duty_cycle_pct is not None:
            self.limit_us = int(3600 * 1000000 * duty_cycle_pct / 100)
        self._buckets = [0] * _BUCKETS
        self._index = 0
        self._t0 = time.ticks_ms() if now_ms is None else now_ms  # start of current bucket
        self.refused = 0

    def _advance(self, now_ms):
        elapsed = time.ticks_diff(now_ms, self._t0)
        if elapsed < _BUCKET_MS:
            return
        steps = elapsed // _BUCKET_MS
        if steps > _BUCKETS:
            steps = _BUCKETS
        for _ in range(steps):
            self._index = (self._index + 1) % _BUCKETS
            self._buckets[self._index] = 0
        self._t0 = time.ticks_add(self._t0, (elapsed // _BUCKET_MS) * _BUCKET_MS)

    def used_us(self, now_ms=None):
        self._advance(time.ticks_ms() if now_ms is None else now_ms)
        return sum(self._buckets)

    def allow(self, toa_us, now_ms=None):
        if self.limit_us is None:
            return True
        if self.used_us(now_ms) + toa_us <= self.limit_us:
            return True
        self.refused += 1
        return False

    def spend(self, toa_us, now_ms=None):
        self._advance(time.ticks_ms() if now_ms is None else now_ms)
        self._buckets[self._index] += toa_us


_BACKOFF_MS = 60  # first retransmission waits up to this much longer than the last one
_BACKOFF_CAP_MS = 2000


class Uplink:
    def __init__(self, radio, counter, queue, cfg, budget, node=1, clock_ds=None):
        self.radio = radio
        self.counter = counter
        self.queue = queue
        self.node = node
        self.gateway = cfg["gateway_id"]
        self.key = cfg["key"]
        self.max_retries = cfg["max_retries"]
        self.turnaround_ms = cfg["ack_turnaround_ms"]
        self.budget = budget
        self.full_counter = True  # send the counter's high half until the first ACK
        self.interval_s = None  # a new report interval the gateway sent down
        self.last_rssi = None
        self.last_snr = None
        self.acked = 0
        self.sent = 0
        self.retransmissions = 0
        self.failed_rounds = 0
        self.encode_errors = 0
        self._readings = {}
        self._frame = None
        self._seq16 = 0
        self._fcnt = 0
        self._active = False
        self._attempts = 0
        self._next_ms = time.ticks_ms()
        self._clock_ds = clock_ds or (lambda: time.ticks_ms() // 100)

    # --- readings in -------------------------------------------------------------------

    def push(self, rn, readings):
        """Queue a new reading (taken now) and start a round."""
        dropped = self.queue.push(rn, self._clock_ds(), readings)
        if dropped is not None:
            event("drop", self.node, rn=dropped)
            # The dropped reading may be the one in flight: the next round starts afresh.
            self._active = False
            self._frame = None
        if len(self.queue) > 1:
            # It waits behind older readings: it is in store-and-forward from now on.
            self.queue.set_flag_at(len(self.queue) - 1, F_QUEUED)
            event("queued", self.node, rn=rn)
        self.start_round()

    def start_round(self):
        if len(self.queue) and not self._active:
            self._active = True
            self._attempts = 0
            self._frame = None
            self._next_ms = time.ticks_ms()

    def busy(self):
        return self._active

    # --- the round ---------------------------------------------------------------------

    def _end_round(self):
        self._active = False
        self._frame = None
        self.failed_rounds += 1
        if len(self.queue) and not self.queue.head_flag(F_QUEUED):
            self.queue.set_head_flag(F_QUEUED)
            event("queued", self.node, rn=self.queue.head_rn())

    def _encode_head(self):
        q = self.queue
        fcnt = q.head_fcnt()
        if fcnt is None:
            fcnt = self.counter.next()
            q.set_head_fcnt(fcnt)
        q.head_readings(self._readings)
        self._fcnt = fcnt
        self._seq16 = fcnt & 0xFFFF
        self._frame = iiot_codec.encode_telemetry(
            self.node,
            fcnt,
            self._readings,
            dst=self.gateway,
            age_s=q.head_age_s(self._clock_ds()),
            key=self.key,
            ack_req=True,
            full_counter=self.full_counter,
        )

    def ack_timeout_ms(self, frame_len):
        """Time on air of the frame and of the ACK, plus the gateway's turnaround."""
        return (self.radio.toa_us(frame_len) + self.radio.toa_us(10)) // 1000 + self.turnaround_ms

    def service(self):
        """Do at most one transmission attempt when one is due. Returns what happened."""
        if not self._active or not len(self.queue):
            self._active = False
            return IDLE
        if time.ticks_diff(time.ticks_ms(), self._next_ms) < 0:
            return IDLE
        if not self.radio.ready():
            self._end_round()
            return NO_RADIO
        if self._frame is None:
            try:
                self._encode_head()
            except ValueError:  # CodecError: a reading the codec cannot carry
                self.encode_errors += 1
                self.queue.pop()
                self._active = False
                self.start_round()
                return NO_ACK
        frame = self._frame
        toa = self.radio.toa_us(len(frame))
        if not self.budget.allow(toa):
            self._end_round()
            return BUDGET
        start = time.ticks_ms()
        if not self.radio.send(frame):
            self._end_round()
            return NO_RADIO
        self.budget.spend(toa)
        if not self.queue.head_flag(F_SENT):
            self.queue.set_head_flag(F_SENT)
            event("tx", self.node, rn=self.queue.head_rn(), fcnt=self._fcnt)
        self.sent += 1
        if self._attempts:
            self.retransmissions += 1
        self._attempts += 1
        result = self._wait_ack(time.ticks_add(start, self.ack_timeout_ms(len(frame))))
        if result == ACKED:
            event("acked", self.node, fcnt=self._fcnt)
            self.acked += 1
            self.full_counter = False
            self.queue.pop()
            self._active = False
            self.start_round()  # drain what waits, at once
            return ACKED
        if result == RESYNC:
            # The gateway could not place our counter: resend it in full, same counter.
            self.full_counter = True
            self._frame = None
        if self._attempts > self.max_retries:
            self._end_round()
            return result
        window = _BACKOFF_MS << (self._attempts - 1)
        if window > _BACKOFF_CAP_MS:
            window = _BACKOFF_CAP_MS
        self._next_ms = time.ticks_add(time.ticks_ms(), 10 + random.getrandbits(16) % window)
        return result

    def _wait_ack(self, deadline):
        while True:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return NO_ACK
            pkt = self.radio.recv(left)
            if pkt is None:
                continue
            try:
                ack = iiot_codec.decode(pkt)
            except ValueError:
                continue
            if (
                ack.kind != "ack"
                or ack.dst != self.node
                or ack.seq != self._seq16
                or (self.gateway and ack.src != self.gateway)
            ):
                continue  # someone else's traffic
            self.last_rssi = pkt.rssi
            self.last_snr = pkt.snr / 4
            if ack.interval_s:
                self.interval_s = ack.interval_s
            return RESYNC if ack.resync else ACKED
