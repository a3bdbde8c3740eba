# node1's side of the link layer: readings go up with an ACK request, are retransmitted
# with randomised backoff, and stay in the store-and-forward queue until acknowledged.
#
# Every reading goes through the queue (sfqueue.SFQueue). The oldest readings, up to
# batch_max of them, go out together in one frame (a BATCH frame when there are several,
# each with its own age), under one frame counter that they keep until that frame is
# acknowledged; no newer counter is used for readings before that (stop and wait). So when
# the gateway did receive a frame but every ACK was lost, the later resend repeats the
# counter and the gateway re-ACKs it as a DUPLICATE instead of forwarding it twice.
#
# The gateway takes custody of a frame only when it can keep it until the host has it;
# otherwise its ACK says HOLD: the readings stay queued, the frame is forgotten (the
# gateway did not take it, so the next try may batch differently under a new counter)
# and the node waits for the retry time the gateway named, instead of retrying blindly.
#
# With a key, an ACK counts only when its MIC verifies for the counter in flight; any
# other ACK addressed to this node (forged, replayed, for an earlier frame) is ignored and
# counted, and the readings stay queued. RESYNC ACKs cannot carry a MIC (the gateway does
# not know the counter yet) and only make the node send its counter in full.
#
# The airtime budget per rolling hour (duty cycle, e.g. 1 % in EU868) lives here too: a
# node over budget keeps its readings queued instead of sending.
#
# A round is one frame sent up to 1 + max_retries times with backoff. A round starts when
# a reading is taken, when a hold ends, and right after an ACK while readings wait, so a
# link that comes back drains the queue oldest first, batch_max readings per frame.
import random
import time

from console import event
from micropython import const
from sfqueue import F_QUEUED

import iiot_codec

# What service() did (for tests and the REPL)
_IDLE = const(0)
_ACKED = const(1)
_NO_ACK = const(2)
_RESYNC = const(3)
_HOLD = const(4)
_BUDGET = const(5)
_NO_RADIO = const(6)

_BUCKETS = const(60)  # the rolling hour as one-minute buckets of microseconds on air
_BUCKET_MS = const(60000)
_ACK_MAX_LEN = const(24)  # an ACK with a MIC and a few options


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
_BACKOFF_CAP_MS = const(2000)
_HOLD_DEFAULT_S = const(20)


