"""Images as terminal cells: truecolor half blocks, or plain ASCII.

A half-block cell (``▀``) shows two pixels: the upper one as foreground, the
lower as background, so an image of H x W pixels takes W columns and H/2 rows.
Styles are cached per colour pair, which keeps a full redraw of a 80x44-cell
pattern to a few milliseconds.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

UPPER_HALF = "▀"
ASCII_RAMP = " .:-=+*#%@"


@lru_cache(maxsize=65536)
def _pair_style(top: int, bottom: int) -> Style:
    return Style(
        color=Color.from_rgb(top >> 16, (top >> 8) & 255, top & 255),
        bgcolor=Color.from_rgb(bottom >> 16, (bottom >> 8) & 255, bottom & 255),
    )


def _packed(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def halfblock_lines(rgb: np.ndarray) -> list[list[Segment]]:
    """(H, W, 3) uint8 -> one list of Segments per terminal row (H/2 rows).

    Runs of equal cells share one Segment; the runs are found with numpy, so the
    Python work is per run, not per cell.
    """
    if rgb.shape[0] % 2:
        rgb = np.concatenate([rgb, np.zeros_like(rgb[:1])])
    packed = _packed(rgb)
    tops, bottoms = packed[0::2], packed[1::2]
    width = packed.shape[1]
    if width == 0:
        return [[] for _ in range(tops.shape[0])]
    change = np.ones((tops.shape[0], width), bool)
    change[:, 1:] = (tops[:, 1:] != tops[:, :-1]) | (bottoms[:, 1:] != bottoms[:, :-1])
    lines = []
    for top, bottom, starts in zip(
        tops.tolist(), bottoms.tolist(), (np.flatnonzero(c).tolist() for c in change), strict=True
    ):
        ends = [*starts[1:], width]
        lines.append(
            [
                Segment(UPPER_HALF * (end - start), _pair_style(top[start], bottom[start]))
                for start, end in zip(starts, ends, strict=True)
            ]
        )
    return lines


def ascii_lines(unit: np.ndarray, style: Style | None = None) -> list[list[Segment]]:
    """Values in [0, 1] (H, W) -> ASCII art, one character per cell (no colour needed).

    Terminal cells are about twice as tall as wide, so rows are averaged in pairs.
    """
    v = np.asarray(unit, dtype=np.float32)
    if v.shape[0] % 2:
        v = np.concatenate([v, v[-1:]])
    v = 0.5 * (v[0::2] + v[1::2])
    index = np.clip((v * (len(ASCII_RAMP) - 1) + 0.5).astype(int), 0, len(ASCII_RAMP) - 1)
    chars = np.array(list(ASCII_RAMP))[index]
    return [[Segment("".join(row), style)] for row in chars]


def resample_nearest(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize (keeps single bright pixels visible when enlarging)."""
    rows = np.minimum(
        (np.arange(height) + 0.5) * image.shape[0] / height, image.shape[0] - 1
    ).astype(int)
    cols = np.minimum((np.arange(width) + 0.5) * image.shape[1] / width, image.shape[1] - 1).astype(
        int
    )
    return image[rows][:, cols]


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Shrink by averaging whole source pixels into each target pixel (faint disks keep their signal)."""
    rows = np.linspace(0, image.shape[0], height + 1).astype(int)
    cols = np.linspace(0, image.shape[1], width + 1).astype(int)
    summed = np.add.reduceat(
        np.add.reduceat(image.astype(np.float64), rows[:-1], axis=0), cols[:-1], axis=1
    )
    counts = np.diff(rows)[:, None] * np.diff(cols)[None, :]
    return summed / np.maximum(counts, 1)


def fit_image(image: np.ndarray, max_cols: int, max_rows: int) -> np.ndarray:
    """Fit a 2D image into half-block cells: integer upscaling, or area-averaged shrinking."""
    h, w = image.shape[:2]
    limit_h, limit_w = 2 * max_rows, max_cols
    if h <= limit_h and w <= limit_w:
        scale = max(1, min(limit_h // h, limit_w // w))
        return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    scale = min(limit_h / h, limit_w / w)
    return area_resize(image, max(2, int(h * scale)), max(1, int(w * scale)))


def fit_cells(shape: tuple[int, int], max_cols: int, max_rows: int) -> tuple[int, int]:
    """Pixel size (h, w) of ``shape`` fitted into max_cols x max_rows half-block cells."""
    h, w = shape
    scale = min(max_cols / w, 2 * max_rows / h)
    return max(2, int(h * scale) // 2 * 2), max(1, int(w * scale))


class CellImage:
    """A rich renderable of an RGB image in half-block cells."""

    def __init__(self, rgb: np.ndarray, max_cols: int = 60, max_rows: int = 30) -> None:
        h, w = fit_cells(rgb.shape[:2], max_cols, max_rows)
        self.lines = halfblock_lines(resample_nearest(rgb, h, w))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines:
            yield from line
            yield Segment.line()
