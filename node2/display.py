# node2's OLED page: last node and sequence heard, RSSI/SNR, totals.
from oled import Screen


def _num(value, fmt):
    return "--" if value is None else fmt % value


def lines(gw, ring_len, drops, own, status):
    return [
        "gateway %d" % gw.node,
        "last N%s #%s" % (_num(gw.last_src, "%d"), _num(gw.last_seq, "%d")),
        "RSSI %s SNR %s" % (_num(gw.last_rssi, "%d"), _num(gw.last_snr, "%.1f")),
        "rx %d crc %d" % (gw.packets_received, gw.crc_errors),
        "dup %d auth %d" % (gw.duplicates, gw.auth_failures),
        "unacked %d drop %d" % (ring_len, drops),
        "T %s H %s" % (_num(own.get("temperature"), "%.1fC"), _num(own.get("humidity"), "%.1f%%")),
        status,
    ]


class Display:
    def __init__(self, get_i2c, addr=0x3C, enabled=True):
        self.screen = Screen(get_i2c, addr, enabled)

    def update(self, gw, ring_len, drops, own, status=""):
        return self.screen.show(lines(gw, ring_len, drops, own, status))
