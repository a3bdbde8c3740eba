"""iiot-watch's screen: a header, one of three views in pages, and a key line at the bottom.

The views (overview, readings, health: ``watch_views``) are chosen with a key. The screen
is filled from the chosen one: a view too tall for the terminal is split into pages (n/p),
and a terminal with room left shows the next views too. So 80x24 stays readable and
160x50 shows more at once. The header keeps the broker's and the database's addresses and
a mosquitto_sub command for the same topics on screen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.text import Text

from .watch_state import WatchState
from .watch_views import Views, height, pack

VIEWS = ("overview", "readings", "health")


@dataclass
class Header:
    """What stays on screen above every view."""

    broker: str
    database: str | None = None
    subscribe: str | None = None  # a mosquitto_sub command that shows the same topics


class Screen:
    """The current view and page, and the renderable for a terminal of a given size."""

    def __init__(self, state: WatchState, header: Header) -> None:
        self.state = state
        self.header = header
        self.view = 0
        self.page = 0
        self.pages = 1

    def key(self, key: str) -> bool:
        """Handle one key; False means quit."""
        if key in ("q", "Q"):
            return False
        if key in ("1", "2", "3"):
            self.view, self.page = int(key) - 1, 0
        elif key == "\t":
            self.view, self.page = (self.view + 1) % len(VIEWS), 0
        elif key in ("n", " ", "right", "pgdn", "j"):
            self.page = (self.page + 1) % max(1, self.pages)
        elif key in ("p", "left", "pgup", "k"):
            self.page = (self.page - 1) % max(1, self.pages)
        return True

    def render(self, console: Console, now: float | None = None) -> RenderableType:
        """The whole screen for ``console``'s current size."""
        now = time.time() if now is None else now
        width = console.size.width
        with self.state.lock:
            top = self._header(width, now)
            avail = console.size.height - height(console, top, width) - 1  # 1: the key line
            views = Views(self.state, console)
            builders = [views.overview, views.readings, views.health]
            pages = _paginate(console, width, builders[self.view](width, avail, now), avail)
            self.pages = len(pages)
            self.page = min(self.page, self.pages - 1)
            body = list(pages[self.page])
            used = sum(height(console, b, width) for b in body)
            if self.pages == 1:  # room left: the next views, each only if it fits whole
                for step in (1, 2):
                    more = builders[(self.view + step) % len(VIEWS)](width, avail, now)
                    extra = sum(height(console, b, width) for b in more)
                    if used + extra > avail:
                        break
                    body += more
                    used += extra
        parts: list[RenderableType] = [top, *body]
        if avail > used:
            parts.append(Text("\n" * (avail - used - 1)))
        parts.append(self._footer())
        return Group(*parts)

    def _header(self, width: int, now: float) -> Text:
        """Fields packed into lines, a field never split; the subscribe command last."""
        st, hd = self.state, self.header
        fields = [
            Text.assemble(("iiot-watch", "bold"), time.strftime(" %H:%M:%S", time.localtime(now)))
        ]
        link = Text.assemble("broker ", (hd.broker, "cyan"), " ")
        if st.connected:
            link.append("connected", style="green")
        else:
            link.append("not connected" + (f": {st.problem}" if st.problem else ""), "bold red")
        fields.append(link)
        if hd.database:
            fields.append(Text.assemble("database ", (hd.database, "cyan")))
        fields.append(Text(f"prefix {st.prefix}"))
        if hd.subscribe:
            fields.append(Text.assemble(("$ ", "dim"), hd.subscribe))
        return pack(fields, width)

    def _footer(self) -> Text:
        line = Text(no_wrap=True, overflow="ellipsis")
        for i, name in enumerate(VIEWS):
            line.append(f" {i + 1} {name} ", style="reverse" if i == self.view else "")
        if self.pages > 1:
            line.append(f"  n/p page {self.page + 1}/{self.pages}", style="bold yellow")
        line.append("  q quit")
        return line


def _paginate(
    console: Console, width: int, blocks: list[RenderableType], avail: int
) -> list[list[RenderableType]]:
    """Blocks packed into pages of ``avail`` lines (a block taller than a page is cut)."""
    pages: list[list[RenderableType]] = [[]]
    used = 0
    for block in blocks:
        h = height(console, block, width)
        if pages[-1] and used + h > avail:
            pages.append([])
            used = 0
        pages[-1].append(block)
        used += h
    return pages
