"""Flat scan order over 4D (Rx, Ry, ...) arrays.

Patterns are numbered row-major: index = rx * Ry + ry. A flat range maps to
at most a partial row, a run of whole rows and another partial row; these
helpers turn a range into those pieces so that a 4D HDF5 dataset or memory map
is read or written in as few slices as possible.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np


def row_pieces(start: int, stop: int, n_ry: int) -> Iterator[tuple[Any, int]]:
    """Yield ``(key, count)``: a 4D index for each piece of ``start..stop``.

    ``key`` is ``slice(rx0, rx1)`` for whole rows (``count`` patterns) or
    ``(rx, slice(ry0, ry1))`` for part of a row.
    """
    index = start
    while index < stop:
        rx, ry = divmod(index, n_ry)
        if ry == 0 and stop - index >= n_ry:
            rows = (stop - index) // n_ry
            yield slice(rx, rx + rows), rows * n_ry
            index += rows * n_ry
        else:
            end = min(n_ry, ry + stop - index)
            yield (rx, slice(ry, end)), end - ry
            index += end - ry


def read_flat(source: Any, start: int, stop: int, n_ry: int) -> np.ndarray:
    """Patterns ``start..stop`` of a 4D array-like as one (n, ...) array."""
    pieces = []
    for key, count in row_pieces(start, stop, n_ry):
        pieces.append(np.asarray(source[key]).reshape(count, *source.shape[2:]))
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate(pieces) if pieces else np.empty((0, *source.shape[2:]), source.dtype)


def write_flat(target: Any, start: int, values: np.ndarray, n_ry: int) -> None:
    """Write ``values`` (n, ...) at flat positions ``start..start+n`` of a 4D array-like."""
    done = 0
    for key, count in row_pieces(start, start + len(values), n_ry):
        chunk = values[done : done + count]
        if isinstance(key, slice):
            chunk = chunk.reshape(count // n_ry, n_ry, *values.shape[1:])
        target[key] = chunk
        done += count
