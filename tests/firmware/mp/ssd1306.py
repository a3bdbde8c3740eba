# Test stand-in for micropython-lib's `ssd1306`: a FrameBuffer that pushes its buffer over
# the I2C bus the way the driver does (writeto for commands, writevto for data) and, when
# FAKE_OLED names a file, writes the text lines drawn since the last show() there.
import os

import framebuf


class SSD1306_I2C(framebuf.FrameBuffer):
    def __init__(self, width, height, i2c, addr=0x3C, external_vcc=False):
        self.i2c = i2c
        self.addr = addr
        self.buffer = bytearray(width * height // 8)
        self.texts = []
        super().__init__(self.buffer, width, height, framebuf.MONO_VLSB)
        self.i2c.writeto(self.addr, b"\x80\xae")

    def text(self, s, x, y, c=1):
        self.texts.append(s)
        super().text(s, x, y, c)

    def show(self):
        self.i2c.writevto(self.addr, [b"\x40", self.buffer])
        path = os.getenv("FAKE_OLED")
        if path:
            with open(path, "w") as f:
                f.write("\n".join(self.texts))
        self.texts = []
