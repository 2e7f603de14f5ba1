"""Where the pattern pane's patterns come from, centred and ready for a view.

Two resolutions of the same scan:

* :class:`ModelInputs`: the cache's model inputs (S x S, pooled, log, normalised:
  exactly what the model sees);
* :class:`DetectorFrames`: the scan's detector frames at full resolution (the
  native zoom), prepared like the model inputs (crop, hot pixels repaired, the
  same intensity transform and robust normalisation) but not pooled.

Both give blocks of positions, each pattern shifted so that its direct beam sits
on one grid point (see :meth:`PatternSource.beams`), and the
scan's mean pattern, computed once from at most ``limit`` positions spread over
the scan.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from ghosttui.patterns.symmetry import model_input_centre
from ghosttui.render.views import beam_centres, centre_on, descan_design, fit_descan

MEAN_INPUTS = 4096  # model inputs averaged for the scan mean (evenly spread when more)
MEAN_FRAMES = 256  # detector frames averaged for the scan mean


class PatternSource:
    """Patterns of one scan at one resolution (subclasses read them)."""

    label = ""
    mean_limit = MEAN_INPUTS

    def __init__(
        self,
        shape: tuple[int, int],
        scan_shape: tuple[int, int],
        centre: tuple[float, float],
        radius: float,
    ) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.scan_shape = (int(scan_shape[0]), int(scan_shape[1]))
        self.centre = (float(centre[0]), float(centre[1]))  # the scan's mean beam centre
        self.radius = float(radius)  # the direct beam's radius, pixels
        self._means: dict[str, np.ndarray] = {}
        self._descan: np.ndarray | None = None
        self._lock = threading.Lock()
        self._descan_lock = threading.Lock()

    # -- reading (subclasses) -------------------------------------------------------------
    def block(self, rows: slice, cols: slice) -> np.ndarray:
        """(n, H, W) float32 patterns of the positions ``rows`` x ``cols``, row-major."""
        raise NotImplementedError

    def gather(self, positions: np.ndarray) -> np.ndarray:
        """(n, H, W) float32 patterns at (n, 2) positions, in the given order."""
        raise NotImplementedError

    # -- derived ------------------------------------------------------------------------------
    def beams(self, stack: np.ndarray, positions: np.ndarray, centring: str) -> np.ndarray:
        """(n, 2) where the direct beam of each pattern is, for a centring:

        * ``descan``: on the smooth surface fitted to the beam centres measured over the
          scan (the descan error and drift, without what varies from domain to domain:
          a polar field that deflects the beam is signal, not drift);
        * ``pattern``: each pattern's own beam centre of mass;
        * ``scan``: the scan's mean beam centre, for every pattern.
        """
        n = len(stack)
        if centring == "pattern":
            return beam_centres(stack, self.centre, self.radius)
        if centring == "scan":
            return np.tile(np.asarray(self.centre, np.float64), (n, 1))
        if centring == "descan":
            positions = np.asarray(positions, np.float64).reshape(-1, 2)
            return descan_design(positions, self.scan_shape) @ self.descan()
        raise ValueError(f"unknown centring {centring!r}")

    def has_descan(self) -> bool:
        return self._descan is not None

    def has_mean(self, centring: str) -> bool:
        return centring in self._means

    def descan(self) -> np.ndarray:
        """The fitted beam-centre surface (computed once; thread-safe)."""
        with self._descan_lock:
            if self._descan is None:
                where, found = [], []
                for positions, stack in self.sample():
                    where.append(positions)
                    found.append(beam_centres(stack, self.centre, self.radius))
                self._descan = fit_descan(
                    np.concatenate(where), np.concatenate(found), self.scan_shape
                )
            return self._descan

    def sample(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The patterns at :meth:`mean_positions`, as (positions, patterns) chunks."""
        positions = self.mean_positions()
        for start in range(0, len(positions), 512):
            chunk = positions[start : start + 512]
            yield chunk, self.gather(chunk)

    def centred(self, stack: np.ndarray, centring: str, positions: np.ndarray) -> np.ndarray:
        """``stack`` shifted so that every beam sits on the grid centre; ``positions`` (n, 2)
        are where in the scan each pattern (or averaged block) was taken."""
        return centre_on(stack, self.beams(stack, positions, centring), self.centre)

    def centred_block(self, rows: slice, cols: slice, centring: str) -> np.ndarray:
        positions = np.stack(np.mgrid[rows, cols], -1).reshape(-1, 2)
        return self.centred(self.block(rows, cols), centring, positions)

    def centred_gather(self, positions: np.ndarray, centring: str) -> np.ndarray:
        return self.centred(self.gather(positions), centring, positions)

    def mean_positions(self) -> np.ndarray:
        """(n, 2) positions the scan mean is taken over: every one, or ``mean_limit`` spread
        evenly in scan order."""
        n_rx, n_ry = self.scan_shape
        total = n_rx * n_ry
        flat = (
            np.arange(total)
            if total <= self.mean_limit
            else np.unique(np.linspace(0, total - 1, self.mean_limit).round().astype(np.int64))
        )
        return np.stack(np.divmod(flat, n_ry), 1)

    def scan_mean(self, centring: str) -> np.ndarray:
        """The mean of the centred patterns (computed once per centring; thread-safe)."""
        if centring == "descan":
            self.descan()  # outside the lock below: it reads the same sample
        with self._lock:
            if centring not in self._means:
                total = np.zeros(self.shape, np.float64)
                count = 0
                for positions, stack in self.sample():
                    total += self.centred(stack, centring, positions).sum(0, dtype=np.float64)
                    count += len(stack)
                self._means[centring] = (total / max(1, count)).astype(np.float32)
            return self._means[centring]


