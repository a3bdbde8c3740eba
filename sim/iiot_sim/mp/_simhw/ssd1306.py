# SSD1306 OLED controller model (Solomon Systech datasheet), I2C interface at 0x3C/0x3D.
#
# Each I2C write starts with a control byte: Co (bit 7) = another control byte follows the
# next byte, D/C# (bit 6) = data rather than command. Commands with arguments, the three
# addressing modes (page, horizontal, vertical) and the column/page windows are modelled;
# data goes into the 128x64 GDDRAM (8 pages of 128 bytes, LSB at the top).
# After each full frame (the address pointer wraps) or on {"op": "dump"} the GDDRAM and
# the display state are written to "display_<addr hex>.bin" in the working directory
# (IIOT_SIM_DISPLAY_DIR overrides), 1024 bytes then on, invert, contrast, seg remap,
# COM scan direction (one byte each), replaced atomically.
import os

from _simhw import control

# command -> number of argument bytes
_ARGS = {
    0x20: 1, 0x21: 2, 0x22: 2, 0x81: 1, 0x8D: 1, 0xA3: 2, 0xA8: 1, 0xAD: 1, 0xD3: 1,
    0xD5: 1, 0xD9: 1, 0xDA: 1, 0xDB: 1, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5,
}  # fmt: skip

_DIR = os.getenv("IIOT_SIM_DISPLAY_DIR") or "."


class SSD1306:
    def __init__(self, addr):
        self.addr = addr
        self.ram = bytearray(1024)
        self.on = 0
        self.invert = 0
        self.contrast = 0x7F
        self.seg_remap = 0
        self.com_remap = 0
        self.mode = 2  # page addressing after reset
        self.col = 0
        self.page = 0
        self.col_start = 0
        self.col_end = 127
        self.page_start = 0
        self.page_end = 7
        self._cmd = bytearray(7)
        self._cmd_len = 0
        self._cmd_need = 0
        self.frames = 0
        self._path = "%s/display_%02x.bin" % (_DIR, addr)
        control.on("dump", self._on_dump)

    def _on_dump(self, msg):
        self.dump()

    def i2c_write(self, parts):
        n = 0
        ctrl = None  # None: next byte is a control byte
        cont = False
        for part in parts:
            for b in part:
                n += 1
                if ctrl is None:
                    ctrl = b
                    cont = bool(b & 0x80)
                    continue
                if ctrl & 0x40:
                    self._data(b)
                else:
                    self._command(b)
                if cont:
                    ctrl = None  # Co=1: a new control byte follows each byte
        return n

    def i2c_read(self, buf):
        # A read returns the status byte: bit 6 is set while the display is off.
        for i in range(len(buf)):
            buf[i] = 0x00 if self.on else 0x40

    def _command(self, b):
        if self._cmd_need:
            self._cmd[self._cmd_len] = b
            self._cmd_len += 1
            self._cmd_need -= 1
            if not self._cmd_need:
                self._run(self._cmd[0], self._cmd)
            return
        need = _ARGS.get(b, 0)
        if need:
            self._cmd[0] = b
            self._cmd_len = 1
            self._cmd_need = need
            return
        self._run(b, None)

    def _run(self, c, args):
        if c == 0x20:
            self.mode = args[1] & 3
        elif c == 0x21:
            self.col_start = self.col = args[1] & 0x7F
            self.col_end = args[2] & 0x7F
        elif c == 0x22:
            self.page_start = self.page = args[1] & 7
            self.page_end = args[2] & 7
        elif c == 0x81:
            self.contrast = args[1]
        elif c in (0xAE, 0xAF):
            self.on = c & 1
        elif c in (0xA6, 0xA7):
            self.invert = c & 1
        elif c in (0xA0, 0xA1):
            self.seg_remap = c & 1
        elif c in (0xC0, 0xC8):
            self.com_remap = 1 if c == 0xC8 else 0
        elif 0xB0 <= c <= 0xB7:
            self.page = c & 7
        elif c <= 0x0F:
            self.col = (self.col & 0xF0) | c
        elif c <= 0x1F:
            self.col = (self.col & 0x0F) | ((c & 0x07) << 4)
        # other commands (timing, charge pump, scrolling, start line) change no pixels

    def _data(self, b):
        self.ram[self.page * 128 + self.col] = b
        if self.mode == 0:  # horizontal
            if self.col < self.col_end:
                self.col += 1
            else:
                self.col = self.col_start
                if self.page < self.page_end:
                    self.page += 1
                else:
                    self.page = self.page_start
                    self._frame()
        elif self.mode == 1:  # vertical
            if self.page < self.page_end:
                self.page += 1
            else:
                self.page = self.page_start
                if self.col < self.col_end:
                    self.col += 1
                else:
                    self.col = self.col_start
                    self._frame()
        else:  # page addressing: the column wraps within the page
            self.col = self.col + 1 if self.col < 127 else 0

    def _frame(self):
        self.frames += 1
        self.dump()

    def dump(self):
        tmp = self._path + ".tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(self.ram)
                f.write(
                    bytes((self.on, self.invert, self.contrast, self.seg_remap, self.com_remap))
                )
            os.rename(tmp, self._path)
        except OSError:
            pass
