"""Probe-position neighbourhoods: the k x k block of scan positions around a position.

Domains are contiguous, so the patterns around a position are, almost always, more
patterns of the same class: their mean is that class's pattern with less noise. The
pattern pane averages them for the eye (``--average``), and the linear learner fits
on them (``[model] train_average``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def neighbourhood(rx: int, ry: int, size: int, scan_shape: tuple[int, int]) -> tuple[slice, slice]:
    """The ``size`` x ``size`` block of positions centred on (rx, ry), cut at the scan's edges."""
    half = size // 2
    n_rx, n_ry = scan_shape
    return (
        slice(max(0, rx - half), min(n_rx, rx + half + 1)),
        slice(max(0, ry - half), min(n_ry, ry + half + 1)),
    )


def neighbourhood_mean(
    block: np.ndarray,
    rows: slice,
    cols: slice,
    centre: tuple[int, int],
    excluded: np.ndarray | None = None,
) -> tuple[np.ndarray, int]:
    """The mean of ``block`` (the patterns of ``rows`` x ``cols``, row-major) and how many
    positions it averages, leaving out positions ``excluded`` marks ((Rx, Ry) bool) except
    the ``centre`` itself."""
    if excluded is None:
        return block.mean(0), len(block)
    keep = ~excluded[rows, cols].ravel()
    keep[(centre[0] - rows.start) * (cols.stop - cols.start) + centre[1] - cols.start] = True
    return block[keep].mean(0), int(keep.sum())


class Neighbourhoods:
    """The ``size`` x ``size`` blocks of model inputs around a set of positions, read once.

    ``cache``: anything with ``scan_shape`` and ``window(rows, cols)`` (a PatternCache).
    """

    def __init__(self, cache: Any, positions: np.ndarray, size: int) -> None:
        if size < 1 or size % 2 == 0:
            raise ValueError(f"a neighbourhood is an odd number of positions wide (got {size})")
        self.positions = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
        self.size = size
        self.scan_shape = tuple(cache.scan_shape)
        self._slices = [
            neighbourhood(int(rx), int(ry), size, self.scan_shape) for rx, ry in self.positions
        ]
        self._blocks = [cache.window(rows, cols) for rows, cols in self._slices]

    def means(self, index: np.ndarray, excluded: np.ndarray | None = None) -> np.ndarray:
        """(len(index), S, S) means around ``positions[index]``; ``excluded``: (Rx, Ry) bool
        map of positions left out of every mean but their own."""
        out = [
            neighbourhood_mean(
                self._blocks[i], *self._slices[i], tuple(self.positions[i]), excluded
            )[0]
            for i in np.asarray(index, dtype=np.int64)
        ]
        if not out:
            return np.zeros(
                (0, *self._blocks[0].shape[1:]) if self._blocks else (0, 0, 0), np.float32
            )
        return np.stack(out).astype(np.float32, copy=False)
