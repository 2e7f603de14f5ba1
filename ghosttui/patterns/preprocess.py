"""Turn raw diffraction patterns into what the model sees.

Per pattern, in order: optional crop window, hot-pixel suppression (pixels
found hot in a survey of the scan are replaced by the mean of their normal
neighbours), virtual bright-field / annular dark-field sums at full detector
resolution, area (sum) or max pooling down to ``size`` x ``size`` (pooling,
not a blurring resize, so a faint disk one output pixel wide keeps its
counts), an intensity transform (log by default) and a robust per-pattern
normalisation (median to 0, 99.5th percentile to 1).

Everything works on blocks of patterns with torch, which uses every core. The
survey of the detector that the pipeline needs (hot pixels, direct beam, virtual
image masks) is plain numpy, in :mod:`ghosttui.patterns.detector`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ghosttui.data.scan import Scan
from ghosttui.errors import DataError
from ghosttui.patterns.detector import (
    DetectorSurvey,
    crop_block,
    neighbour_table,
    survey,
    virtual_masks,
)
from ghosttui.patterns.settings import PreprocessSettings

# The survey is torch-free (ghosttui.patterns.detector); it is named here too, beside the
# pipeline it feeds, because every caller needs both.
__all__ = ["DetectorSurvey", "PatternPipeline", "check_block", "survey"]

FLOAT32_MAX = float(np.finfo(np.float32).max)


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
        self.masks = torch.from_numpy(virtual_masks(detector))

    def to_tensor(self, block: np.ndarray) -> torch.Tensor:
        """Crop, convert to float32 and fix hot pixels: (n, Qx, Qy) detector counts."""
        block = crop_block(block, self.settings.crop)
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
