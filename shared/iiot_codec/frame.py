"""The air frame (protocol version 2): header, flags, the decoded Frame, the checks every
frame type shares, the uplink encoders (TELEMETRY, BATCH, STATS) and the ACK's encoder and
decoder. The uplink decoder is decode.py: the sensor node never needs it.

Layout (docs/protocol.md has it byte by byte):

    byte 0      version (2 bits) | type (2 bits) | flags (4 bits)
    byte 1      source node id
    byte 2      destination node id (0 = any gateway)
    bytes 3-4   sequence: low 16 bits of the sender's 32-bit frame counter, big-endian
                (in an ACK: of the counter it acknowledges)
    body        TELEMETRY/STATS: [counter high half if FCNT_HI] [age if AGE] bitmap values
                BATCH:           [counter high half if FCNT_HI] then entries to the end:
                                 age (first: its own; then: older by), bitmap, values
                ACK:             options (tag byte, varint value), in tag order
    MIC         4 bytes, if the MIC flag is set
    CRC         CRC-16/CCITT-FALSE over everything before it, big-endian

Ages travel in deciseconds; the API takes and gives milliseconds.
"""

from .metrics import BY_NAME, ID, SIGNED, to_scaled
from .wire import (
    ACK_DIR,
    UP_DIR,
    CodecError,
    compute_mic,
    crc16,
    get_uvarint,
    mic_equal,
    put_uvarint,
    zigzag,
)

if False:  # type checkers only: MicroPython has no typing module (this compiles to nothing)
    from typing import Mapping, Sequence, TypeAlias

    # What callers pass: any mapping of metric name -> number (ints are numbers too)
    Values: TypeAlias = "Mapping[str, float]"


VERSION = 2

TELEMETRY = 0
ACK = 1
STATS = 2
BATCH = 3
KINDS = ("telemetry", "ack", "stats", "batch")

# Uplink flags (TELEMETRY, STATS, BATCH)
F_ACK_REQ = 0x08  # the sender waits for an ACK
F_MIC = 0x04  # a 4-byte MIC precedes the CRC (ACKs too)
F_AGE = 0x02  # TELEMETRY/STATS: an age varint starts the body (reserved in BATCH)
F_FCNT_HI = 0x01  # the counter's high 16 bits are sent explicitly (after boot, on resync)
# ACK flags
F_RESYNC = 0x01  # "I could not place your counter: send its high half again"
F_HOLD = 0x02  # "I heard you but cannot keep it now: hold it, retry later"

HEADER_LEN = 5
CRC_LEN = 2
MIN_FRAME_LEN = HEADER_LEN + CRC_LEN
MAX_FRAME_LEN = 255

# ACK option tags. Settings a node applies (1..63) are the downlink tags of
# iiot_codec.settings; tags from 64 on are link control.
OPT_RETRY_S = 64  # with HOLD: wait this many seconds before trying again

MAX_AGE_MS = 0xFFFFFFFF * 100


class Frame:
    """A decoded frame.

    ``entries`` lists ``(age_ms, readings)`` pairs, oldest first (one for TELEMETRY and
    STATS, one per reading for BATCH, none for an ACK); ``readings`` is the newest entry's
    readings. ``options`` maps ACK option tags to their values.
    """

    def __init__(self, kind: str, src: int, dst: int, seq: int, flags: int) -> None:
        self.kind = kind
        self.src = src
        self.dst = dst
        self.seq = seq  # the 16-bit sequence as sent
        self.flags = flags
        self.fcnt = seq  # full 32-bit counter, see decode()
        self.fcnt_hi: "int | None" = None  # the high half when the frame carried it
        self.entries: "list[tuple[int, dict[str, float]]]" = []
        self.readings: "dict[str, float]" = {}
        self.ack_req = bool(flags & F_ACK_REQ) if kind != "ack" else False
        self.has_mic = bool(flags & F_MIC)
        self.authenticated = False  # True only when a key was given and the MIC verified
        self.skipped = 0  # readings with metric ids this decoder does not know
        self.options: "dict[int, int]" = {}  # ACK: option tag -> value
        self.resync = False  # ACK: the receiver asks for the counter's high half
        self.hold = False  # ACK: the receiver did not take the frame; hold it

    @property
    def age_ms(self) -> int:
        """Age of the newest entry (0 for an ACK)."""
        return self.entries[-1][0] if self.entries else 0

    def __repr__(self) -> str:
        return "Frame(%s %d>%d #%d %r)" % (self.kind, self.src, self.dst, self.seq, self.entries)


