"""The air frame: encode and decode TELEMETRY, ACK and STATS frames.

Layout (docs/protocol.md has it byte by byte):

    byte 0      version (2 bits) | type (2 bits) | flags (4 bits)
    byte 1      source node id
    byte 2      destination node id (0 = any gateway)
    bytes 3-4   sequence: low 16 bits of the sender's 32-bit frame counter, big-endian
    body        TELEMETRY/STATS: [counter high half, 2 bytes, if FCNT_HI] [age varint, if AGE]
                                 presence bitmap varint, then one varint per present metric
                ACK: zero or more downlink options (tag byte, varint value)
    MIC         4 bytes, if the MIC flag is set (TELEMETRY/STATS only)
    CRC         CRC-16/CCITT-FALSE over everything before it, big-endian
"""

from .crc import crc16
from .errors import CodecError
from .metrics import BY_ID, BY_NAME, ID, MAX_METRIC_ID, NAME, SIGNED, from_scaled, to_scaled
from .mic import MIC_LEN, check_key, compute_mic, mic_equal
from .varint import get_uvarint, put_uvarint, unzigzag, zigzag

VERSION = 1

TELEMETRY = 0
ACK = 1
STATS = 2
KINDS = ("telemetry", "ack", "stats")

# TELEMETRY/STATS flags
F_ACK_REQ = 0x08  # the sender waits for an ACK
F_MIC = 0x04  # a 4-byte MIC precedes the CRC
F_AGE = 0x02  # an age varint (seconds since the readings were taken) starts the body
F_FCNT_HI = 0x01  # the counter's high 16 bits are sent explicitly (after boot, on resync)
# ACK flags
F_RESYNC = 0x01  # "I could not place your counter: send its high half again"

HEADER_LEN = 5
CRC_LEN = 2
MIN_FRAME_LEN = HEADER_LEN + CRC_LEN

# ACK downlink option tags
OPT_INTERVAL = 1  # new report interval, seconds

MAX_AGE_S = 0xFFFFFFFF


class Frame:
    """A decoded frame. ``readings`` maps metric names to floats (empty for an ACK)."""

    def __init__(self, kind, src, dst, seq, flags):
        self.kind = kind
        self.src = src
        self.dst = dst
        self.seq = seq  # the 16-bit sequence as sent
        self.flags = flags
        self.fcnt = seq  # full 32-bit counter, see decode()
        self.fcnt_hi = None  # the high half when the frame carried it
        self.readings = {}
        self.age_s = 0
        self.ack_req = bool(flags & F_ACK_REQ) if kind != "ack" else False
        self.has_mic = False
        self.authenticated = False  # True only when a key was given and the MIC verified
        self.skipped = 0  # readings with metric ids this decoder does not know
        self.interval_s = None  # ACK downlink: new report interval
        self.resync = False  # ACK: receiver asks for the counter's high half

    def __repr__(self):
        return "Frame(%s src=%d dst=%d seq=%d readings=%r age_s=%d)" % (
            self.kind,
            self.src,
            self.dst,
            self.seq,
            self.readings,
            self.age_s,
        )


def _check_id(name, value):
    if not isinstance(value, int) or not 0 <= value <= 255:
        raise CodecError("format", "%s must be an integer 0..255, got %r" % (name, value))


def _finish(buf):
    crc = crc16(buf)
    buf.append(crc >> 8)
    buf.append(crc & 0xFF)
    return bytes(buf)


