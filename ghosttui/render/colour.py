"""Colour maps and contrast for diffraction patterns and real-space maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The paper's colours: red = none, green = vertical, blue = horizontal.
PAPER_COLOURS = {"horizontal": "#0000ff", "vertical": "#00ff00", "none": "#ff0000"}
# Distinct colours for further classes (up to 9 in all; chosen in session/settings.py).
EXTRA_COLOURS = ["#ffb000", "#ff00ff", "#00e5ff", "#ffffff", "#8d6e63", "#9e9e9e", "#7e57c2"]

CONTRASTS = ("linear", "log", "gamma")


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def _inferno_lut() -> np.ndarray:
    # anchor points of matplotlib's inferno, interpolated to 256 entries
    anchors = np.array(
        [
            [0, 0, 4],
            [40, 11, 84],
            [101, 21, 110],
            [159, 42, 99],
            [212, 72, 66],
            [245, 125, 21],
            [250, 193, 39],
            [252, 255, 164],
        ],
        float,
    )
    x = np.linspace(0, 1, len(anchors))
    t = np.linspace(0, 1, 256)
    return np.stack([np.interp(t, x, anchors[:, i]) for i in range(3)], 1).astype(np.uint8)


LUTS = {
    "gray": np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1),
    "inferno": _inferno_lut(),
}


@dataclass(frozen=True)
class Contrast:
    """How pattern intensities map to brightness."""

    mode: str = "log"  # log | linear | gamma
    gamma: float = 0.5
    low: float = 1.0  # percentile mapped to black
    high: float = 99.7  # percentile mapped to white
    colormap: str = "gray"

    def apply(self, image: np.ndarray) -> np.ndarray:
        """Float image -> values in [0, 1]."""
        v = np.asarray(image, dtype=np.float32)
        if self.mode == "log":
            v = np.log1p(np.maximum(v - v.min(), 0))
        lo, hi = np.percentile(v, [self.low, self.high])
        if hi <= lo:
            hi = lo + 1e-6
        v = np.clip((v - lo) / (hi - lo), 0.0, 1.0)
        if self.mode == "gamma":
            v = v**self.gamma
        return v

    def to_rgb(self, image: np.ndarray) -> np.ndarray:
        return colourise(self.apply(image), self.colormap)


def colourise(unit: np.ndarray, colormap: str = "gray") -> np.ndarray:
    """Values in [0, 1] -> (H, W, 3) uint8 through a lookup table."""
    lut = LUTS[colormap]
    unit = np.nan_to_num(np.asarray(unit, dtype=np.float32), nan=0.0)  # NaN: the darkest colour
    return lut[np.clip(unit * 255 + 0.5, 0, 255).astype(np.uint8)]


def class_map_rgb(
    classes: np.ndarray, colours: list[str], confidence: np.ndarray | None = None
) -> np.ndarray:
    """(Rx, Ry) class indices (-1 = none) -> RGB, dimmed by confidence when given."""
    table = np.array([hex_to_rgb(c) for c in colours] + [(0, 0, 0)], np.float32)
    rgb = table[np.where(classes < 0, len(colours), classes)]
    if confidence is not None:
        rgb = rgb * np.clip(confidence, 0, 1)[..., None]
    return rgb.astype(np.uint8)


def readable_rgb(colour: str, floor: float = 0.2) -> tuple[int, int, int]:
    """``colour`` lightened (towards white, hue kept) until its relative luminance reaches
    ``floor``, so that pure blue and other dark class colours stay visible on a dark
    terminal background. Lighter colours are returned unchanged."""
    rgb = np.array(hex_to_rgb(colour), np.float64) / 255.0

    def luminance(c: np.ndarray) -> float:
        linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
        return float(linear @ np.array([0.2126, 0.7152, 0.0722]))

    mix = 0.0
    while luminance(rgb + (1 - rgb) * mix) < floor and mix < 1.0:
        mix += 0.02
    out = np.round((rgb + (1 - rgb) * mix) * 255).astype(int)
    return int(out[0]), int(out[1]), int(out[2])


def readable_hex(colour: str, floor: float = 0.2) -> str:
    """:func:`readable_rgb` as ``#rrggbb`` (for rich text styles)."""
    return "#{:02x}{:02x}{:02x}".format(*readable_rgb(colour, floor))
