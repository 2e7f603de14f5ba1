"""What a survey of the scan tells about the detector, in numpy (no torch).

Hot and dead pixels and the direct beam are found from patterns spread over
the scan; from them come the hot-pixel repair table and the virtual
bright-field / annular dark-field masks. :class:`~ghosttui.patterns.preprocess.PatternPipeline`
applies them to whole blocks with torch; :mod:`ghosttui.patterns.preview`
applies them with numpy to the few patterns ``ghosttui info`` shows, so that
``info`` never imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ghosttui.data.scan import Scan
from ghosttui.errors import DataError
from ghosttui.patterns.settings import PreprocessSettings


@dataclass
class DetectorSurvey:
    """What a survey of the scan tells about the detector and the direct beam."""

    shape: tuple[int, int]  # after cropping
    hot_pixels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    beam_centre: tuple[float, float] = (0.0, 0.0)
    beam_radius: float = 1.0
    mean_pattern: np.ndarray | None = None

    def to_attrs(self) -> dict[str, Any]:
        return {
            "beam_centre": np.asarray(self.beam_centre, float),
            "beam_radius": float(self.beam_radius),
            "hot_pixels": np.asarray(self.hot_pixels, np.int64),
            "detector_shape": np.asarray(self.shape, np.int64),
        }


def crop_block(block: np.ndarray, crop: tuple[int, int, int, int] | None) -> np.ndarray:
    if crop is None:
        return block
    qx0, qx1, qy0, qy1 = crop
    return block[..., qx0:qx1, qy0:qy1]


def survey(scan: Scan, settings: PreprocessSettings, samples: int = 384) -> DetectorSurvey:
    """Find hot pixels and the direct beam from patterns spread over the scan."""
    qx, qy = scan.detector_shape
    if settings.crop is not None:
        _, qx1, _, qy1 = settings.crop
        if qx1 > qx or qy1 > qy:
            raise DataError(f"--crop {settings.crop} is outside the {qx}x{qy} detector", scan.path)
    index = np.unique(
        np.linspace(0, scan.n_patterns - 1, min(samples, scan.n_patterns)).astype(int)
    )
    total = None
    for i in index:
        pattern = crop_block(scan.read(int(i), int(i) + 1)[0], settings.crop).astype(np.float64)
        # NaN/Inf patterns are reported by check_block, naming their position; here they
        # must neither poison the mean pattern nor make numpy print warnings.
        pattern[~np.isfinite(pattern)] = 0.0
        total = pattern if total is None else total + pattern
    mean = total / len(index)
    shape = mean.shape
    hot = (
        find_bad_pixels(mean, len(index), settings.hot_ratio)
        if settings.hot_pixels
        else np.zeros(0, np.int64)
    )
    cleaned = mean.copy().ravel()
    if hot.size:
        neighbours, weights = neighbour_table(shape, hot)
        cleaned[hot] = (cleaned[neighbours] * weights).sum(1) / np.maximum(weights.sum(1), 1)
    cleaned = cleaned.reshape(shape)
    centre, radius = find_direct_beam(cleaned)
    return DetectorSurvey(shape, hot, centre, radius, cleaned.astype(np.float32))


def find_bad_pixels(mean: np.ndarray, samples: int, ratio: float = 3.0) -> np.ndarray:
    """Flat indices of hot and dead pixels in the mean of ``samples`` patterns.

    A hot pixel outshines *every* neighbour by ``ratio`` plus five standard
    errors (a diffraction disk always has a bright neighbour); a dead pixel
    reads nothing where its neighbours collected counts. At most 1% of the
    detector is flagged.
    """
    if min(mean.shape) < 3:
        return np.zeros(0, np.int64)
    padded = np.pad(mean, 1, mode="constant", constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3)).reshape(*mean.shape, 9)
    neighbours = np.delete(windows, 4, axis=-1)
    brightest = neighbours.max(-1)
    finite = np.where(np.isfinite(neighbours), neighbours, np.nan)
    typical = np.nanmedian(finite, axis=-1)
    noise = np.sqrt((np.maximum(brightest, 0) + 1.0) / samples)
    hot_score = (mean - ratio * brightest) / noise
    hot = np.flatnonzero(hot_score > 5.0)
    dead = np.flatnonzero(((mean <= 0.02 * typical) & (typical * samples >= 20)).ravel())
    order = np.argsort(-hot_score.ravel()[hot])
    cap = max(1, mean.size // 100)
    return np.unique(np.concatenate([hot[order][:cap], dead[:cap]])).astype(np.int64)


def neighbour_table(shape: tuple[int, int], pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the 8 neighbours of ``pixels``, and 0/1 weights (0: off-detector or bad)."""
    rows, cols = np.divmod(pixels, shape[1])
    offsets = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    nr = np.stack([rows + dr for dr, _ in offsets], 1)
    nc = np.stack([cols + dc for _, dc in offsets], 1)
    valid = (nr >= 0) & (nr < shape[0]) & (nc >= 0) & (nc < shape[1])
    flat = np.where(valid, nr * shape[1] + nc, 0)
    valid &= ~np.isin(flat, pixels)
    return flat, valid.astype(np.float32)