def _encode_readings(msg_type, src, seq, readings, dst, age_s, key, ack_req, full_counter):
    _check_id("src", src)
    _check_id("dst", dst)
    if not isinstance(seq, int) or not 0 <= seq <= 0xFFFFFFFF:
        raise CodecError("format", "seq must be a 32-bit counter, got %r" % (seq,))
    if not isinstance(age_s, int) or not 0 <= age_s <= MAX_AGE_S:
        raise CodecError("format", "age_s must be a non-negative integer, got %r" % (age_s,))
    if key is not None:
        key = check_key(key)
    fcnt_hi = seq >> 16
    flags = 0
    if ack_req:
        flags |= F_ACK_REQ
    if key is not None:
        flags |= F_MIC
    if age_s:
        flags |= F_AGE
    if full_counter:
        flags |= F_FCNT_HI
    # Scale every value first so a bad one fails before anything is written.
    present = []
    for name in readings:
        row = BY_NAME.get(name)
        if row is None or row[ID] is None:
            raise CodecError("metric", "unknown metric %r" % (name,))
        n = to_scaled(row, readings[name])
        present.append((row[ID], zigzag(n) if row[SIGNED] else n))
    present.sort()
    buf = bytearray(((VERSION << 6) | (msg_type << 4) | flags,))
    buf.append(src)
    buf.append(dst)
    buf.append((seq >> 8) & 0xFF)
    buf.append(seq & 0xFF)
    if full_counter:
        buf.append(fcnt_hi >> 8)
        buf.append(fcnt_hi & 0xFF)
    if age_s:
        put_uvarint(buf, age_s)
    bitmap = 0
    for metric_id, _ in present:
        bitmap |= 1 << metric_id
    put_uvarint(buf, bitmap)
    for _, n in present:
        put_uvarint(buf, n)
    if key is not None:
        buf.extend(compute_mic(key, fcnt_hi, buf))
    return _finish(buf)


def encode_telemetry(
    src, seq, readings, dst=0, age_s=0, key=None, ack_req=True, full_counter=False
):
    """Encode a TELEMETRY frame.

    ``seq`` is the sender's 32-bit frame counter; its low 16 bits go on air and the high
    half is covered by the MIC (and sent too when ``full_counter``). ``readings`` maps
    metric names to numbers; ``age_s`` says how old the readings are (store-and-forward).
    """
    return _encode_readings(TELEMETRY, src, seq, readings, dst, age_s, key, ack_req, full_counter)


def encode_stats(src, seq, counters, dst=0, key=None, ack_req=False, full_counter=False):
    """Encode a STATS frame: gateway counters, same body layout as TELEMETRY."""
    return _encode_readings(STATS, src, seq, counters, dst, 0, key, ack_req, full_counter)


def encode_ack(src, dst, seq, interval_s=None, resync=False):
    """Encode an ACK from ``src`` (the gateway) for sequence ``seq`` of node ``dst``.

    ``interval_s`` optionally tells the node a new report interval; ``resync`` asks it to
    send its counter's high half. 7 bytes, 10 with an interval up to 16383 s.
    """
    _check_id("src", src)
    _check_id("dst", dst)
    if not isinstance(seq, int) or not 0 <= seq <= 0xFFFFFFFF:
        raise CodecError("format", "seq must be a counter, got %r" % (seq,))
    flags = F_RESYNC if resync else 0
    buf = bytearray(((VERSION << 6) | (ACK << 4) | flags,))
    buf.append(src)
    buf.append(dst)
    buf.append((seq >> 8) & 0xFF)
    buf.append(seq & 0xFF)
    if interval_s is not None:
        if not isinstance(interval_s, int) or not 0 < interval_s <= 0xFFFFFFFF:
            raise CodecError("format", "interval_s must be a positive integer")
        buf.append(OPT_INTERVAL)
        put_uvarint(buf, interval_s)
    return _finish(buf)


def place_counter(seq16, last_fcnt):
    """The 32-bit counter nearest to ``last_fcnt`` whose low half is ``seq16``.

    Like LoRaWAN's FCnt: only 16 bits travel, the receiver keeps the high half.
    """
    if last_fcnt is None:
        return seq16
    candidate = (last_fcnt & 0xFFFF0000) | seq16
    if candidate + 0x8000 < last_fcnt and candidate + 0x10000 <= 0xFFFFFFFF:
        candidate += 0x10000
    elif candidate > last_fcnt + 0x8000 and candidate >= 0x10000:
        candidate -= 0x10000
    return candidate


