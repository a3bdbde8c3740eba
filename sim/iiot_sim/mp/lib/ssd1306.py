# SSD1306 OLED driver for the simulator, with micropython-lib ssd1306's public API:
# SSD1306_I2C(width, height, i2c, addr=0x3C, external_vcc=False) is a framebuf.FrameBuffer
# (MONO_VLSB) with show(), poweroff(), poweron(), contrast(), invert(), rotate(). Like that
# driver it sends commands with writeto (control byte 0x80) and the frame with writevto
# (control byte 0x40), so the display model sees the same I2C traffic as on the board.
# (Used when the deploy tree does not provide micropython-lib's own module.)
import framebuf
from micropython import const

_DISP_OFF = const(0xAE)
_DISP_ON = const(0xAF)


class SSD1306(framebuf.FrameBuffer):
    def __init__(self, width, height, external_vcc):
        self.width = width
        self.height = height
        self.external_vcc = external_vcc
        self.pages = height // 8
        self.buffer = bytearray(self.pages * width)
        super().__init__(self.buffer, width, height, framebuf.MONO_VLSB)
        self.init_display()

    def init_display(self):
        # Datasheet power-up sequence: off, horizontal addressing, geometry, timing, pump, on.
        wide = self.width > 2 * self.height
        for c in (
            _DISP_OFF,
            0x20, 0x00,  # horizontal addressing
            0x40,  # start line 0
            0xA1,  # column 127 -> SEG0
            0xA8, self.height - 1,  # multiplex ratio
            0xC8,  # COM scan remapped
            0xD3, 0x00,  # display offset
            0xDA, 0x02 if wide else 0x12,  # COM pins
            0xD5, 0x80,  # clock divide
            0xD9, 0x22 if self.external_vcc else 0xF1,  # pre-charge
            0xDB, 0x30,  # VCOMH
            0x81, 0xFF,  # contrast
            0xA4,  # follow RAM
            0xA6,  # not inverted
            0xAD, 0x30,  # internal IREF
            0x8D, 0x10 if self.external_vcc else 0x14,  # charge pump
            _DISP_ON,
        ):  # fmt: skip
            self.write_cmd(c)
        self.fill(0)
        self.show()

    def poweroff(self):
        self.write_cmd(_DISP_OFF)

    def poweron(self):
        self.write_cmd(_DISP_ON)

    def contrast(self, contrast):
        self.write_cmd(0x81)
        self.write_cmd(contrast)

    def invert(self, invert):
        self.write_cmd(0xA6 | (invert & 1))

    def rotate(self, rotate):
        self.write_cmd(0xC0 | ((rotate & 1) << 3))
        self.write_cmd(0xA0 | (rotate & 1))

    def show(self):
        x0 = 0
        x1 = self.width - 1
        if self.width != 128:
            x0 += (128 - self.width) // 2
            x1 += (128 - self.width) // 2
        for c in (0x21, x0, x1, 0x22, 0, self.pages - 1):
            self.write_cmd(c)
        self.write_data(self.buffer)


class SSD1306_I2C(SSD1306):
    def __init__(self, width, height, i2c, addr=0x3C, external_vcc=False):
        self.i2c = i2c
        self.addr = addr
        self._cmd = bytearray(2)
        self._vec = [b"\x40", None]
        super().__init__(width, height, external_vcc)

    def write_cmd(self, cmd):
        self._cmd[0] = 0x80
        self._cmd[1] = cmd
        self.i2c.writeto(self.addr, self._cmd)

    def write_data(self, buf):
        self._vec[1] = buf
        self.i2c.writevto(self.addr, self._vec)
