# node2's side of the link layer: check each received frame, ACK it at once, forward each
# new frame exactly once, re-ACK duplicates, refuse replays and unauthenticated frames.
#
# The duplicate/replay rule is iiot_codec.classify with the last accepted counter per
# source (kept in RAM). A node with a key must send a MIC that verifies; a MIC frame
# without its counter's high half cannot be verified when the gateway does not know that
# half yet (after the gateway rebooted), so the gateway answers with a resync ACK and the
# node sends the counter in full.
import iiot_codec

FORWARD = "forward"
RESET = "reset"
DUPLICATE = "duplicate"
STALE = "stale"
REPLAY = "replay"
UNAUTH = "unauthenticated"
BAD_MIC = "bad_mic"
RESYNC = "resync"
BAD = "bad"
IGNORED = "ignored"


class Gateway:
    """handle(packet) decides; ``send`` transmits ACKs, ``forward(frame, rssi, snr)``
    takes accepted frames (node2 writes them to the serial line)."""

    def __init__(self, node, keys, send, forward):
        self.node = node
        self.keys = keys  # src id -> 16-byte key
        self.send = send
        self.forward = forward
        self.last = {}  # src id -> last accepted 32-bit counter
        self.packets_received = 0
        self.crc_errors = 0  # frames whose own CRC (or structure) was wrong
        self.duplicates = 0
        self.auth_failures = 0
        self.acks_sent = 0
        self.last_src = None
        self.last_seq = None
        self.last_rssi = None
        self.last_snr = None

    def _ack(self, f, resync=False):
        try:
            ok = self.send(iiot_codec.encode_ack(self.node, f.src, f.seq, resync=resync))
        except Exception:
            ok = False
        if ok:
            self.acks_sent += 1

    def handle(self, data, rssi=None, snr=None):
        """Process one received packet (bytes-like). Returns the decision (for tests/UI)."""
        self.packets_received += 1
        data = bytes(data)  # an RxPacket is a bytearray subclass; keep plain bytes
        last = None
        if len(data) > 1:
            last = self.last.get(data[1])
        try:
            f = iiot_codec.decode(data, last_fcnt=last)
        except ValueError:  # CodecError: bad CRC, truncated, malformed
            self.crc_errors += 1
            return BAD
        if f.kind == "ack" or f.src == self.node or f.dst not in (0, self.node):
            return IGNORED  # ACKs and traffic for another gateway
        key = self.keys.get(f.src)
        if key is not None:
            if not f.has_mic:
                self.auth_failures += 1
                return UNAUTH
            if f.fcnt_hi is None and last is None:
                if f.ack_req:
                    self._ack(f, resync=True)
                return RESYNC
            try:
                f = iiot_codec.decode(data, key=key, last_fcnt=last)
            except ValueError:
                self.auth_failures += 1
                return BAD_MIC
        self.last_src = f.src
        self.last_seq = f.seq
        self.last_rssi = rssi
        self.last_snr = snr
        verdict = iiot_codec.classify(f, last)
        if verdict == iiot_codec.NEW or verdict == iiot_codec.RESET:
            self.last[f.src] = f.fcnt
            if f.ack_req:
                self._ack(f)  # ACK first: the node is waiting, the serial line is not
            self.forward(data, rssi, snr)
            return FORWARD if verdict == iiot_codec.NEW else RESET
        if verdict == iiot_codec.DUPLICATE:
            self.duplicates += 1
            if f.ack_req:
                self._ack(f)
            return DUPLICATE
        if f.authenticated:
            self.auth_failures += 1  # an old counter with a valid MIC: a replay
            return REPLAY
        self.duplicates += 1
        return STALE