def decode(frame, key=None, last_fcnt=None):
    """Decode one air frame; raise CodecError (and only that) for anything invalid.

    With ``key``, the frame must carry a MIC that verifies; without, a MIC is reported
    (``has_mic``) but not checked. ``last_fcnt`` is the receiver's last accepted counter for
    this source, used to rebuild the 32-bit counter when the frame sends only 16 bits.
    """
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise CodecError("format", "frame must be bytes, got %s" % type(frame).__name__)
    frame = bytes(frame)
    end = len(frame) - CRC_LEN
    if len(frame) < MIN_FRAME_LEN:
        raise CodecError("truncated", "truncated: %d bytes, a frame has at least 7" % len(frame))
    got = (frame[end] << 8) | frame[end + 1]
    want = crc16(memoryview(frame)[:end])
    if got != want:
        raise CodecError("crc", "bad CRC: frame says %04x, computed %04x" % (got, want))
    b0 = frame[0]
    version = b0 >> 6
    if version != VERSION:
        raise CodecError("version", "unknown protocol version %d" % version)
    msg_type = (b0 >> 4) & 0x03
    if msg_type > STATS:
        raise CodecError("type", "unknown message type %d" % msg_type)
    flags = b0 & 0x0F
    f = Frame(KINDS[msg_type], frame[1], frame[2], (frame[3] << 8) | frame[4], flags)
    if msg_type == ACK:
        _decode_ack(f, frame, end)
    else:
        _decode_readings(f, frame, end, key, last_fcnt)
    return f


def _decode_ack(f, frame, end):
    if f.flags & ~F_RESYNC:
        raise CodecError("format", "ACK with unknown flags %x" % f.flags)
    f.resync = bool(f.flags & F_RESYNC)
    pos = HEADER_LEN
    while pos < end:
        tag = frame[pos]
        value, pos = get_uvarint(frame, pos + 1, end)
        if tag == OPT_INTERVAL:
            if value == 0:
                raise CodecError("format", "ACK interval of 0 s")
            f.interval_s = value
        # other tags: options of a later version, skipped


def _decode_readings(f, frame, end, key, last_fcnt):
    flags = f.flags
    body_end = end
    if flags & F_MIC:
        body_end = end - MIC_LEN
        if body_end < HEADER_LEN:
            raise CodecError("truncated", "truncated: no room for the MIC")
        f.has_mic = True
    elif key is not None:
        raise CodecError("mic", "frame has no MIC but node %d has a key" % f.src)
    pos = HEADER_LEN
    if flags & F_FCNT_HI:
        if pos + 2 > body_end:
            raise CodecError("truncated", "truncated: counter high half missing")
        f.fcnt_hi = (frame[pos] << 8) | frame[pos + 1]
        f.fcnt = (f.fcnt_hi << 16) | f.seq
        pos += 2
    else:
        f.fcnt = place_counter(f.seq, last_fcnt)
    if key is not None:
        want = compute_mic(check_key(key), f.fcnt >> 16, memoryview(frame)[:body_end])
        if not mic_equal(want, frame[body_end:end]):
            raise CodecError("mic", "bad MIC from node %d" % f.src)
        f.authenticated = True
    if flags & F_AGE:
        f.age_s, pos = get_uvarint(frame, pos, body_end)
        if f.age_s > MAX_AGE_S:
            raise CodecError("format", "age out of range")
    bitmap, pos = get_uvarint(frame, pos, body_end)
    metric_id = 0
    while bitmap:
        if bitmap & 1:
            raw, pos = get_uvarint(frame, pos, body_end)
            row = BY_ID.get(metric_id)
            if row is None:
                f.skipped += 1  # a metric added after this decoder was written
            else:
                f.readings[row[NAME]] = from_scaled(row, unzigzag(raw) if row[SIGNED] else raw)
        bitmap >>= 1
        metric_id += 1
        if metric_id > MAX_METRIC_ID + 1:
            raise CodecError("format", "presence bitmap too wide")
    if pos != body_end:
        raise CodecError("format", "%d unexpected bytes after the readings" % (body_end - pos))
