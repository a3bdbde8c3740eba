# node2's OLED page: last node and sequence heard, RSSI/SNR, totals.
from oled import Screen, num


class Display(Screen):
    def update(self, gw, held, drops, t, h, status):
        return self.show(
            [
                "gw %d" % gw.node,
                "last N%s #%s" % (num(gw.last_src, "%d"), num(gw.last_seq, "%d")),
                "RSSI %s SNR %s" % (num(gw.last_rssi, "%d"), num(gw.last_snr, "%.1f")),
                "rx %d crc %d" % (gw.packets_received, gw.crc_errors),
                "dup %d auth %d" % (gw.duplicates, gw.auth_failures),
                "held %d drop %d" % (held, drops),
                "T %s H %s" % (num(t, "%.1fC"), num(h, "%.1f%%")),
                status,
            ]
        )
