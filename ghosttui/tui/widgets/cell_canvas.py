"""A widget that paints an RGB image into terminal cells (half blocks or ASCII).

The image comes from a *painter*, a function of the canvas size in cells that
returns an (H, W, 3) uint8 array; the canvas calls it when its content or size
changes and caches the rows of segments, so scrolling and redraws are cheap.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from ghosttui.render.cells import ascii_lines, halfblock_lines

Painter = Callable[[int, int], np.ndarray | None]


class CellCanvas(Widget):
    """Draws whatever its painter returns, centred, in ``halfblock`` or ``ascii`` cells."""

    def __init__(
        self, mode: str = "halfblock", *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.cell_mode = mode
        self._painter: Painter | None = None
        self._lines: list[list[Segment]] | None = None
        self._offset = (0, 0)
        self.generation = 0  # bumps on every new picture
        self.drawn_generation = -1  # the generation whose last line was rendered

    def set_painter(self, painter: Painter | None) -> None:
        self._painter = painter
        self._lines = None
        self.generation += 1
        self.refresh()

    def on_resize(self) -> None:
        self._lines = None
        self.refresh()

    def _build(self) -> None:
        width, height = self.size
        self._lines = []
        if self._painter is None or width < 1 or height < 1:
            return
        rgb = self._painter(width, height)
        if rgb is None or rgb.size == 0:
            return
        if self.cell_mode == "ascii":
            unit = rgb.astype(np.float32).mean(-1) / 255.0
            self._lines = ascii_lines(unit, Style(color="white"))
            cols = unit.shape[1]
        else:
            self._lines = halfblock_lines(rgb)
            cols = rgb.shape[1]
        self._offset = (max(0, (width - cols) // 2), max(0, (height - len(self._lines)) // 2))

    def render_line(self, y: int) -> Strip:
        if self._lines is None:
            self._build()
        assert self._lines is not None
        width = self.size.width
        row = y - self._offset[1]
        if 0 <= row < len(self._lines):
            if row == len(self._lines) - 1:
                self.drawn_generation = self.generation
            pad = Segment(" " * self._offset[0])
            return Strip([pad, *self._lines[row]]).adjust_cell_length(width)
        if row == len(self._lines) and not self._lines:
            self.drawn_generation = self.generation
        return Strip.blank(width)
