"""Virtual images for finding one's way around a scan without a cache (numpy only, no torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ghosttui.data.scan import Scan
from ghosttui.patterns.detector import crop_block, repair_hot_pixels, survey, virtual_masks
from ghosttui.patterns.settings import PreprocessSettings


@dataclass(frozen=True)
class QuickPreview:
    """Virtual images on every ``step``-th position along each scan axis."""

    vbf: np.ndarray  # (ceil(Rx / step), ceil(Ry / step)) float32
    adf: np.ndarray
    step: int
    non_finite: int  # patterns read that hold NaN or Inf (counted as zeros in the images)
    first_non_finite: tuple[int, int] | None  # the scan position of the first of them


def quick_virtual_images(scan: Scan, max_patterns: int = 4096) -> QuickPreview:
    """Virtual bright-field and annular dark-field on a strided grid of the scan.

    Reads at most about ``max_patterns`` patterns. Hot and dead pixels are repaired
    first, as in the cache; NaN or Inf counts are taken as zero and counted, so that
    ``ghosttui info`` can describe such a file (preprocessing refuses it).
    """
    n_rx, n_ry = scan.scan_shape
    step = max(1, math.ceil(math.sqrt(scan.n_patterns / max_patterns)))
    settings = PreprocessSettings(hot_pixels=True)
    detector = survey(scan, settings, samples=128)
    masks = virtual_masks(detector)
    rows = range(0, n_rx, step)
    vbf = np.zeros((len(rows), len(range(0, n_ry, step))), np.float32)
    adf = np.zeros_like(vbf)
    non_finite = 0
    first: tuple[int, int] | None = None
    for i, rx in enumerate(rows):
        raw = crop_block(scan.read(rx * n_ry, (rx + 1) * n_ry)[::step], settings.crop)
        if raw.dtype.kind == "f":
            finite = np.isfinite(raw.reshape(len(raw), -1)).all(1)
            if not finite.all():
                non_finite += int((~finite).sum())
                first = first or (rx, int(np.argmin(finite)) * step)
                raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
        counts = repair_hot_pixels(raw, detector)
        virtual = counts.reshape(len(counts), -1) @ masks
        vbf[i], adf[i] = virtual[:, 0], virtual[:, 1]
    return QuickPreview(vbf, adf, step, non_finite, first)
