"""Views of a diffraction pattern that make the class-relevant signal visible.

Pure array functions (numpy only, no UI): the terminal app's pattern pane and
``ghosttui show`` both draw through :mod:`ghosttui.render.pane`, which calls these.

* **difference views**: the pattern minus a reference (the scan's mean pattern,
  or the mean of the positions around it), or minus its own symmetric partner
  about the direct beam (rotated 180 degrees, transposed, mirrored); what is
  left of a partner difference is exactly the symmetry breaking. Differences
  are drawn with a diverging colour map, dark at zero.
* **centring**: patterns drift on the detector (descan), so before a pattern is
  compared with anything it is shifted (bilinear, sub-pixel) so that its direct
  beam sits on one fixed point of the pixel grid, about which every symmetry
  maps pixels exactly onto pixels. Where the beam is: a smooth surface fitted to
  the measured beam centres over the scan (``descan``), each pattern's own
  measured centre (``pattern``), or one centre for all (``scan``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ghosttui.patterns.symmetry import SYMMETRIES, grid_centre, partner_index
from ghosttui.render.cet_d7 import diverging_lut

# name -> what the pane shows (the same names in the app and in ``ghosttui show --view``)
VIEWS: dict[str, str] = {
    "raw": "raw pattern",
    "mean": "pattern − scan mean",
    "local": "pattern − local mean",
    "inversion": "pattern − itself rotated 180°",
    "transpose": "pattern − its transpose",
    "mirror-lr": "pattern − its left-right mirror",
    "mirror-ud": "pattern − its up-down mirror",
}
VIEW_HELP: dict[str, str] = {
    "raw": "the pattern itself (log intensity, as the model sees it)",
    "mean": "the pattern minus the scan's mean pattern: what this position has that most do not",
    "local": "the pattern minus the mean of the positions around it: what changes here (walls)",
    "inversion": "the pattern minus itself rotated 180° about the direct beam: "
    "Friedel asymmetry, the polar signal",
    "transpose": "the pattern minus itself mirrored on the diagonal through the direct beam: "
    "horizontal against vertical features",
    "mirror-lr": "the pattern minus its left-right mirror about the direct beam",
    "mirror-ud": "the pattern minus its up-down mirror about the direct beam",
}
SYMMETRY_VIEWS = SYMMETRIES
REFERENCE_VIEWS = ("mean", "local")
AVERAGES = (1, 3, 5)
CENTRINGS = ("descan", "pattern", "scan")

DIVERGING_LUT = diverging_lut()


# -- geometry ------------------------------------------------------------------------------
def partner(image: np.ndarray, view: str, centre: tuple[float, float]) -> np.ndarray:
    """``image`` rotated 180°, transposed or mirrored about ``centre`` (a :func:`grid_centre`);
    NaN where the partner pixel falls off the image."""
    centre = grid_centre(centre)
    rows, cols, valid = partner_index(image.shape[-2:], view, centre)
    out = image[..., rows, cols].astype(np.float32)
    out[..., ~valid] = np.nan
    return out


def beam_centres(stack: np.ndarray, guess: tuple[float, float], radius: float) -> np.ndarray:
    """(n, 2) centre of mass of the direct beam in each pattern of an (n, H, W) stack.

    Only pixels within ``2 * radius + 1`` of ``guess`` count, weighted by how far
    they rise above half way between the window's median and its maximum, so the
    diffuse background and neighbouring disks do not pull the centre. A pattern
    without a beam there keeps ``guess``.
    """
    stack = np.asarray(stack, np.float32)
    n, h, w = stack.shape
    reach = 2.0 * max(float(radius), 1.0) + 1.0
    r0, r1 = int(max(0, np.floor(guess[0] - reach))), int(min(h, np.ceil(guess[0] + reach) + 1))
    c0, c1 = int(max(0, np.floor(guess[1] - reach))), int(min(w, np.ceil(guess[1] + reach) + 1))
    centres = np.tile(np.asarray(guess, np.float64), (n, 1))
    if r1 <= r0 or c1 <= c0:
        return centres
    rr, cc = np.mgrid[r0:r1, c0:c1]
    inside = (rr - guess[0]) ** 2 + (cc - guess[1]) ** 2 <= reach**2
    window = stack[:, r0:r1, c0:c1].reshape(n, -1)[:, inside.ravel()].astype(np.float64)
    top = window.max(1, keepdims=True)
    threshold = 0.5 * (np.median(window, 1, keepdims=True) + top)
    weights = np.clip(window - threshold, 0, None)
    total = weights.sum(1)
    found = total > 0
    safe = np.where(found, total, 1.0)
    centres[found, 0] = ((weights @ rr[inside].astype(np.float64)) / safe)[found]
    centres[found, 1] = ((weights @ cc[inside].astype(np.float64)) / safe)[found]
    return centres


def shift_stack(stack: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Move each image of an (n, H, W) stack by its (dy, dx), bilinear; edges repeat.

    Separable: rows are interpolated first, then columns, each with whole-row gathers.
    """
    stack = np.asarray(stack, np.float32)
    n, h, w = stack.shape
    shifts = np.asarray(shifts, np.float64).reshape(n, 2)
    index = np.arange(n)[:, None]

    def along_rows(images: np.ndarray, shift: np.ndarray, size: int) -> np.ndarray:
        source = np.arange(size)[None, :] - shift[:, None]  # (n, size) source rows
        low = np.floor(source)
        weight = (source - low).astype(np.float32)[:, :, None]
        low = low.astype(int)
        a = images[index, np.clip(low, 0, size - 1)]
        b = images[index, np.clip(low + 1, 0, size - 1)]
        return a * (1 - weight) + b * weight

    moved = along_rows(stack, shifts[:, 0], h)
    moved = along_rows(moved.transpose(0, 2, 1), shifts[:, 1], w)
    return np.ascontiguousarray(moved.transpose(0, 2, 1))


