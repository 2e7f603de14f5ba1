"""A 4D-STEM scan read lazily from its file, in py4DSTEM's (Rx, Ry, Qx, Qy) order."""

from __future__ import annotations

import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ghosttui.data.layout import row_pieces
from ghosttui.errors import DataError


def clean_units(text: str | None) -> str | None:
    """Units as files write them, made plain: Prismatic's ``[n_m]`` and ``[n_m^-1]`` become
    ``nm`` and ``nm^-1``; empty text becomes None."""
    if text is None:
        return None
    units = text.strip()
    if units.startswith("[") and units.endswith("]"):
        units = units[1:-1].strip()
    units = units.replace("_", "")
    return units or None


@dataclass(frozen=True)
class Calibration:
    """Pixel sizes of the scan (R) and the detector (Q), when the file has them."""

    r_pixel_size: float | None = None
    r_units: str | None = None
    q_pixel_size: float | None = None
    q_units: str | None = None

    @property
    def known(self) -> bool:
        return self.r_pixel_size is not None or self.q_pixel_size is not None

    def describe(self) -> str:
        parts = []
        if self.r_pixel_size is not None:
            parts.append(f"R {self.r_pixel_size:.4g} {self.r_units or ''}/px".replace(" /", "/"))
        if self.q_pixel_size is not None:
            parts.append(f"Q {self.q_pixel_size:.4g} {self.q_units or ''}/px".replace(" /", "/"))
        return ", ".join(parts) if parts else "none in file"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _find_mmap(array: Any) -> mmap.mmap | None:
    """The mmap behind a (possibly reshaped or sliced) numpy memmap, if any."""
    node = array
    for _ in range(64):
        if node is None:
            return None
        if isinstance(node, mmap.mmap):
            return node
        found = getattr(node, "_mmap", None)
        if isinstance(found, mmap.mmap):
            return found
        node = getattr(node, "base", None)
    return None


class Scan:
    """Lazy access to the patterns of a scan.

    ``source`` is anything sliceable that returns numpy arrays: a numpy memmap,
    an h5py dataset, or a py4DSTEM memory map. When ``flat`` is true the
    source is a stack (N, Qx, Qy) in scan order (row-major over Rx, Ry);
    otherwise it is 4D (Rx, Ry, Qx, Qy). Reads always return copies in the
    source's dtype; memory-mapped pages are released after each read so that
    streaming a terabyte file keeps the resident size bounded.
    """

    def __init__(
        self,
        path: str | Path,
        format: str,
        source: Any,
        shape: tuple[int, int, int, int],
        *,
        flat: bool,
        calibration: Calibration | None = None,
        dataset: str | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.format = format
        self.shape = tuple(int(s) for s in shape)
        self.dataset = dataset
        self.calibration = calibration or Calibration()
        self._source = source
        self._flat = flat
        self._on_close = on_close
        self._mmap = _find_mmap(source)
        self.dtype = np.dtype(source.dtype)
        if self.dtype.kind not in "uif" and self.dtype.kind != "b":
            raise DataError(f"holds {self.dtype} data; need integer or float counts", self.path)

    # -- geometry -------------------------------------------------------------
    @property
    def scan_shape(self) -> tuple[int, int]:
        return self.shape[0], self.shape[1]

    @property
    def detector_shape(self) -> tuple[int, int]:
        return self.shape[2], self.shape[3]

    @property
    def n_patterns(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def nbytes(self) -> int:
        return self.n_patterns * self.shape[2] * self.shape[3] * self.dtype.itemsize

    def position(self, index: int) -> tuple[int, int]:
        return divmod(int(index), self.shape[1])

    # -- reading --------------------------------------------------------------
    def _slice(self, key: Any) -> np.ndarray:
        try:
            return np.array(self._source[key], copy=True)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            raise DataError(f"read failed ({exc})", self.path) from exc

    def read(self, start: int, stop: int) -> np.ndarray:
        """Patterns ``start..stop`` in flat scan order, shape (n, Qx, Qy)."""
        start, stop = int(start), int(stop)
        if not 0 <= start <= stop <= self.n_patterns:
            raise IndexError(f"pattern range {start}:{stop} outside 0:{self.n_patterns}")
        if self._flat:
            out = self._slice(slice(start, stop))
        else:
            pieces = [
                self._slice(key).reshape(count, *self.shape[2:])
                for key, count in row_pieces(start, stop, self.shape[1])
            ]
            out = (
                pieces[0]
                if len(pieces) == 1
                else np.concatenate(pieces)
                if pieces
                else (np.empty((0, *self.shape[2:]), self.dtype))
            )
        self.release()
        return out.reshape(stop - start, *self.shape[2:])

    def pattern(self, rx: int, ry: int) -> np.ndarray:
        """One diffraction pattern, shape (Qx, Qy)."""
        if not (0 <= rx < self.shape[0] and 0 <= ry < self.shape[1]):
            raise IndexError(f"position ({rx}, {ry}) outside scan {self.shape[:2]}")
        index = rx * self.shape[1] + ry
        return self.read(index, index + 1)[0]

    def blocks(self, block_patterns: int) -> Iterator[tuple[int, np.ndarray]]:
        """Stream the whole scan as ``(start, patterns)`` blocks."""
        for start in range(0, self.n_patterns, block_patterns):
            yield start, self.read(start, min(self.n_patterns, start + block_patterns))

    def release(self) -> None:
        """Drop memory-mapped pages from this process (they stay in the page cache)."""
        if self._mmap is not None and hasattr(self._mmap, "madvise"):
            try:
                self._mmap.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):
                self._mmap = None

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> Scan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        rx, ry, qx, qy = self.shape
        return f"{self.format} scan ({rx}, {ry}, {qx}, {qy}) {self.dtype}"
