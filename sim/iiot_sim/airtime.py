"""LoRa time on air and radio settings, computed like the SX1276 and micropython-lib's driver.

The formula is the datasheet's (SX1276 4.1.1.6, SX1261 6.1.4) in the driver's integer form:
symbols x4, low data rate optimisation on when a symbol lasts 16 ms or more.
"""

from __future__ import annotations

from dataclasses import dataclass

BANDWIDTHS_HZ = {
    "7.8": 7800,
    "10.4": 10400,
    "15.6": 15600,
    "20.8": 20800,
    "31.25": 31250,
    "41.7": 41700,
    "62.5": 62500,
    "125": 125000,
    "250": 250000,
    "500": 500000,
}

# Receiver sensitivity at 125 kHz (SX1276 datasheet table 2.5.5 / AN1200.22), dBm.
_SENSITIVITY_125K = {6: -118.0, 7: -123.0, 8: -126.0, 9: -129.0, 10: -132.0, 11: -134.5, 12: -137.0}


@dataclass(frozen=True)
class ChipSettings:
    """What an SX1276's registers hold: the settings that decide who hears whom."""

    freq_hz: int = 434_000_000
    sf: int = 7
    bw_hz: int = 125_000
    coding_rate: int = 5
    crc: bool = False
    implicit_header: bool = False
    preamble_len: int = 8
    syncword: int = 0x12
    tx_dbm: float = 13.2
    invert_iq_rx: bool = False
    invert_iq_tx: bool = False

    @classmethod
    def from_message(cls, msg: list[float]) -> ChipSettings:
        """From the SX1276 model's settings message (mp/_simhw/sx1276.py): [freq,
        sf, bw, coding rate, crc, implicit header, preamble, syncword, dBm, iq rx, iq tx]."""
        freq, sf, bw, cr, crc, ih, pre, sw, dbm, iqrx, iqtx = msg
        return cls(
            freq_hz=int(freq),
            sf=int(sf),
            bw_hz=int(bw),
            coding_rate=int(cr),
            crc=bool(crc),
            implicit_header=bool(ih),
            preamble_len=int(pre),
            syncword=int(sw),
            tx_dbm=float(dbm),
            invert_iq_rx=bool(iqrx),
            invert_iq_tx=bool(iqtx),
        )

    def hears(self, sender: ChipSettings) -> bool:
        """Whether a receiver with these settings can demodulate ``sender``'s packets."""
        return (
            abs(self.freq_hz - sender.freq_hz) <= self.bw_hz // 4
            and self.sf == sender.sf
            and self.bw_hz == sender.bw_hz
            and self.syncword == sender.syncword
            and self.invert_iq_rx == sender.invert_iq_tx
            and self.implicit_header == sender.implicit_header
        )

    @property
    def symbol_us(self) -> int:
        return symbol_us(self.sf, self.bw_hz)

    @property
    def sensitivity_dbm(self) -> float:
        # Sensitivity scales with bandwidth: 3 dB worse per doubling above 125 kHz.
        import math

        return _SENSITIVITY_125K.get(self.sf, -123.0) + 10 * math.log10(self.bw_hz / 125_000)

    def time_on_air_us(self, payload_len: int) -> int:
        return time_on_air_us(
            payload_len,
            sf=self.sf,
            bw_hz=self.bw_hz,
            coding_rate=self.coding_rate,
            preamble_len=self.preamble_len,
            crc=self.crc,
            implicit_header=self.implicit_header,
        )

    def preamble_us(self) -> int:
        """Preamble plus sync word: 4.25 symbols more than the programmed length."""
        return self.symbol_us * (4 * self.preamble_len + 17) // 4


def symbol_us(sf: int, bw_hz: int) -> int:
    return 1_000_000 * (1 << sf) // bw_hz


def time_on_air_us(
    payload_len: int,
    *,
    sf: int = 7,
    bw_hz: int = 125_000,
    coding_rate: int = 5,
    preamble_len: int = 12,
    crc: bool = True,
    implicit_header: bool = False,
) -> int:
    """Microseconds a LoRa packet of ``payload_len`` bytes occupies the channel."""
    if not 0 <= payload_len <= 255:
        raise ValueError(f"payload length {payload_len} is not 0..255")
    tsym = symbol_us(sf, bw_hz)
    ldr = tsym >= 16_000
    bits = 8 * payload_len + (16 if crc else 0) - 4 * sf + 8 + (0 if implicit_header else 20)
    bits = max(bits, 0)
    bps = (sf - (2 if ldr else 0)) * 4
    n_x4 = 17 + 4 * (preamble_len + 8 + ((bits + bps - 1) // bps) * coding_rate)
    return tsym * n_x4 // 4