def centre_on(stack: np.ndarray, beams: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    """Shift every pattern of an (n, H, W) stack so that its beam, at ``beams`` (n, 2), sits on
    ``grid_centre(centre)``."""
    target = np.asarray(grid_centre(centre), np.float64)
    beams = np.asarray(beams, np.float64).reshape(-1, 2)
    return shift_stack(stack, target[None, :] - beams)


def descan_design(positions: np.ndarray, scan_shape: tuple[int, int]) -> np.ndarray:
    """(n, 6) terms of a quadratic surface over the scan (1, x, y, x², xy, y², with x, y the
    positions scaled to -1..1): the shape of a descan error and slow drift."""
    positions = np.asarray(positions, np.float64).reshape(-1, 2)
    x = 2 * positions[:, 0] / max(1, scan_shape[0] - 1) - 1
    y = 2 * positions[:, 1] / max(1, scan_shape[1] - 1) - 1
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], 1)


def fit_descan(positions: np.ndarray, beams: np.ndarray, scan_shape: tuple[int, int]) -> np.ndarray:
    """(6, 2) coefficients of the smooth surface through measured beam centres, fitted twice,
    the second time without centres more than 3 robust deviations off the first fit (a blank
    or odd pattern). Local shifts (a polar deflection inside a domain) stay out of it."""
    design = descan_design(positions, scan_shape)
    beams = np.asarray(beams, np.float64).reshape(-1, 2)
    keep = np.ones(len(beams), bool)
    coefficients = np.zeros((6, 2))
    for _ in range(2):
        coefficients = np.linalg.lstsq(design[keep], beams[keep], rcond=None)[0]
        residual = np.linalg.norm(beams - design @ coefficients, axis=1)
        spread = 1.4826 * np.median(np.abs(residual - np.median(residual))) + 1e-6
        keep = residual <= np.median(residual) + 3 * spread
    return coefficients


# -- views ---------------------------------------------------------------------------------
def view_values(
    image: np.ndarray,
    view: str,
    centre: tuple[float, float],
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """The values a view draws for one centred ``image``.

    ``raw``: the image; ``mean``/``local``: ``image - reference``; the symmetry
    views: the image minus its partner about ``centre`` (0 where the partner is
    off the detector).
    """
    image = np.asarray(image, np.float32)
    if view == "raw":
        return image
    if view in REFERENCE_VIEWS:
        if reference is None:
            raise ValueError(f"the {view} view needs a reference pattern")
        return image - np.asarray(reference, np.float32)
    if view in SYMMETRY_VIEWS:
        return np.nan_to_num(image - partner(image, view, centre), nan=0.0)
    raise ValueError(f"unknown view {view!r} (known: {', '.join(VIEWS)})")


@lru_cache(maxsize=16)
def _disk_filter(shape: tuple[int, int], radius: float) -> tuple[np.ndarray, np.ndarray, int]:
    """The disk kernel's transform for images of ``shape`` (zero-padded by the kernel's reach),
    and how many image pixels each output pixel's disk covers."""
    reach = int(np.ceil(radius))
    yy, xx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    kernel = (yy**2 + xx**2 <= radius**2 + 0.5).astype(np.float64)
    padded = (shape[0] + 2 * reach, shape[1] + 2 * reach)
    transform = np.fft.rfft2(kernel, padded)
    ones = np.fft.irfft2(np.fft.rfft2(np.ones(shape), padded) * transform, padded)
    count = ones[reach : reach + shape[0], reach : reach + shape[1]]
    return transform, np.maximum(count, 1e-9), reach


def disk_smooth(image: np.ndarray, radius: float) -> np.ndarray:
    """The mean over a disk of ``radius`` pixels around every pixel (what a diffraction disk of
    the probe's size collects: the matched filter for disks). Near the edges only the
    pixels on the image count."""
    image = np.asarray(image, np.float32)
    if int(np.ceil(radius)) < 1 or image.size == 0:
        return image
    h, w = image.shape
    transform, count, reach = _disk_filter((h, w), round(float(radius), 3))
    padded = (h + 2 * reach, w + 2 * reach)
    full = np.fft.irfft2(np.fft.rfft2(image, padded) * transform, padded)
    return (full[reach : reach + h, reach : reach + w] / count).astype(np.float32)


def signed_unit(
    values: np.ndarray, scale: float, contrast: str = "linear", gamma: float = 0.5
) -> np.ndarray:
    """Signed values -> [-1, 1]: divided by ``scale`` (a fixed full scale in the patterns'
    normalised units, the same for every position, so that a flat difference looks flat),
    clipped; ``log`` and ``gamma`` contrast lift faint differences, keeping the sign."""
    v = np.asarray(values, np.float32)
    unit = np.clip(v / max(float(scale), 1e-9), -1.0, 1.0)
    if contrast == "log":
        unit = np.sign(unit) * np.log1p(99.0 * np.abs(unit)) / np.log(100.0)
    elif contrast == "gamma":
        unit = np.sign(unit) * np.abs(unit) ** gamma
    return unit


def diverging_rgb(unit: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] -> (H, W, 3) uint8 through the diverging map (0 is dark)."""
    index = np.clip(np.rint((np.asarray(unit) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return DIVERGING_LUT[index]


def ring_mask(rows: slice, cols: slice, core: tuple[slice, slice]) -> np.ndarray:
    """Flat mask over the block ``rows`` x ``cols``: True outside the ``core`` block."""
    rr, cc = np.mgrid[rows, cols]
    inside = (
        (rr >= core[0].start) & (rr < core[0].stop) & (cc >= core[1].start) & (cc < core[1].stop)
    )
    return ~inside.ravel()
