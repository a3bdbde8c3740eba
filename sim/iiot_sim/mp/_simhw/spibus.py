# The board's SPI buses: which chip answers on which bus, and which MCU pins its chip select,
# reset and DIO lines are wired to. The one chip is the SX1276 radio module, wired as
# IIOT_SIM_SPI says ("1:sx1276:cs=PB6,reset=PC7,dio0=PA10,dio1=PB3"), else as the firmware's
# board module (shared/board.py: SPI_ID, RADIO_CS, RADIO_RESET, RADIO_DIO0, RADIO_DIO1)
# says, so the wiring is written once. IIOT_SIM_RADIO=0: no module fitted (MISO floats high).
import os

from _simhw import mcu

_buses = {}


def _wiring():
    spec = os.getenv("IIOT_SIM_SPI")
    if spec is not None:
        if not spec:
            return None, None
        bus_id, kind, pins = spec.split(":", 2)
        if kind != "sx1276":
            raise ValueError("unknown simulated SPI device %r" % kind)
        return int(bus_id), dict(p.split("=") for p in pins.split(","))
    try:
        import board
    except ImportError:
        return None, None
    pins = {"cs": board.RADIO_CS}
    for name in ("reset", "dio0", "dio1"):
        pin = getattr(board, "RADIO_" + name.upper(), None)
        if pin:
            pins[name] = pin
    return getattr(board, "SPI_ID", 1), pins


class Bus:
    def __init__(self, chip):
        self.chip = chip

    def xfer(self, w, r, n, fill):
        chip = self.chip
        if chip is not None and chip.selected:
            chip.xfer(w, r, n, fill)
        elif r is not None:
            for i in range(n):
                r[i] = 0xFF  # nobody drives MISO: the pull-up reads 0xFF


def bus(bus_id):
    b = _buses.get(bus_id)
    if b is not None:
        return b
    chip_bus, pins = (None, None) if os.getenv("IIOT_SIM_RADIO") == "0" else _wiring()
    chip = None
    if chip_bus == bus_id:
        from _simhw.sx1276 import SX1276

        for name in ("cs", "reset"):  # pulled up on the module until the MCU drives them
            if name in pins and pins[name] not in mcu._pins:
                mcu._state(pins[name])[0] = 1
        chip = SX1276(pins)
    b = _buses[bus_id] = Bus(chip)
    return b
