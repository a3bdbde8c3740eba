# node1's OLED page: current readings, sequence number, link state (RSSI/SNR of the last
# ACK, queued readings) and seconds to the next report.
from oled import Screen, num


class Display(Screen):
    def update(self, r, fcnt, rssi, snr, q, wait, status=""):
        t = num(r.get("temperature"), "%.1fC")
        return self.show(
            [
                "T %s H %s" % (t, num(r.get("humidity"), "%.1f%%")),
                "P %s" % num(r.get("pressure"), "%.1fhPa"),
                "G %s" % num(r.get("gas_resistance"), "%dOhm"),
                "V %s" % num(r.get("voltage"), "%.3fV"),
                "#%s Q%d" % (num(fcnt, "%d"), q),
                "RSSI %s SNR %s" % (num(rssi, "%d"), num(snr, "%.1f")),
                "next %ds" % wait,
                status,
            ]
        )