class Uplink:
    def __init__(self, radio, counter, queue, cfg, budget, node=1, clock_ds=None, on_options=None):
        self.radio = radio
        self.counter = counter
        self.queue = queue
        self.node = node
        self.gateway = cfg["gateway_id"]
        self.key = cfg["key"]
        self.max_retries = cfg["max_retries"]
        self.turnaround_ms = cfg["ack_turnaround_ms"]
        self.batch_max = cfg["batch_max"]
        self.budget = budget
        self.on_options = on_options  # called with an accepted ACK's options {tag: value}
        self.full_counter = True  # send the counter's high half until the first ACK
        self.last_rssi = None
        self.last_snr = None
        self.acked = 0  # frames acknowledged
        self.sent = 0
        self.retransmissions = 0
        self.failed_rounds = 0
        self.encode_errors = 0
        self.acks_rejected = 0
        self.holds = 0
        self._frame = None
        self._active = False
        self._attempts = 0
        self._next_ms = time.ticks_ms()
        self._hold_until = None
        self._announced = None  # the last counter a "tx" event was printed for
        self._clock_ds = clock_ds or (lambda: time.ticks_ms() // 100)

    # --- readings in -------------------------------------------------------------------

    def push(self, rn, readings):
        """Queue a new reading (taken now) and start a round."""
        q = self.queue
        flight = q.flight
        dropped = q.push(rn, self._clock_ds(), readings)
        if dropped is not None:
            event("drop", self.node, rn=dropped)
            if flight and not q.flight:  # the frame in flight lost a reading: start afresh
                self._active = False
                self._frame = None
        if len(q) > 1:
            # It waits behind older readings: it is in store-and-forward from now on.
            q.set_flag_at(len(q) - 1, F_QUEUED)
            event("queued", self.node, rn=rn)
        self.start_round()

    def start_round(self):
        if len(self.queue) and not self._active:
            self._active = True
            self._attempts = 0
            self._frame = None
            self._next_ms = time.ticks_ms()

    def send_stats(self, counters):
        """The node's own counters in a STATS frame. Fire and forget (no ACK): they are
        cumulative, the next one makes up for a lost one. Its counter comes from the same
        sequence as the readings', in a window of its own at the receivers."""
        if not self.radio.ready():
            return
        frame = iiot_codec.encode_stats(
            self.node, self.counter.next(), counters, dst=self.gateway, key=self.key,
            full_counter=True,
        )  # fmt: skip
        toa = self.radio.toa_us(len(frame))
        if self.budget.allow(toa) and self.radio.send(frame):
            self.budget.spend(toa)

    def busy(self):
        """A round is under way (and not waiting out a hold)."""
        return self._active and self._hold_until is None

    # --- the round ---------------------------------------------------------------------

    def _end_round(self):
        self._active = False
        self._frame = None
        self.failed_rounds += 1
        q = self.queue
        for i in range(q.flight or min(len(q), 1)):
            if not q.flag_at(i, F_QUEUED):
                q.set_flag_at(i, F_QUEUED)
                event("queued", self.node, rn=q.rn_at(i))

    def _encode(self):
        q = self.queue
        if q.fcnt is None:
            q.start_flight(min(len(q), self.batch_max), self.counter.next())
        while True:
            try:
                self._frame = iiot_codec.encode_readings(
                    self.node,
                    q.fcnt,
                    q.entries(q.flight, self._clock_ds()),
                    dst=self.gateway,
                    key=self.key,
                    full_counter=self.full_counter,
                )
                return True
            except ValueError:  # CodecError: a reading (or a frame) the codec cannot carry
                if q.flight > 1 and q.fcnt != self._announced:
                    q.flight //= 2  # nothing went out under this counter yet: send fewer
                    continue
                self.encode_errors += 1
                q.flight = 1  # drop the oldest reading in the frame (or the frame's only one)
                q.pop_flight()
                return False

    def ack_timeout_ms(self, frame_len):
        """Time on air of the frame and of the ACK, plus the gateway's turnaround."""
        radio = self.radio
        return (radio.toa_us(frame_len) + radio.toa_us(_ACK_MAX_LEN)) // 1000 + self.turnaround_ms

    def service(self):
        """Do at most one transmission attempt when one is due. Returns what happened."""
        q = self.queue
        if not self._active or not len(q):
            self._active = False
            return _IDLE
        now = time.ticks_ms()
        if self._hold_until is not None:
            if time.ticks_diff(now, self._hold_until) < 0:
                return _IDLE
            self._hold_until = None
            self._attempts = 0
        if time.ticks_diff(now, self._next_ms) < 0:
            return _IDLE
        if not self.radio.ready():
            self._end_round()
            return _NO_RADIO
        if self._frame is None and not self._encode():
            self._active = False
            self.start_round()
            return _NO_ACK
        frame = self._frame
        toa = self.radio.toa_us(len(frame))
        if not self.budget.allow(toa):
            self._end_round()
            return _BUDGET
        start = time.ticks_ms()
        if not self.radio.send(frame):
            self._end_round()
            return _NO_RADIO
        self.budget.spend(toa)
        fcnt = q.fcnt
        if fcnt != self._announced:  # first time on air under this counter
            self._announced = fcnt
            event("tx", self.node, rns=[q.rn_at(i) for i in range(q.flight)], fcnt=fcnt)
        self.sent += 1
        if self._attempts:
            self.retransmissions += 1
        self._attempts += 1
        result, retry_s = self._wait_ack(
            time.ticks_add(start, self.ack_timeout_ms(len(frame))), fcnt
        )
        if result == _ACKED:
            event("acked", self.node, fcnt=fcnt, n=q.flight)
            self.acked += 1
            self.full_counter = False
            q.pop_flight()
            self._active = False
            self.start_round()  # drain what waits, at once
            return _ACKED
        if result == _HOLD:
            # The gateway cannot keep it now: wait as long as it says, plus jitter so held
            # nodes do not all come back at once.
            self.holds += 1
            q.release()
            self._frame = None
            wait_ms = (retry_s or _HOLD_DEFAULT_S) * 1000
            wait_ms += random.getrandbits(16) % (wait_ms // 4 + 1)
            self._hold_until = time.ticks_add(time.ticks_ms(), wait_ms)
            event("hold", self.node, fcnt=fcnt, ms=wait_ms)
            return _HOLD
        if result == _RESYNC:
            # The gateway could not place our counter: resend it in full, same counter.
            self.full_counter = True
        # Encoded again for the next attempt, same counter and readings: the ages must be
        # those at sending, or the readings would be dated late by the retry delays.
        self._frame = None
        if self._attempts > self.max_retries:
            self._end_round()
            return result
        window = _BACKOFF_MS << (self._attempts - 1)
        if window > _BACKOFF_CAP_MS:
            window = _BACKOFF_CAP_MS
        self._next_ms = time.ticks_add(time.ticks_ms(), 10 + random.getrandbits(16) % window)
        return result

    def _wait_ack(self, deadline, fcnt):
        """(_ACKED | _HOLD | _RESYNC | _NO_ACK, retry seconds) for the frame with counter fcnt."""
        seq16 = fcnt & 0xFFFF
        while True:
            left = time.ticks_diff(deadline, time.ticks_ms())
            if left <= 0:
                return _NO_ACK, None
            pkt = self.radio.recv(left)
            if pkt is None:
                continue
            try:
                ack = iiot_codec.decode_ack(pkt)
            except ValueError:
                continue  # not an ACK, or damaged
            if ack.dst != self.node or (self.gateway and ack.src != self.gateway):
                continue  # someone else's traffic
            if ack.seq != seq16:
                self.acks_rejected += 1  # a late or replayed ACK for another frame
                continue
            if ack.resync:
                return _RESYNC, None
            if self.key is not None:
                try:
                    iiot_codec.decode_ack(pkt, self.key, fcnt)
                except ValueError:
                    self.acks_rejected += 1  # forged: no MIC, or a wrong one
                    continue
            self.last_rssi = pkt.rssi
            self.last_snr = pkt.snr / 4
            retry_s = ack.options.get(iiot_codec.OPT_RETRY_S)
            if ack.hold:
                return _HOLD, retry_s
            if ack.options and self.on_options is not None:
                self.on_options(ack.options)
            return _ACKED, None