def find_direct_beam(mean: np.ndarray) -> tuple[tuple[float, float], float]:
    """Centre and radius of the brightest disk (the unscattered beam)."""
    smooth = mean.astype(np.float64)
    peak = np.unravel_index(np.argmax(smooth), smooth.shape)
    background = np.median(smooth)
    threshold = background + 0.5 * (smooth[peak] - background)
    mask = smooth > threshold
    # keep the connected region around the peak (flood fill on a small window)
    region = np.zeros_like(mask)
    stack = [peak]
    while stack:
        r, c = stack.pop()
        if 0 <= r < mask.shape[0] and 0 <= c < mask.shape[1] and mask[r, c] and not region[r, c]:
            region[r, c] = True
            stack.extend(((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)))
    weights = np.where(region, smooth - background, 0.0)
    rr, cc = np.indices(smooth.shape)
    total = weights.sum()
    if total <= 0:
        return (mean.shape[0] / 2, mean.shape[1] / 2), max(1.0, min(mean.shape) / 20)
    centre = (float((rr * weights).sum() / total), float((cc * weights).sum() / total))
    radius = max(1.0, math.sqrt(region.sum() / math.pi))
    return centre, radius


def virtual_masks(detector: DetectorSurvey) -> np.ndarray:
    """(Qx*Qy, 2) float32: the virtual bright-field disk and the annular dark-field ring.

    Bright field: within the direct beam's radius; dark field: from twice to three
    times that radius (further where the detector allows), around the beam centre.
    """
    qx, qy = detector.shape
    rr, cc = np.indices((qx, qy))
    r = np.hypot(rr - detector.beam_centre[0], cc - detector.beam_centre[1])
    radius = detector.beam_radius
    outer = min(
        detector.beam_centre[0],
        qx - detector.beam_centre[0],
        detector.beam_centre[1],
        qy - detector.beam_centre[1],
    )
    bf = r <= radius
    adf = (r >= 2.0 * radius) & (r <= max(3.0 * radius, outer))
    return np.stack([bf.ravel(), adf.ravel()], 1).astype(np.float32)


def repair_hot_pixels(block: np.ndarray, detector: DetectorSurvey) -> np.ndarray:
    """(n, Qx, Qy) counts as float32 with every bad pixel replaced by its good neighbours' mean.

    The numpy twin of ``PatternPipeline.to_tensor`` (after cropping), for a few patterns.
    """
    x = np.array(block, dtype=np.float32, copy=True)
    hot = np.asarray(detector.hot_pixels, np.int64)
    if hot.size:
        neighbours, weights = neighbour_table(detector.shape, hot)
        flat = x.reshape(len(x), -1)
        flat[:, hot] = (flat[:, neighbours] * weights).sum(-1) / np.maximum(weights.sum(1), 1)
    return x
