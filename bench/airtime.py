"""Bytes and time on air of node1's frame, the earlier system's frame and plain JSON.

Time on air follows the SX1276 datasheet (section 4.1.1.7, also Semtech AN1200.13):

    T_sym      = 2**SF / BW
    T_preamble = (n_preamble + 4.25) * T_sym
    n_payload  = 8 + max(ceil((8*PL - 4*SF + 28 + 16*CRC - 20*IH) / (4*(SF - 2*DE))) * (CR + 4), 0)
    T_packet   = T_preamble + n_payload * T_sym

with PL the payload bytes, CRC = 1 (CRC on), IH = 0 (explicit header), CR = 1 for 4/5 and
DE = 1 (low data rate optimisation) when a symbol lasts more than 16 ms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import iiot_codec
from iiot_sim.airtime import time_on_air_us

from .figures import Figure, measured

SECTION = "Codec and radio"
PREAMBLE = 12
# A representative node1 reading set (the same values for every encoding compared).
READINGS = {
    "temperature": 23.45,
    "humidity": 45.67,
    "pressure": 1013.25,
    "gas_resistance": 123456,
    "voltage": 3.301,
}
SEQ = 4242  # a counter past the first wrap of its low byte, no explicit high half
NODE1 = 1
KEY = bytes(range(16))
# The earlier system's frame: the logged 8 bytes plus its CRC-16 (DESIGN.md), 10 bytes
# carrying temperature, humidity and gas resistance only.
EARLIER_FRAME_LEN = 10


@dataclass(frozen=True)
class Modulation:
    sf: int
    bw_hz: int = 125_000
    cr: int = 1  # coding rate 4/(4+cr)
    preamble: int = PREAMBLE
    explicit_header: bool = True
    crc_on: bool = True

    @property
    def name(self) -> str:
        return f"SF{self.sf}/BW{self.bw_hz // 1000}/CR4-{4 + self.cr}"


SF7 = Modulation(sf=7)
SF9 = Modulation(sf=9)


def time_on_air_ms(payload_len: int, mod: Modulation) -> float:
    """Packet duration in milliseconds for ``payload_len`` bytes (SX1276 formula, as the
    simulator's radio channel computes it)."""
    return (
        time_on_air_us(
            payload_len,
            sf=mod.sf,
            bw_hz=mod.bw_hz,
            coding_rate=mod.cr + 4,
            preamble_len=mod.preamble,
            crc=mod.crc_on,
            implicit_header=not mod.explicit_header,
        )
        / 1000.0
    )


def payloads() -> dict[str, tuple[str, bytes]]:
    """The frames compared: key -> (description, bytes)."""
    plain = iiot_codec.encode_telemetry(NODE1, SEQ, READINGS)
    with_mic = iiot_codec.encode_telemetry(NODE1, SEQ, READINGS, key=KEY)
    as_json = json.dumps({"node": NODE1, "seq": SEQ, **READINGS}, separators=(",", ":")).encode()
    return {
        "ours": ("node1 frame, 5 readings, CRC", plain),
        "ours_mic": ("node1 frame, 5 readings, CRC + MIC", with_mic),
        "earlier": ("earlier system's frame, 3 readings", bytes(EARLIER_FRAME_LEN)),
        "json": ("the same 5 readings as compact JSON", as_json),
    }


def figures() -> list[Figure]:
    out: list[Figure] = []
    for key, (label, payload) in payloads().items():
        detail: dict[str, Any] = {"hex": payload.hex()} if key != "earlier" else {}
        if key == "json":
            detail = {"text": payload.decode()}
        out.append(
            measured(f"radio.{key}.bytes", SECTION, f"size: {label}", len(payload), "B", **detail)
        )
        for mod in (SF7, SF9):
            ms = time_on_air_ms(len(payload), mod)
            out.append(
                measured(
                    f"radio.{key}.airtime_sf{mod.sf}",
                    SECTION,
                    f"time on air {mod.name}: {label}",
                    round(ms, 2),
                    "ms",
                    preamble=mod.preamble,
                    explicit_header=True,
                    crc=True,
                )
            )
    return out
