"""The metric table every part shares.

Names and unit tags are part of the MQTT topic and InfluxDB schema contract. Ids are the
on-air identifiers: never renumber one, only add new ids (decoders skip ids they do not know).
The table is kept as tuples, not objects: on the board every byte of heap counts.
"""

from .errors import CodecError

# Scaled magnitudes must fit 31 bits. A board float32 (24-bit mantissa) rounds back to the
# decimal it was meant to be while |value * scale| < 2**22 (with float32 arithmetic, as on
# the STM32), which covers every real reading.
MAX_SCALED = 0x7FFFFFFF

# Row fields
ID = 0
NAME = 1
UNIT = 2
DECIMALS = 3
SIGNED = 4

# id, name, unit tag, decimals of resolution, signed
ROWS = (
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
)
# Link quality is metadata of the serial line, not part of a frame; it still has a unit and
# a resolution for the MQTT payload and the InfluxDB point.
LINK_ROWS = (
    (None, "rssi", "dBm", 0, True),
    (None, "snr", "dB", 2, True),
)

BY_ID = {row[ID]: row for row in ROWS}
BY_NAME = {row[NAME]: row for row in ROWS + LINK_ROWS}
MAX_METRIC_ID = 34  # a 5-byte presence bitmap varint holds ids 0..34


class Metric:
    """One row of the table as an object, for host code (the board uses the rows)."""

    def __init__(self, row):
        self.id, self.name, self.unit, self.decimals, self.signed = row
        self.scale = 10**self.decimals

    def __repr__(self):
        return "Metric(%r)" % (self.name,)


def _row(name):
    row = BY_NAME.get(name)
    if row is None:
        raise CodecError("metric", "unknown metric %r" % (name,))
    return row


def metric(name):
    """The Metric for ``name`` (air or link metric); CodecError if unknown."""
    return Metric(_row(name))


def to_scaled(row, value):
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


def from_scaled(row, n):
    return n / 10 ** row[DECIMALS] if row[DECIMALS] else float(n)


def format_value(name, value):
    """Plain decimal text at the metric's resolution: "27.60" for a temperature of 27.6."""
    row = _row(name)
    n = to_scaled(row, value)
    decimals = row[DECIMALS]
    if not decimals:
        return "%d" % n
    sign = "-" if n < 0 else ""
    whole, frac = divmod(-n if n < 0 else n, 10**decimals)
    digits = "%d" % frac
    return "%s%d.%s%s" % (sign, whole, "0" * (decimals - len(digits)), digits)
