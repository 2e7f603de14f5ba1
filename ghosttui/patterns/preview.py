"""Virtual images for finding one's way around a scan without a cache."""

from __future__ import annotations

import math

import numpy as np

from ghosttui.data.scan import Scan
from ghosttui.patterns.preprocess import PatternPipeline, survey
from ghosttui.patterns.settings import PreprocessSettings


def quick_virtual_images(
    scan: Scan, max_patterns: int = 4096
) -> tuple[np.ndarray, np.ndarray, int]:
    """Virtual bright-field and annular dark-field on a strided grid of the scan.

    Reads at most about ``max_patterns`` patterns; returns (vbf, adf, step).
    """
    n_rx, n_ry = scan.scan_shape
    step = max(1, math.ceil(math.sqrt(scan.n_patterns / max_patterns)))
    settings = PreprocessSettings(hot_pixels=True)
    pipeline = PatternPipeline(settings, survey(scan, settings, samples=128))
    rows = range(0, n_rx, step)
    vbf = np.zeros((len(rows), len(range(0, n_ry, step))), np.float32)
    adf = np.zeros_like(vbf)
    for i, rx in enumerate(rows):
        raw = scan.read(rx * n_ry, (rx + 1) * n_ry)[::step]
        virtual = pipeline.virtual_images(pipeline.to_tensor(raw)).numpy()
        vbf[i], adf[i] = virtual[:, 0], virtual[:, 1]
    return vbf, adf, step
