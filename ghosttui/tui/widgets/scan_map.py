"""The real-space map of the scan: virtual images, labels, the predicted domain map, the cursor."""

from __future__ import annotations

import numpy as np
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

from ghosttui.render.cells import resample_nearest
from ghosttui.render.colour import (
    Contrast,
    class_map_rgb,
    colourise,
    readable_hex,
    readable_rgb,
)
from ghosttui.tui.widgets.cell_canvas import CellCanvas

LAYERS = ("labels", "prediction", "confidence", "adf")
LAYER_TITLES = {
    "labels": "vBF + labels",
    "prediction": "domain map (brightness = confidence)",
    "confidence": "confidence",
    "adf": "ADF + labels",
}
CURSOR = np.array([255, 255, 0], np.uint8)
ZOOMS = ("fit", "1:1", "2:1")


class ScanMap(Vertical):
    """Layers cycle with a key; labelled positions are marked in their class colour.

    When the first model's predictions arrive the domain map is shown. Posts
    :class:`ScanMap.ViewChanged` whenever the layer or zoom changes, so that the
    app can remember them.
    """

    DEFAULT_CSS = """
    ScanMap > #map-title {
        height: 1;
        color: $text-muted;
    }
    ScanMap > #map-canvas {
        height: 1fr;
        width: 1fr;
    }
    """

    class ViewChanged(Message):
        def __init__(self, layer: str, zoom: str) -> None:
            super().__init__()
            self.layer, self.zoom = layer, zoom

    def __init__(self, mode: str = "halfblock", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cell_mode = mode
        self.map_layer = "labels"
        self.zoom = "fit"
        self.vbf: np.ndarray | None = None
        self.adf: np.ndarray | None = None
        self.colours: list[str] = []
        self.classes: list[str] = []
        self.labels: dict[tuple[int, int], int] = {}
        self.probabilities: np.ndarray | None = None
        self.cursor: tuple[int, int] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="map-title")
        yield CellCanvas("ascii" if self.cell_mode == "ascii" else "halfblock", id="map-canvas")

    def configure(
        self, vbf: np.ndarray, adf: np.ndarray, classes: list[str], colours: list[str]
    ) -> None:
        self.vbf, self.adf, self.classes, self.colours = vbf, adf, classes, colours
        self.redraw()

    def update_state(
        self,
        labels: dict[tuple[int, int], int] | None = None,
        probabilities: np.ndarray | None = None,
        cursor: tuple[int, int] | None = None,
    ) -> None:
        if labels is not None:
            self.labels = labels
        if probabilities is not None:
            first = self.probabilities is None
            self.probabilities = probabilities
            if first and self.map_layer in ("labels", "adf"):
                self._set(layer="prediction")
        self.cursor = cursor
        self.redraw()

    def restore(
        self, layer: str | None, zoom: str | None, probabilities: np.ndarray | None = None
    ) -> None:
        """Start from a remembered layer and zoom, with the predictions the session already has
        (a model layer only once a model exists; with a model and nothing remembered, the
        domain map)."""
        if probabilities is not None:
            self.probabilities = probabilities
            if layer is None:
                layer = "prediction"
        if zoom in ZOOMS:
            self.zoom = zoom
        if layer in LAYERS and (
            layer not in ("prediction", "confidence") or self.probabilities is not None
        ):
            self.map_layer = layer
        self.redraw()

    def _set(self, layer: str | None = None, zoom: str | None = None) -> None:
        self.map_layer = layer or self.map_layer
        self.zoom = zoom or self.zoom
        self.post_message(self.ViewChanged(self.map_layer, self.zoom))

    def cycle_layer(self) -> str:
        layers = [
            lay
            for lay in LAYERS
            if lay not in ("prediction", "confidence") or self.probabilities is not None
        ]
        index = layers.index(self.map_layer) if self.map_layer in layers else -1
        self._set(layer=layers[(index + 1) % len(layers)])
        self.redraw()
        return self.map_layer

    def cycle_zoom(self) -> str:
        self._set(zoom=ZOOMS[(ZOOMS.index(self.zoom) + 1) % len(ZOOMS)])
        self.redraw()
        return self.zoom

    def _base(self) -> np.ndarray:
        """Full-resolution (Rx, Ry, 3) picture of the current layer, without marks."""
        assert self.vbf is not None
        if self.map_layer in ("prediction", "confidence") and self.probabilities is not None:
            confidence = self.probabilities.max(-1)
            if self.map_layer == "prediction":
                chance = 1.0 / self.probabilities.shape[-1]
                brightness = 0.35 + 0.65 * np.clip((confidence - chance) / (1 - chance), 0, 1)
                colours = [readable_hex(c) for c in self.colours]
                return class_map_rgb(self.probabilities.argmax(-1), colours, brightness)
            return colourise(confidence, "inferno")
        image = self.adf if self.map_layer == "adf" and self.adf is not None else self.vbf
        grey = Contrast(mode="linear", low=0.5, high=99.5).apply(image)
        return colourise(0.15 + 0.6 * grey)

    def _window(self, cols: int, rows: int) -> tuple[slice, slice, int]:
        """Scan window shown and pixels per position, for the zoom level."""
        n_rx, n_ry = self.vbf.shape
        if self.zoom == "fit":
            return slice(0, n_rx), slice(0, n_ry), 0
        per = 1 if self.zoom == "1:1" else 2
        show_rx, show_ry = max(1, 2 * rows // per), max(1, cols // per)
        crx, cry = self.cursor or (n_rx // 2, n_ry // 2)
        top = int(min(max(crx - show_rx // 2, 0), max(0, n_rx - show_rx)))
        left = int(min(max(cry - show_ry // 2, 0), max(0, n_ry - show_ry)))
        return slice(top, top + show_rx), slice(left, left + show_ry), per

    def paint(self, cols: int, rows: int) -> np.ndarray | None:
        if self.vbf is None:
            return None
        sx, sy, per = self._window(cols, rows)
        base = self._base()[sx, sy]
        h, w = base.shape[:2]
        if per:
            height, width = h * per, w * per
        else:
            scale = min(2 * rows / h, cols / w)
            height, width = max(2, int(h * scale)), max(1, int(w * scale))
        picture = resample_nearest(base, height, width).copy()

        def pixel(rx: int, ry: int) -> tuple[int, int] | None:
            r, c = rx - sx.start, ry - sy.start
            if not (0 <= r < h and 0 <= c < w):
                return None
            return min(height - 1, int((r + 0.5) * height / h)), min(
                width - 1, int((c + 0.5) * width / w)
            )

        if self.map_layer in ("labels", "adf", "prediction"):
            table = [np.array(readable_rgb(c), np.uint8) for c in self.colours]
            for (rx, ry), cls in self.labels.items():
                at = pixel(rx, ry)
                if at is not None:
                    picture[at] = table[cls] if self.map_layer != "prediction" else 255
        if self.cursor is not None:
            at = pixel(*self.cursor)
            if at is not None:
                picture[at] = CURSOR
        return picture

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        title = LAYER_TITLES[self.map_layer]
        if self.cursor is not None:
            title += f"  [dim]cursor ({self.cursor[0]}, {self.cursor[1]})[/]"
        if self.zoom != "fit":
            title += f"  [dim]{self.zoom}[/]"
        self.query_one("#map-title", Static).update(title, layout=False)  # one fixed line
        self.query_one(CellCanvas).set_painter(self.paint)
