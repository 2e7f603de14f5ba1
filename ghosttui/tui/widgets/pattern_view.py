"""The pattern pane: the current probe position drawn by :class:`ghosttui.render.pane.PatternPane`.

The widget only places what the core draws: a three-line title (where the pattern
comes from; what the view shows; how) and the pixels, as half-block cells, ASCII, or
a sixel / kitty image at full resolution. ``ghosttui show`` writes the same pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ghosttui.render.pane import PatternPane
from ghosttui.tui.widgets.cell_canvas import CellCanvas


class PatternView(Vertical):
    """Three title lines and the pane's pixels for one position."""

    DEFAULT_CSS = """
    PatternView > #pattern-title {
        height: 3;
        color: $text-muted;
    }
    PatternView > #pattern-canvas, PatternView > #pattern-graphics {
        height: 1fr;
        width: 1fr;
    }
    """

    def __init__(self, pane: PatternPane, mode: str = "halfblock", *, id: str | None = None):
        super().__init__(id=id)
        self.pane = pane
        self.render_mode = mode
        self.position: tuple[int, int] | None = None
        self.heading = ""
        self._graphics: Any = None  # a textual-image widget for sixel / kitty

    def compose(self) -> ComposeResult:
        yield Static("", id="pattern-title")
        if self.render_mode in ("sixel", "kitty"):
            from ghosttui.tui.render_mode import graphics_widget

            self._graphics = graphics_widget(self.render_mode)
            yield self._graphics
        else:
            yield CellCanvas(
                "ascii" if self.render_mode == "ascii" else "halfblock", id="pattern-canvas"
            )

    @property
    def canvas(self) -> CellCanvas | None:
        canvases = self.query(CellCanvas)
        return canvases.first() if canvases else None

    def show(self, position: tuple[int, int] | None, heading: str) -> None:
        """Draw ``position`` (None: nothing) under ``heading`` (rich markup)."""
        self.position = position
        self.heading = heading
        self.redraw()

    def redraw(self) -> None:
        title = self.query_one("#pattern-title", Static)
        position = self.position
        if position is None:
            title.update(self.heading, layout=False)  # a fixed 3 lines: no re-layout
            if self.canvas is not None:
                self.canvas.set_painter(None)
            return
        what, how = self.pane.caption(*position)
        title.update(
            Text.from_markup(self.heading).append(f"\n{what}\n{how}", style="dim"), layout=False
        )
        if self._graphics is not None:
            from PIL import Image as PILImage

            self._graphics.image = PILImage.fromarray(self.pane.draw(*position, wait=False).rgb)
            return
        pane = self.pane

        def paint(cols: int, rows: int) -> np.ndarray:
            return pane.draw(*position, 2 * rows, cols, wait=False).rgb

        assert self.canvas is not None
        self.canvas.set_painter(paint)

    def export_rgb(self) -> np.ndarray | None:
        """The pane at full resolution (for an external viewer)."""
        if self.position is None:
            return None
        return self.pane.draw(*self.position).rgb
