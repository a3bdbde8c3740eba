"""The metric table every part shares.

Names and unit tags are part of the MQTT topic and InfluxDB schema contract. Ids are the
on-air identifiers: never renumber one, only add new ids (decoders skip ids they do not know).
The table is kept as tuples, not objects: on the board every byte of heap counts (host-side
helpers, Metric objects and payload text, are in values.py).
"""

from .wire import CodecError

if False:  # type checkers only: MicroPython has no typing module (this compiles to nothing)
    from typing import Final, TypeAlias

    # id (None for link metadata), name, unit tag, decimals of resolution, signed
    Row: TypeAlias = "tuple[int | None, str, str, int, bool]"

# Scaled magnitudes must fit 31 bits. A board float32 (24-bit mantissa) rounds back to the
# decimal it was meant to be while |value * scale| < 2**22 (with float32 arithmetic, as on
# the STM32), which covers every real reading.
MAX_SCALED: "Final" = 0x7FFFFFFF

# Row fields
ID: "Final" = 0
NAME: "Final" = 1
UNIT: "Final" = 2
DECIMALS: "Final" = 3
SIGNED: "Final" = 4

# id, name, unit tag, decimals of resolution, signed
ROWS: "tuple[tuple[int, str, str, int, bool], ...]" = (
    (0, "temperature", "celsius", 2, True),
    (1, "humidity", "percent", 2, False),
    (2, "pressure", "hPa", 2, False),
    (3, "gas_resistance", "ohms", 0, False),
    (4, "voltage", "volt", 3, False),
    (5, "packets_received", "count", 0, False),
    (6, "crc_errors", "count", 0, False),
    (7, "duplicates", "count", 0, False),
    (8, "auth_failures", "count", 0, False),
    (9, "queue_drops", "count", 0, False),
    (10, "uptime", "seconds", 0, False),
    # node health (node1's and node2's STATS frames)
    (11, "queue_depth", "count", 0, False),  # readings (node1) or lines (node2) waiting
    (12, "retransmissions", "count", 0, False),
    (13, "failed_rounds", "count", 0, False),  # frames given up on after every retry
    (14, "radio_errors", "count", 0, False),  # radio init, send and receive failures
    (15, "sensor_errors", "count", 0, False),
    (16, "free_heap", "bytes", 0, False),
    (17, "memory_errors", "count", 0, False),  # MemoryError caught and survived
    (18, "acks_rejected", "count", 0, False),  # forged, replayed or unverifiable ACKs
    (19, "holds", "count", 0, False),  # "hold it" ACKs received (node1) or sent (node2)
    # settings in effect (a node confirms a setting sent down by reporting it)
    (20, "interval_s", "seconds", 0, False),
)
# Link quality is metadata of the serial line, not part of a frame; it still has a unit and
# a resolution for the MQTT payload and the InfluxDB point.
LINK_ROWS: "tuple[Row, ...]" = (
    (None, "rssi", "dBm", 0, True),
    (None, "snr", "dB", 2, True),
)

# An id is the row's position in ROWS: decoders index the table by id.
BY_NAME: "dict[str, Row]" = {row[NAME]: row for row in ROWS + LINK_ROWS}
MAX_METRIC_ID: "Final" = 34  # a 5-byte presence bitmap varint holds ids 0..34


def to_scaled(row: "Row", value: float) -> int:
    """Round ``value`` to the metric's resolution as an integer (half away from zero).

    Done explicitly instead of with round(): CPython and MicroPython must give the same
    integer, and their round() differ on halves.
    """
    try:
        x = value * 10 ** row[DECIMALS]
        n = int(x + 0.5) if x >= 0 else -int(-x + 0.5)
    except (TypeError, ValueError, OverflowError):
        raise CodecError("value", "%s: %r is not a finite number" % (row[NAME], value))
    if n < 0 and not row[SIGNED]:
        raise CodecError("value", "%s cannot be negative (%r)" % (row[NAME], value))
    if n > MAX_SCALED or n < -MAX_SCALED:
        raise CodecError("value", "%s: %r is out of range" % (row[NAME], value))
    return n


def from_scaled(row: "Row", n: int) -> float:
    return n / 10 ** row[DECIMALS] if row[DECIMALS] else float(n)


def quantize(name: str, value: float) -> float:
    """``value`` at the resolution metric ``name`` travels with: what the receiver will get."""
    row = BY_NAME[name]
    return from_scaled(row, to_scaled(row, value))
