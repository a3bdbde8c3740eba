"""Host-side views of the metric table: Metric objects, ids and payload text.

The boards never load this module (they only encode and decode numbers: metrics.py).
"""

from .metrics import BY_NAME, DECIMALS, ROWS, to_scaled
from .wire import CodecError

if False:  # type checkers only: MicroPython has no typing module (this compiles to nothing)
    from .metrics import Row

BY_ID: "dict[int, Row]" = {row[0]: row for row in ROWS}


class Metric:
    """One row of the table as an object, for host code (the board uses the rows)."""

    def __init__(self, row: "Row") -> None:
        self.id, self.name, self.unit, self.decimals, self.signed = row
        self.scale: int = 10**self.decimals

    def __repr__(self) -> str:
        return "Metric(%r)" % (self.name,)


def _row(name: str) -> "Row":
    row = BY_NAME.get(name)
    if row is None:
        raise CodecError("metric", "unknown metric %r" % (name,))
    return row


def metric(name: str) -> Metric:
    """The Metric for ``name`` (air or link metric); CodecError if unknown."""
    return Metric(_row(name))


def format_value(name: str, value: float) -> str:
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
