"""The diffraction pattern of the current probe position, with contrast and zoom."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ghosttui.render.cells import fit_image
from ghosttui.render.colour import CONTRASTS, Contrast
from ghosttui.tui.widgets.cell_canvas import CellCanvas

ZOOMS = (1, 2, 4)
HIGH_PERCENTILES = (99.0, 99.5, 99.7, 99.9, 100.0)


def zoom_window(image: np.ndarray, zoom: int, centre: tuple[float, float] | None) -> np.ndarray:
    """The central 1/zoom of the image around ``centre`` (default: the image centre)."""
    if zoom <= 1:
        return image
    h, w = image.shape
    cy, cx = centre if centre is not None else (h / 2, w / 2)
    half_h, half_w = max(1, int(h / zoom / 2)), max(1, int(w / zoom / 2))
    top = int(min(max(cy - half_h, 0), h - 2 * half_h))
    left = int(min(max(cx - half_w, 0), w - 2 * half_w))
    return image[top : top + 2 * half_h, left : left + 2 * half_w]


class PatternView(Vertical):
    """Title line and the pattern; ``show`` replaces the pattern, keys change contrast and zoom."""

    def __init__(self, mode: str = "halfblock", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.render_mode = mode
        self.contrast = Contrast(mode="linear", low=1.0, high=99.7)
        self.zoom = 1
        self.centre: tuple[float, float] | None = None
        self._image: np.ndarray | None = None
        self._title = ""
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

    def show(
        self, image: np.ndarray | None, title: str, centre: tuple[float, float] | None = None
    ) -> None:
        self._image = image
        self._title = title
        self.centre = centre
        self._redraw()

    def _settings_text(self) -> str:
        c = self.contrast
        text = f"{c.mode}"
        if c.mode == "gamma":
            text += f" {c.gamma:g}"
        return f"[dim]{text}, clip {c.low:g}-{c.high:g}%, zoom {self.zoom}x[/]"

    def _redraw(self) -> None:
        self.query_one("#pattern-title", Static).update(f"{self._title}  {self._settings_text()}")
        image = self._image
        if image is None:
            if self.canvas is not None:
                self.canvas.set_painter(None)
            return
        window = zoom_window(image, self.zoom, self.centre)
        if self._graphics is not None:
            from PIL import Image as PILImage

            self._graphics.image = PILImage.fromarray(self.contrast.to_rgb(window))
            return
        contrast = self.contrast

        def paint(cols: int, rows: int) -> np.ndarray:
            return contrast.to_rgb(fit_image(window, cols, rows))

        assert self.canvas is not None
        self.canvas.set_painter(paint)

    def cycle_contrast(self) -> str:
        modes = CONTRASTS
        self.contrast = replace(
            self.contrast, mode=modes[(modes.index(self.contrast.mode) + 1) % len(modes)]
        )
        self._redraw()
        return self.contrast.mode

    def cycle_clip(self) -> float:
        highs = HIGH_PERCENTILES
        nearest = min(range(len(highs)), key=lambda i: abs(highs[i] - self.contrast.high))
        self.contrast = replace(self.contrast, high=highs[(nearest + 1) % len(highs)])
        self._redraw()
        return self.contrast.high

    def cycle_zoom(self) -> int:
        self.zoom = ZOOMS[(ZOOMS.index(self.zoom) + 1) % len(ZOOMS)]
        self._redraw()
        return self.zoom

    def export_rgb(self) -> np.ndarray | None:
        """The pattern as shown (contrast and zoom applied), full resolution, for an external viewer."""
        if self._image is None:
            return None
        return self.contrast.to_rgb(zoom_window(self._image, self.zoom, self.centre))