class ModelInputs(PatternSource):
    """The pattern cache's model inputs."""

    def __init__(self, cache: Any) -> None:
        size = cache.size
        radius = cache.beam_radius * size / cache.detector_shape[0]
        super().__init__((size, size), cache.scan_shape, model_input_centre(cache), radius)
        self.cache = cache
        self.label = f"model input {size}x{size}"

    def block(self, rows: slice, cols: slice) -> np.ndarray:
        return self.cache.window(rows, cols)

    def gather(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, np.int64).reshape(-1, 2)
        if len(positions) == 0:
            return np.zeros((0, *self.shape), np.float32)
        return self.cache.gather(positions)

    def mean_positions(self) -> np.ndarray:
        # whole scan rows (one read each), evenly spaced, when the scan is large
        n_rx, n_ry = self.scan_shape
        rows = np.arange(n_rx)
        if n_rx * n_ry > self.mean_limit:
            count = max(1, self.mean_limit // n_ry)
            rows = np.unique(np.linspace(0, n_rx - 1, count).round().astype(np.int64))
        return np.stack(np.meshgrid(rows, np.arange(n_ry), indexing="ij"), -1).reshape(-1, 2)

    def sample(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        # whole scan rows: one read per run of consecutive rows
        n_ry = self.scan_shape[1]
        rows = np.unique(self.mean_positions()[:, 0])
        for start in range(0, len(rows), 16):
            for first, stop in _runs(rows[start : start + 16]):
                positions = np.stack(np.mgrid[first:stop, 0:n_ry], -1).reshape(-1, 2)
                yield positions, self.block(slice(first, stop), slice(0, n_ry))


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """Sorted integers -> half-open runs of consecutive values."""
    runs: list[tuple[int, int]] = []
    for v in values.tolist():
        if runs and runs[-1][1] == v:
            runs[-1] = (runs[-1][0], v + 1)
        else:
            runs.append((v, v + 1))
    return runs


class DetectorFrames(PatternSource):
    """The scan's detector frames, unpooled, prepared like the model inputs."""

    mean_limit = MEAN_FRAMES

    def __init__(self, scan: Any, cache: Any) -> None:
        super().__init__(
            cache.detector_shape, cache.scan_shape, cache.beam_centre, cache.beam_radius
        )
        self.scan = scan
        self.settings = cache.settings
        qx, qy = self.shape
        self.label = f"detector {qx}x{qy}"
        self._hot = np.asarray(cache.hot_pixels, np.int64)
        if len(self._hot):
            from ghosttui.patterns.preprocess import neighbour_table

            self._neighbours, self._weights = neighbour_table(self.shape, self._hot)
            self._weight_sum = np.maximum(self._weights.sum(1), 1.0)

    def prepare(self, frames: np.ndarray) -> np.ndarray:
        """Raw frames (n, Qx, Qy) -> cropped, repaired, transformed, normalised float32."""
        s = self.settings
        if s.crop is not None:
            qx0, qx1, qy0, qy1 = s.crop
            frames = frames[:, qx0:qx1, qy0:qy1]
        x = np.array(frames, np.float32)
        n = len(x)
        if len(self._hot) and n:
            flat = x.reshape(n, -1)
            flat[:, self._hot] = (flat[:, self._neighbours] * self._weights).sum(
                -1
            ) / self._weight_sum
        x = np.clip(x, 0, None)
        if s.transform == "log":
            x = np.log1p(x)
        elif s.transform == "sqrt":
            x = np.sqrt(x)
        if s.normalise == "robust" and n:
            flat = x.reshape(n, -1)
            lo = np.median(flat, 1)
            hi = np.quantile(flat, 0.995, 1)
            hi = np.where(hi - lo > 1e-6, hi, flat.max(1))
            span = np.maximum(hi - lo, 1e-6)
            x = (x - lo[:, None, None]) / span[:, None, None]
        return x.astype(np.float32)

    def block(self, rows: slice, cols: slice) -> np.ndarray:
        n_ry = self.scan_shape[1]
        parts = [
            self.scan.read(rx * n_ry + cols.start, rx * n_ry + cols.stop)
            for rx in range(rows.start, rows.stop)
        ]
        if not parts:
            return np.zeros((0, *self.shape), np.float32)
        return self.prepare(np.concatenate(parts))

    def gather(self, positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, np.int64).reshape(-1, 2)
        if len(positions) == 0:
            return np.zeros((0, *self.shape), np.float32)
        return self.prepare(np.stack([self.scan.pattern(int(r), int(c)) for r, c in positions]))
