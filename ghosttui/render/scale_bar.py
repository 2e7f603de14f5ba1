"""Scale bars for real-space maps: a round length in sensible units.

The length is 1, 2 or 5 times a power of ten, the longest such length that fits in
``fraction`` of the map's width; it is written in the unit that keeps the number between
1 and 999 (``500 nm``, not ``0.5 µm``; ``2 µm``, not ``2000 nm``) when the file's unit is
a known length unit, and in the file's own unit otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# length units by their size in metres; aliases as files write them
_METRES = {"pm": 1e-12, "Å": 1e-10, "nm": 1e-9, "µm": 1e-6, "mm": 1e-3, "m": 1.0}
_ALIASES = {
    "A": "Å",
    "Ang": "Å",
    "Angstrom": "Å",
    "angstrom": "Å",
    "um": "µm",
    "μm": "µm",  # Greek mu
    "micron": "µm",
}
# units that mean "not calibrated"
UNCALIBRATED = {"", "px", "pixel", "pixels", "pix"}


@dataclass(frozen=True)
class ScaleBar:
    """A bar ``pixels`` long (on the map as drawn) standing for ``label``."""

    pixels: float
    label: str


def _unit(units: str) -> str | None:
    name = _ALIASES.get(units.strip(), units.strip())
    return name if name in _METRES else None


def _nice(limit: float) -> float:
    """The largest 1, 2 or 5 x 10^k not above ``limit`` (> 0)."""
    power = 10 ** math.floor(math.log10(limit))
    for step in (5, 2, 1):
        if step * power <= limit:
            return step * power
    return power  # pragma: no cover  (limit >= power always)


def _format(value: float) -> str:
    return f"{value:.0f}" if value >= 1 else f"{value:g}"


def scale_bar(
    pixel_size: float | None,
    units: str | None,
    width_positions: int,
    pixels_per_position: float,
    fraction: float = 0.25,
) -> ScaleBar | None:
    """The scale bar for a map ``width_positions`` scan positions wide, or None if uncalibrated.

    ``pixel_size`` is the scan step in ``units``; each position is drawn
    ``pixels_per_position`` pixels wide.
    """
    if pixel_size is None or units is None or units.strip() in UNCALIBRATED:
        return None
    if not math.isfinite(pixel_size) or pixel_size <= 0 or width_positions < 1:
        return None
    known = _unit(units)
    if known is None:  # a unit we cannot convert: round lengths in the file's own unit
        length = _nice(fraction * width_positions * pixel_size)
        return ScaleBar(length / pixel_size * pixels_per_position, f"{_format(length)} {units}")
    metres_per_position = pixel_size * _METRES[known]
    length_m = _nice(fraction * width_positions * metres_per_position)
    # the unit that writes the length as 1..999 (the largest unit not above it)
    shown = max(
        (u for u in _METRES if u != "Å" and _METRES[u] <= length_m * (1 + 1e-9)),
        key=lambda u: _METRES[u],
        default="pm",
    )
    if known == "Å" and length_m < 1e-9 * (1 - 1e-9):  # sub-nanometre in a file in Å
        shown = "Å"
    value = length_m / _METRES[shown]
    return ScaleBar(
        length_m / metres_per_position * pixels_per_position, f"{_format(value)} {shown}"
    )
