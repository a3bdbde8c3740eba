# node2's side of the link layer: check each received frame, take custody of it or tell
# the node to hold it, ACK it at once, forward each new frame exactly once, re-ACK
# duplicates, refuse replays and unauthenticated frames, and carry settings down.
#
# The duplicate/replay rule is iiot_codec.classify with the last accepted counter per
# source and window (readings, STATS), kept in RAM. A node with a key must send a MIC that
# verifies, and gets ACKs with a MIC over the counter they acknowledge; a MIC frame without
# its counter's high half cannot be verified when the gateway does not know that half yet
# (after the gateway rebooted), so the gateway answers with a resync ACK (no MIC: it cannot
# compute one) and the node sends the counter in full.
#
# Custody: a new frame is acknowledged only when ``room(len)`` says node2 can keep it until
# the host has it; otherwise the ACK says HOLD with a retry time, and the frame is not
# recorded, so the node's retry later is new again.
#
# Settings for a node (from the host) wait in ``pending`` and ride on every ACK to that
# node until a frame from it reports the setting at the value sent.
from micropython import const

import iiot_codec

_MAX_PENDING_NODES = const(16)
_STATS_WINDOW = const(256)  # STATS frames are counted apart from readings (their own window)


class Gateway:
    """handle(packet) decides; ``send`` transmits ACKs, ``room(n)`` says whether a frame of
    n bytes can be kept, ``forward(frame, rssi, snr)`` keeps it (node2's serial ring)."""

    def __init__(self, node, keys, send, room, forward, downlink=None, hold_retry_s=20):
        self.node = node
        self.keys = keys  # src id -> 16-byte key
        self.send = send
        self.room = room
        self.forward = forward
        self.downlink = downlink or {}  # option tag -> (setting name, low, high)
        self.hold_retry_s = hold_retry_s
        self.last = {}  # src id (+ _STATS_WINDOW for STATS) -> last accepted 32-bit counter
        self.pending = {}  # node id -> {option tag: value}
        self.packets_received = 0
        self.crc_errors = 0  # frames whose own CRC (or structure) was wrong
        self.duplicates = 0
        self.auth_failures = 0
        self.holds = 0
        self.drops = 0
        self.last_src = None
        self.last_seq = None
        self.last_rssi = None
        self.last_snr = None

    def set_pending(self, node, tag, value):
        """A setting for ``node`` from the host (value None withdraws it). False if refused."""
        if tag not in self.downlink:
            return False
        options = self.pending.get(node)
        if value is None:
            if options is not None:
                options.pop(tag, None)
                if not options:
                    del self.pending[node]
            return True
        if options is None:
            if len(self.pending) >= _MAX_PENDING_NODES:
                return False
            options = self.pending[node] = {}
        options[tag] = value  # the newest value wins
        return True

    def _ack(self, f, key=None, resync=False, hold=False):
        options = None
        if hold:
            options = {iiot_codec.OPT_RETRY_S: self.hold_retry_s}
        elif not resync:
            options = self.pending.get(f.src)
        try:
            self.send(
                iiot_codec.encode_ack(
                    self.node, f.src, f.fcnt, options, resync=resync, hold=hold, key=key
                )
            )
        except Exception:  # a radio failure is counted by the radio; the node retries
            pass

    def _confirmed(self, f):
        # The node reports a setting at the value sent: it has it; stop sending it.
        options = self.pending.get(f.src)
        if options is None:
            return
        for tag in list(options):
            name = self.downlink[tag][0]
            if f.readings.get(name) == options[tag]:
                self.set_pending(f.src, tag, None)

    def handle(self, data, rssi=None, snr=None):
        """Process one received packet (bytes-like). Returns the decision (for tests and the
        REPL): forward, reset, duplicate, stale, replay, unauthenticated, bad_mic, resync,
        bad, ignored (an ACK, or its own frame), hold, or drop (new, not for this gateway to
        ACK, and no room to keep it)."""
        self.packets_received += 1
        data = bytes(data)  # an RxPacket is a bytearray subclass; keep plain bytes
        try:
            kind, src = iiot_codec.peek(data)
        except ValueError:
            self.crc_errors += 1
            return "bad"
        window = src + _STATS_WINDOW if kind == "stats" else src
        last = self.last.get(window)
        # A node's readings and its STATS count in one sequence, so the STATS window's
        # counter places a readings frame that carries only the low half when this window
        # has none yet (STATS always carry the full counter): a gateway that rebooted, or
        # that only listens to this node, need not wait for the node to send it in full.
        near = self.last.get(window, self.last.get(src + _STATS_WINDOW))
        try:
            f = iiot_codec.decode(data, last_fcnt=near)
        except ValueError:  # CodecError: bad CRC, truncated, malformed
            self.crc_errors += 1
            return "bad"
        if f.kind == "ack" or f.src == self.node:
            return "ignored"
        # A frame for another gateway is overheard: forwarded (once, like any frame: the
        # bridge keeps one copy), never acknowledged, so two gateways never ACK over each
        # other; the node's own gateway takes custody of it.
        ack = f.ack_req and f.dst in (0, self.node)
        key = self.keys.get(f.src)
        if key is not None:
            if not f.has_mic:
                self.auth_failures += 1
                return "unauthenticated"
            if f.fcnt_hi is None and near is None:
                if ack:
                    self._ack(f, resync=True)
                return "resync"
            try:
                f = iiot_codec.decode(data, key=key, last_fcnt=near)
            except ValueError:
                self.auth_failures += 1
                return "bad_mic"
        self.last_src = f.src
        self.last_seq = f.seq
        self.last_rssi = rssi
        self.last_snr = snr
        verdict = iiot_codec.classify(f, last)
        if verdict == iiot_codec.NEW or verdict == iiot_codec.RESET:
            if not self.room(len(data)):
                if ack:
                    self.holds += 1
                    self._ack(f, key, hold=True)
                    return "hold"
                self.drops += 1
                return "drop"
            self.last[window] = f.fcnt
            self._confirmed(f)
            if ack:
                self._ack(f, key)  # ACK first: the node is waiting, the serial line is not
            self.forward(data, rssi, snr)
            return "forward" if verdict == iiot_codec.NEW else "reset"
        if verdict == iiot_codec.DUPLICATE:
            self.duplicates += 1
            if ack:
                self._ack(f, key)
            return "duplicate"
        if f.authenticated:
            self.auth_failures += 1  # an old counter with a valid MIC: a replay
            return "replay"
        self.duplicates += 1
        return "stale"
