# node1's OLED page: current readings, sequence number, link state (RSSI/SNR of the last
# ACK, queued readings) and seconds to the next report.
from oled import Screen


def _num(value, fmt, missing="--"):
    return missing if value is None else fmt % value


def lines(r, fcnt, rssi, snr, queued, next_s, status):
    """The 8 text lines for readings dict ``r`` and the link state."""
    gas = r.get("gas_resistance")
    return [
        "T %s H %s" % (_num(r.get("temperature"), "%.1fC"), _num(r.get("humidity"), "%.1f%%")),
        "P %s" % _num(r.get("pressure"), "%.1fhPa"),
        "G %s" % _num(None if gas is None else gas / 1000, "%.1fkOhm"),
        "V %s" % _num(r.get("voltage"), "%.3fV"),
        "#%s Q%d" % (_num(fcnt, "%d"), queued),
        "RSSI %s SNR %s" % (_num(rssi, "%d"), _num(snr, "%.1f")),
        "next %ds" % next_s,
        status,
    ]


class Display:
    def __init__(self, get_i2c, addr=0x3C, enabled=True):
        self.screen = Screen(get_i2c, addr, enabled)

    @property
    def failures(self):
        return self.screen.failures

    def update(self, r, fcnt, rssi, snr, queued, next_s, status=""):
        return self.screen.show(lines(r, fcnt, rssi, snr, queued, next_s, status))
