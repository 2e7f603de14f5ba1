"""Turn raw diffraction patterns into what the model sees.

Per pattern, in order: optional crop window, hot-pixel suppression (pixels
found hot in a survey of the scan are replaced by the mean of their normal
neighbours), virtual bright-field / annular dark-field sums at full detector
resolution, area (sum) or max pooling down to ``size`` x ``size`` (pooling,
not a blurring resize, so a faint disk one output pixel wide keeps its
counts), an intensity transform (log by default) and a robust per-pattern
normalisation (median to 0, 99.5th percentile to 1).

Everything works on blocks of patterns with torch, which uses every core.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ghosttui.data.scan import Scan
from ghosttui.errors import DataError
from ghosttui.patterns.settings import PreprocessSettings

FLOAT32_MAX = float(np.finfo(np.float32).max)


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


def _crop(block: np.ndarray, crop: tuple[int, int, int, int] | None) -> np.ndarray:
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
        pattern = _crop(scan.read(int(i), int(i) + 1)[0], settings.crop).astype(np.float64)
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


class PatternPipeline:
    """Applies :class:`PreprocessSettings` to blocks of raw patterns."""

    def __init__(self, settings: PreprocessSettings, detector: DetectorSurvey) -> None:
        self.settings = settings
        self.detector = detector
        qx, qy = detector.shape
        self.hot = torch.from_numpy(np.asarray(detector.hot_pixels, np.int64))
        if len(self.hot):
            neighbours, weights = neighbour_table((qx, qy), detector.hot_pixels)
            self.neighbours = torch.from_numpy(neighbours)
            self.weights = torch.from_numpy(weights)
            self.weight_sum = self.weights.sum(1).clamp(min=1)
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
        self.masks = torch.from_numpy(np.stack([bf.ravel(), adf.ravel()], 1).astype(np.float32))

    def to_tensor(self, block: np.ndarray) -> torch.Tensor:
        """Crop, convert to float32 and fix hot pixels: (n, Qx, Qy) detector counts."""
        block = _crop(block, self.settings.crop)
        if block.dtype == np.uint16:
            x = (
                torch.from_numpy(np.ascontiguousarray(block).view(np.int16)).to(torch.int32)
                & 0xFFFF
            )
            x = x.to(torch.float32)
        elif block.dtype == np.float32 and block.flags.c_contiguous:
            x = torch.from_numpy(block).clone()
        else:
            x = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))
        if len(self.hot):
            flat = x.view(x.shape[0], -1)
            values = flat[:, self.neighbours]  # (n, k, 8)
            flat[:, self.hot] = (values * self.weights).sum(-1) / self.weight_sum
        return x

    def virtual_images(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 2): virtual bright-field and annular dark-field sums."""
        return x.view(x.shape[0], -1) @ self.masks

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        """Pool, transform and normalise (n, Qx, Qy) counts to (n, size, size) float32."""
        s = self.settings
        size = s.size
        x4 = x.unsqueeze(1)
        qx, qy = x.shape[-2:]
        if s.pooling == "max":
            pooled = F.adaptive_max_pool2d(x4, size)
        elif qx % size == 0 and qy % size == 0:
            pooled = F.avg_pool2d(x4, (qx // size, qy // size)) * ((qx // size) * (qy // size))
        else:
            pooled = F.adaptive_avg_pool2d(x4, size) * (qx * qy / (size * size))
        v = pooled.squeeze(1).clamp_(min=0)
        if s.transform == "log":
            v = torch.log1p(v)
        elif s.transform == "sqrt":
            v = torch.sqrt(v)
        if s.normalise == "robust":
            flat = v.view(v.shape[0], -1)
            lo = flat.median(dim=1).values
            hi = torch.quantile(flat, 0.995, dim=1)
            # a nearly dark pattern (under 0.5% of pixels above the median): scale by its
            # maximum, so that its few bright pixels become 1 instead of ~1e6
            hi = torch.where(hi - lo > 1e-6, hi, flat.max(dim=1).values)
            span = (hi - lo).clamp(min=1e-6)
            v = (v - lo[:, None, None]) / span[:, None, None]
        return v

    def __call__(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (n, Qx, Qy) -> model inputs (n, size, size) float32 and (n, 2) virtual images."""
        x = self.to_tensor(block)
        virtual = self.virtual_images(x)
        return self.model_input(x).numpy(), virtual.numpy()


def check_block(scan: Scan, start: int, block: np.ndarray, allow_blank: bool) -> None:
    """Reject NaN/Inf and (unless allowed) all-zero patterns, naming the position."""
    if block.dtype.kind == "f":
        finite = np.isfinite(block.reshape(len(block), -1)).all(1)
        if not finite.all():
            rx, ry = scan.position(start + int(np.argmin(finite)))
            raise DataError(f"pattern ({rx}, {ry}) contains NaN or Inf values", scan.path)
        if block.dtype.itemsize > 4:  # float64 counts are processed as float32
            big = np.abs(block.reshape(len(block), -1)).max(1) > FLOAT32_MAX
            if big.any():
                rx, ry = scan.position(start + int(np.argmax(big)))
                raise DataError(
                    f"pattern ({rx}, {ry}) holds values beyond the float32 range "
                    f"(|value| > {FLOAT32_MAX:.3g}); rescale the data",
                    scan.path,
                )
    if not allow_blank:
        blank = block.reshape(len(block), -1).max(1) <= 0
        if blank.any():
            rx, ry = scan.position(start + int(np.argmax(blank)))
            raise DataError(
                f"pattern ({rx}, {ry}) is all zeros (blanked beam or lost frame);"
                " use --allow-blank to keep such patterns",
                scan.path,
            )


def check_processed(scan: Scan, start: int, model_input: np.ndarray, virtual: np.ndarray) -> None:
    """Refuse non-finite results (sums of counts too large for float32), naming the position."""
    finite = np.isfinite(model_input.reshape(len(model_input), -1)).all(1) & np.isfinite(
        virtual
    ).all(1)
    if not finite.all():
        rx, ry = scan.position(start + int(np.argmin(finite)))
        raise DataError(
            f"pattern ({rx}, {ry}) gives non-finite values once processed in float32 "
            "(counts too large); rescale the data",
            scan.path,
        )