def check_int(name: str, value: object, hi: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= hi:
        raise CodecError("format", "%s must be an integer 0..%d, got %r" % (name, hi, value))


def header(msg_type: int, flags: int, src: int, dst: int, seq: int) -> bytearray:
    check_int("src", src, 255)
    check_int("dst", dst, 255)
    check_int("seq", seq, 0xFFFFFFFF)
    return bytearray(
        ((VERSION << 6) | (msg_type << 4) | flags, src, dst, (seq >> 8) & 0xFF, seq & 0xFF)
    )


def finish(buf: bytearray, key: bytes | bytearray | None, direction: int, fcnt: int) -> bytes:
    if key is not None:
        buf.extend(compute_mic(key, direction, fcnt, buf))
    if len(buf) + CRC_LEN > MAX_FRAME_LEN:
        raise CodecError("format", "frame of %d bytes exceeds one LoRa packet" % (len(buf) + 2))
    crc = crc16(buf)
    buf.append(crc >> 8)
    buf.append(crc & 0xFF)
    return bytes(buf)


def peek(frame: bytes | bytearray | memoryview) -> tuple[str, int]:
    """``(kind, src)`` of an air frame, from its header alone (nothing is verified)."""
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise CodecError("format", "frame must be bytes, got %s" % type(frame).__name__)
    if len(frame) < MIN_FRAME_LEN:
        raise CodecError("truncated", "truncated: %d bytes, a frame has at least 7" % len(frame))
    if frame[0] >> 6 != VERSION:
        raise CodecError("version", "unknown protocol version %d" % (frame[0] >> 6))
    return KINDS[(frame[0] >> 4) & 0x03], frame[1]


def place_counter(seq16: int, last_fcnt: int | None) -> int:
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


def check_frame(frame: bytes | bytearray | memoryview) -> "tuple[bytes, Frame, int, int]":
    if not isinstance(frame, (bytes, bytearray, memoryview)):
        raise CodecError("format", "frame must be bytes, got %s" % type(frame).__name__)
    frame = bytes(frame)
    if len(frame) < MIN_FRAME_LEN:
        raise CodecError("truncated", "truncated: %d bytes, a frame has at least 7" % len(frame))
    end = len(frame) - CRC_LEN
    got = (frame[end] << 8) | frame[end + 1]
    want = crc16(memoryview(frame)[:end])
    if got != want:
        raise CodecError("crc", "bad CRC: frame says %04x, computed %04x" % (got, want))
    b0 = frame[0]
    if b0 >> 6 != VERSION:
        raise CodecError("version", "unknown protocol version %d" % (b0 >> 6))
    msg_type = (b0 >> 4) & 0x03
    f = Frame(KINDS[msg_type], frame[1], frame[2], (frame[3] << 8) | frame[4], b0 & 0x0F)
    body_end = end
    if f.has_mic:
        body_end -= 4
        if body_end < HEADER_LEN:
            raise CodecError("truncated", "truncated: no room for the MIC")
    return frame, f, msg_type, body_end


def verify(
    f: Frame, frame: bytes, body_end: int, key: bytes | bytearray | None, direction: int
) -> None:
    if key is None:
        return
    if not f.has_mic:
        raise CodecError("mic", "frame from node %d has no MIC, but a key is set" % f.src)
    want = compute_mic(key, direction, f.fcnt, memoryview(frame)[:body_end])
    if not mic_equal(want, frame[body_end : body_end + 4]):
        raise CodecError("mic", "bad MIC from node %d" % (f.src,))
    f.authenticated = True


# --- Uplink encoders: TELEMETRY, BATCH and STATS frames (layout in frame.py).


def _put_readings(buf: bytearray, readings: "Values") -> None:
    # Scale every value first so a bad one fails before anything is written.
    present: "list[tuple[int, int]]" = []
    for name in readings:
        row = BY_NAME.get(name)
        if row is None or row[ID] is None:
            raise CodecError("metric", "unknown metric %r" % (name,))
        n = to_scaled(row, readings[name])
        present.append((row[ID], zigzag(n) if row[SIGNED] else n))
    present.sort()
    bitmap = 0
    for metric_id, _ in present:
        bitmap |= 1 << metric_id
    put_uvarint(buf, bitmap)
    for _, n in present:
        put_uvarint(buf, n)


def _age_ds(age_ms: int) -> int:
    if not isinstance(age_ms, int) or not 0 <= age_ms <= MAX_AGE_MS:
        raise CodecError("format", "age_ms must be a non-negative integer, got %r" % (age_ms,))
    return (age_ms + 50) // 100  # to the nearest decisecond


def encode_readings(
    src: int,
    seq: int,
    entries: "Sequence[tuple[int, Values]]",
    dst: int = 0,
    key: bytes | bytearray | None = None,
    ack_req: bool = True,
    full_counter: bool = False,
    stats: bool = False,
) -> bytes:
    """Encode ``entries`` (``(age_ms, readings)`` pairs, oldest first) in one frame.

    One entry gives a TELEMETRY frame (STATS with ``stats``), several a BATCH frame.
    ``seq`` is the sender's 32-bit frame counter: its low 16 bits go on air and the whole
    counter is covered by the MIC (its high half is also sent with ``full_counter``).
    """
    if not entries:
        raise CodecError("format", "a frame carries at least one reading")
    if stats and len(entries) != 1:
        raise CodecError("format", "a STATS frame carries one entry")
    single = len(entries) == 1
    first_ds = _age_ds(entries[0][0])
    flags = (F_ACK_REQ if ack_req else 0) | (F_MIC if key is not None else 0)
    flags |= F_FCNT_HI if full_counter else 0
    if single and first_ds:
        flags |= F_AGE
    buf = header(STATS if stats else (TELEMETRY if single else BATCH), flags, src, dst, seq)
    if full_counter:
        buf.append(seq >> 24)
        buf.append((seq >> 16) & 0xFF)
    prev_ds: "int | None" = None
    for age_ms, readings in entries:
        ds = _age_ds(age_ms)
        if prev_ds is None:
            if not single or ds:
                put_uvarint(buf, ds)
        elif ds > prev_ds:
            raise CodecError("format", "batch entries must be oldest first")
        else:
            put_uvarint(buf, prev_ds - ds)
        prev_ds = ds
        _put_readings(buf, readings)
    return finish(buf, key, UP_DIR, seq)


def encode_telemetry(
    src: int,
    seq: int,
    readings: "Values",
    dst: int = 0,
    age_ms: int = 0,
    key: bytes | bytearray | None = None,
    ack_req: bool = True,
    full_counter: bool = False,
) -> bytes:
    """A TELEMETRY frame with one set of ``readings`` taken ``age_ms`` ago."""
    return encode_readings(src, seq, ((age_ms, readings),), dst, key, ack_req, full_counter)


def encode_stats(
    src: int,
    seq: int,
    counters: "Values",
    dst: int = 0,
    key: bytes | bytearray | None = None,
    ack_req: bool = False,
    full_counter: bool = False,
) -> bytes:
    """A STATS frame: a node's own counters, same body layout as TELEMETRY."""
    return encode_readings(src, seq, ((0, counters),), dst, key, ack_req, full_counter, True)


# --- ACKs: encode (the gateway) and decode with MIC check (the node). Layout in frame.py.


def encode_ack(
    src: int,
    dst: int,
    fcnt: int,
    options: dict[int, int] | None = None,
    resync: bool = False,
    hold: bool = False,
    key: bytes | bytearray | None = None,
) -> bytes:
    """An ACK from gateway ``src`` for frame counter ``fcnt`` of node ``dst``.

    ``options`` maps option tags to unsigned integers (settings for the node, OPT_RETRY_S
    with ``hold``). With ``key`` (the node's key) the ACK carries a MIC over the full
    32-bit ``fcnt``, so it verifies only for the frame it acknowledges.
    """
    flags = (F_RESYNC if resync else 0) | (F_HOLD if hold else 0) | (F_MIC if key else 0)
    buf = header(ACK, flags, src, dst, fcnt)
    if options:
        for tag in sorted(options):
            check_int("option tag", tag, 255)
            value = options[tag]
            check_int("option value", value, 0xFFFFFFFF)
            buf.append(tag)
            put_uvarint(buf, value)
    return finish(buf, key, ACK_DIR, fcnt)


def ack_body(f: "Frame", frame: bytes, end: int) -> None:
    if f.flags & 0x08:
        raise CodecError("format", "ACK with the reserved flag 0x08 set")
    f.resync = bool(f.flags & F_RESYNC)
    f.hold = bool(f.flags & F_HOLD)
    pos = HEADER_LEN
    while pos < end:
        tag = frame[pos]
        f.options[tag], pos = get_uvarint(frame, pos + 1, end)


def decode_ack(
    frame: bytes | bytearray | memoryview,
    key: bytes | bytearray | None = None,
    fcnt: int | None = None,
) -> "Frame":
    """Decode an ACK; with ``key``, it must carry a MIC that verifies for the 32-bit frame
    counter ``fcnt`` the receiver is waiting on (so an ACK recorded for another frame, or
    forged, raises CodecError("mic"))."""
    frame, f, msg_type, body_end = check_frame(frame)
    if msg_type != ACK:
        raise CodecError("type", "not an ACK: %s" % f.kind)
    ack_body(f, frame, body_end)
    if key is not None:
        if fcnt is not None:
            check_int("fcnt", fcnt, 0xFFFFFFFF)
        if fcnt is None or fcnt & 0xFFFF != f.seq:
            raise CodecError("mic", "ACK for another frame")
        f.fcnt = fcnt
        verify(f, frame, body_end, key, ACK_DIR)
    return f
