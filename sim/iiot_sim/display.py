"""Read a simulated SSD1306's picture (the dump the display model writes) as pixels and text.

The model writes GDDRAM (8 pages x 128 columns, LSB at the top of each page) and its
state. `DisplayImage.text_lines()` reads back text drawn with MicroPython's built-in 8x8
font (framebuf.text), which is what the firmware uses through the ssd1306 driver.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .paths import micropython_binary

WIDTH = 128
HEIGHT = 64
_FONT_SCRIPT = """
import framebuf
b = bytearray(8)
f = framebuf.FrameBuffer(b, 8, 8, framebuf.MONO_VLSB)
out = []
for c in range(32, 127):
    f.fill(0)
    f.text(chr(c), 0, 0, 1)
    out.append(bytes(b).hex())
print(",".join(out))
"""


@functools.lru_cache(maxsize=1)
def font_glyphs() -> dict[bytes, str]:
    """MicroPython's 8x8 font: column bytes (VLSB) -> character, from the real framebuf."""
    out = subprocess.run(
        [micropython_binary(), "-c", _FONT_SCRIPT], capture_output=True, text=True, check=True
    ).stdout.strip()
    glyphs: dict[bytes, str] = {}
    for i, hexed in enumerate(out.split(",")):
        glyphs.setdefault(bytes.fromhex(hexed), chr(32 + i))
    return glyphs


@dataclass(frozen=True)
class DisplayImage:
    ram: bytes  # 1024 bytes of GDDRAM
    on: bool
    inverted: bool
    contrast: int
    seg_remap: bool
    com_remap: bool

    @classmethod
    def load(cls, path: Path) -> DisplayImage:
        data = Path(path).read_bytes()
        if len(data) < 1029:
            raise ValueError(f"{path}: not a display dump ({len(data)} bytes)")
        on, inv, contrast, seg, com = data[1024:1029]
        return cls(data[:1024], bool(on), bool(inv), contrast, bool(seg), bool(com))

    def ram_pixel(self, col: int, row: int) -> bool:
        return bool(self.ram[(row // 8) * WIDTH + col] >> (row % 8) & 1)

    def pixel(self, x: int, y: int) -> bool:
        """Whether the pixel at (x, y) of the glass is lit (orientation and inversion applied)."""
        if not self.on:
            return False
        # The usual module wiring shows the picture upright with SEG remap and COM remap on.
        col = x if self.seg_remap else WIDTH - 1 - x
        row = y if self.com_remap else HEIGHT - 1 - y
        return self.ram_pixel(col, row) != self.inverted

    def ascii(self) -> str:
        return "\n".join(
            "".join("#" if self.pixel(x, y) else "." for x in range(WIDTH)) for y in range(HEIGHT)
        )

    def blank(self) -> bool:
        return not any(self.pixel(x, y) for y in range(HEIGHT) for x in range(WIDTH))

    def _cell(self, x: int, y: int) -> bytes:
        cols = bytearray(8)
        for dx in range(8):
            v = 0
            for dy in range(8):
                if 0 <= y + dy < HEIGHT and self.pixel(x + dx, y + dy):
                    v |= 1 << dy
            cols[dx] = v
        return bytes(cols)

    def text_lines(self) -> list[tuple[int, int, str]]:
        """Text drawn with the 8x8 font: (x, y, text) per line, top to bottom."""
        glyphs = font_glyphs()
        found: list[tuple[int, int, str]] = []
        for y in range(HEIGHT - 7):
            best: tuple[int, int, str] | None = None
            for x0 in range(8):
                chars = []
                for cx in range(x0, WIDTH - 7, 8):
                    chars.append(glyphs.get(self._cell(cx, y), "\0"))
                text = "".join(chars)
                stripped = text.strip(" \0")
                known = sum(1 for c in stripped if c not in " \0")
                if known == 0:
                    continue
                start = len(text) - len(text.lstrip(" \0"))
                candidate = (known, -x0, stripped.replace("\0", "?"))
                if best is None or candidate[:2] > best[:2]:
                    best = (known, -x0, candidate[2])
                    best_x = x0 + 8 * start
            if best is not None:
                found.append((best_x, y, best[2]))
        # A glyph row also matches one pixel higher/lower only by accident; keep the line
        # with the most recognised characters among neighbours.
        result: list[tuple[int, int, str]] = []
        for item in found:
            if result and item[1] - result[-1][1] < 8:
                if _score(item[2]) > _score(result[-1][2]):
                    result[-1] = item
                continue
            result.append(item)
        return result

    def text(self) -> str:
        return "\n".join(t for _, _, t in self.text_lines())


def _score(text: str) -> int:
    return sum(1 for c in text if c not in " ?")
