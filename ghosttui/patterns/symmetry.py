"""Point symmetries of a diffraction pattern about its direct beam (numpy only).

One geometry for everything that compares a pattern with its own image under a
symmetry: the pattern pane's difference views (:mod:`ghosttui.render.views`) and
the linear learner's mirror-symmetric inputs (``[model] input_symmetry``).
The symmetries are taken about a *grid centre* (:func:`grid_centre`), a point on
the half-pixel grid about which each of them maps pixel centres exactly onto
pixel centres, so no interpolation blurs the comparison.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

SYMMETRIES = ("inversion", "transpose", "mirror-lr", "mirror-ud")
# the symmetries that keep a polarization class for polar axes along the detector's rows
# and columns: the sign of P flips (or stays), its axis does not (a transpose swaps axes)
CLASS_PRESERVING = ("mirror-lr", "mirror-ud", "inversion")


def grid_centre(centre: tuple[float, float]) -> tuple[float, float]:
    """The point next to ``centre`` about which every symmetry maps pixel centres onto pixel
    centres: both coordinates on the half-pixel grid, and differing by a whole number."""
    cy = round(2 * float(centre[0])) / 2
    cx = cy + round(float(centre[1]) - cy)
    return cy, cx


@lru_cache(maxsize=64)
def partner_index(
    shape: tuple[int, int], symmetry: str, centre: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every pixel of an image of ``shape``: the row and column of its partner under
    ``symmetry`` about ``centre`` (a :func:`grid_centre`), and whether that partner is on
    the image (off it, the index is clipped and means nothing)."""
    h, w = shape
    cy, cx = centre
    rows = np.arange(h)[:, None] + np.zeros((1, w), int)
    cols = np.arange(w)[None, :] + np.zeros((h, 1), int)
    if symmetry == "inversion":
        src_r, src_c = 2 * cy - rows, 2 * cx - cols
    elif symmetry == "mirror-lr":
        src_r, src_c = rows, 2 * cx - cols
    elif symmetry == "mirror-ud":
        src_r, src_c = 2 * cy - rows, cols
    elif symmetry == "transpose":
        src_r, src_c = cy + (cols - cx), cx + (rows - cy)
    else:
        raise ValueError(f"not a symmetry: {symmetry!r}")
    src_r, src_c = np.rint(src_r).astype(int), np.rint(src_c).astype(int)
    valid = (src_r >= 0) & (src_r < h) & (src_c >= 0) & (src_c < w)
    return np.clip(src_r, 0, h - 1), np.clip(src_c, 0, w - 1), valid


def symmetrise(
    images: np.ndarray, centre: tuple[float, float], symmetries: tuple[str, ...] = CLASS_PRESERVING
) -> np.ndarray:
    """The mean of each image of ``images`` (..., H, W) and its partners under
    ``symmetries`` about ``centre``, a partner off the image counting as zero.

    Each partner map is an involution whose pairs are both on the image, so the operator
    is a symmetric matrix: a linear model on symmetrised inputs is one on the inputs
    themselves, with symmetrised weights (:meth:`ghosttui.model.learners.PixelStandardiser.fold`).
    """
    images = np.asarray(images, np.float32)
    centre = grid_centre(centre)
    total = images.copy()
    for symmetry in symmetries:
        rows, cols, valid = partner_index(images.shape[-2:], symmetry, centre)
        total += np.where(valid, images[..., rows, cols], np.float32(0))
    return total / np.float32(1 + len(symmetries))


def model_input_centre(cache: Any) -> tuple[float, float]:
    """The scan's direct beam in the pattern cache's model-input pixels (row, column), from
    its centre on the detector: detector pixel i spans [i, i + 1), pooled pixel j spans
    [j, j + 1) * Q / S."""
    size = cache.size
    qx, qy = cache.detector_shape
    cy, cx = cache.beam_centre
    return (cy + 0.5) * size / qx - 0.5, (cx + 0.5) * size / qy - 0.5
