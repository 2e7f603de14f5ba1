"""Domain layouts over a scan, shared by both simulators.

A layout says, at every probe position, which domain the probe sits in. Coordinates are
scan positions (``rx`` down the rows, ``ry`` across the columns) as floats, so a layout
can be evaluated on a finer grid than the scan (the multislice simulator does this to
mix patterns under the probe footprint at walls).

Geometries:

* ``wall``: a vertical domain above a horizontal one, a meandering band of non-polar
  material 5-8 positions thick between them;
* ``stripes``: alternating horizontal/vertical stripes with thin non-polar walls, at a
  random angle in 25-45 degrees or any angle given;
* ``needles``: vertical needles growing into a horizontal matrix from both edges;
* ``patches``: stripes with a few non-polar (parent phase) patches in them.

:func:`layout` gives the three-class truth and, for the kinematic simulator, how strong
the polarization signal is (fading to zero towards walls). :func:`variant_layout` adds
the sign of the polarization (180-degree walls) that the multislice simulator needs: a
variant per position out of ``VARIANTS``.
"""

from __future__ import annotations

import math

import numpy as np

CLASSES = ("horizontal", "vertical", "none")
HORIZONTAL, VERTICAL, NONE = 0, 1, 2
GEOMETRIES = ("wall", "stripes", "needles", "patches")

# Multislice variants: polarization along +Qx / -Qx (vertical, the rows), +Qy / -Qy
# (horizontal, the columns), or the non-polar parent phase.
VARIANTS = ("+vertical", "-vertical", "+horizontal", "-horizontal", "none")
VARIANT_CLASS = np.array([VERTICAL, VERTICAL, HORIZONTAL, HORIZONTAL, NONE], dtype=np.int8)


def ramp(distance: np.ndarray, width: float) -> np.ndarray:
    """0 at a wall's edge, rising to 1 ``width`` positions into the domain."""
    return np.clip(distance / width, 0.0, 1.0) ** 0.8


def _wall(rx: np.ndarray, ry: np.ndarray, shape: tuple[int, int], rng: np.random.Generator):
    n_rx, n_ry = shape
    p1, p2, p3 = rng.uniform(0, 2 * np.pi, 3)
    centre = (
        0.5 * n_rx
        + 0.03 * n_rx * np.sin(2 * np.pi * ry / (1.3 * n_ry) + p1)
        + 0.012 * n_rx * np.sin(2 * np.pi * ry / (0.45 * n_ry) + p2)
    )
    half = 2.0 + 1.5 * (1 + np.sin(2 * np.pi * ry / (0.8 * n_ry) + p3)) / 2  # 5-8 positions thick
    d = rx - centre
    truth = np.where(d < -half, VERTICAL, np.where(d > half, HORIZONTAL, NONE))
    strength = ramp(np.abs(d) - half, 6.0)
    return truth, strength


def _stripes(
    rx: np.ndarray,
    ry: np.ndarray,
    shape: tuple[int, int],
    rng: np.random.Generator,
    angle_deg: float | None = None,
):
    n_rx, n_ry = shape
    angle = np.deg2rad(rng.uniform(25, 45))
    if angle_deg is not None:
        angle = np.deg2rad(angle_deg)
    period = max(12.0, 0.3 * math.sqrt(n_rx * n_ry))
    phase, wave = rng.uniform(0, 2), rng.uniform(0, 2 * np.pi)
    u = rx * np.cos(angle) + ry * np.sin(angle) + 1.5 * np.sin(2 * np.pi * rx / (0.6 * n_rx) + wave)
    s = (2 * u / period + phase) % 2.0
    domain = np.floor(s).astype(int)
    frac = s - domain
    dist = np.minimum(frac, 1 - frac) * period / 2  # positions to the nearest wall
    half = 0.7
    truth = np.where(dist < half, NONE, np.where(domain == 0, HORIZONTAL, VERTICAL))
    strength = ramp(dist - half, 2.5)
    return truth, strength


def _needles(rx: np.ndarray, ry: np.ndarray, shape: tuple[int, int], rng: np.random.Generator):
    n_rx, n_ry = shape
    inside = np.full(rx.shape, -np.inf)  # signed distance into the nearest needle (positions)
    count = max(2, round(n_rx * n_ry / 1400))
    for i in range(count):
        from_top = i % 2 == 0
        base_ry = rng.uniform(0.1, 0.9) * n_ry
        base = np.array([0.0 if from_top else n_rx - 1.0, base_ry])
        tilt = np.deg2rad(rng.uniform(-12, 12))
        axis = np.array([np.cos(tilt), np.sin(tilt)]) * (1 if from_top else -1)
        length = rng.uniform(0.3, 0.65) * n_rx
        width = rng.uniform(2.0, 4.0)
        vx, vy = rx - base[0], ry - base[1]
        along = vx * axis[0] + vy * axis[1]
        across = np.abs(-vx * axis[1] + vy * axis[0])
        half_width = width * (1 - along / length)
        valid = (along >= 0) & (along <= length)
        depth = np.where(valid, half_width - across, -np.inf)
        inside = np.maximum(inside, depth)
    half = 0.6
    truth = np.where(inside > half, VERTICAL, np.where(inside > -half, NONE, HORIZONTAL))
    strength = ramp(np.abs(inside) - half, 2.5)
    return truth, strength


def _patches(
    rx: np.ndarray,
    ry: np.ndarray,
    shape: tuple[int, int],
    rng: np.random.Generator,
    angle_deg: float | None = None,
):
    """Stripes with 2-4 elliptical patches of the non-polar parent phase."""
    truth, strength = _stripes(rx, ry, shape, rng, angle_deg)
    n_rx, n_ry = shape
    outside = np.full(rx.shape, np.inf)  # positions outside the nearest patch (negative inside)
    for _ in range(int(rng.integers(2, 5))):
        centre = rng.uniform(0.15, 0.85, 2) * np.array([n_rx, n_ry])
        radii = rng.uniform(0.06, 0.14, 2) * min(n_rx, n_ry) + 2.0
        turn = rng.uniform(0, np.pi)
        du, dv = rx - centre[0], ry - centre[1]
        u = du * np.cos(turn) + dv * np.sin(turn)
        v = -du * np.sin(turn) + dv * np.cos(turn)
        radius = np.hypot(u / radii[0], v / radii[1])
        outside = np.minimum(outside, (radius - 1.0) * min(radii))
    truth = np.where(outside < 0, NONE, truth)
    strength = np.where(outside < 0, 0.0, np.minimum(strength, ramp(outside, 2.5)))
    return truth, strength


def layout(
    geometry: str,
    rx: np.ndarray,
    ry: np.ndarray,
    shape: tuple[int, int],
    rng: np.random.Generator,
    angle_deg: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Truth class (``HORIZONTAL``/``VERTICAL``/``NONE``) and signal strength in [0, 1]
    at scan coordinates ``rx``, ``ry`` of a scan of ``shape``."""
    if geometry == "wall":
        return _wall(rx, ry, shape, rng)
    if geometry == "stripes":
        return _stripes(rx, ry, shape, rng, angle_deg)
    if geometry == "needles":
        return _needles(rx, ry, shape, rng)
    if geometry == "patches":
        return _patches(rx, ry, shape, rng, angle_deg)
    raise ValueError(f"unknown geometry {geometry!r}")


def smooth_fields(
    shape: tuple[int, int], count: int, rng: np.random.Generator, rx=None, ry=None
) -> np.ndarray:
    """``count`` smooth random fields over a scan of ``shape``, each scaled to [-1, 1].

    Evaluated at the scan positions, or at the float coordinates ``rx``, ``ry``.
    """
    n_rx, n_ry = shape
    if rx is None:
        rx, ry = np.meshgrid(
            np.arange(n_rx, dtype=float), np.arange(n_ry, dtype=float), indexing="ij"
        )
    u, v = rx / n_rx, ry / n_ry
    fields = np.empty((count, *u.shape))
    for i in range(count):
        f = np.zeros(u.shape)
        for _ in range(4):
            fx, fy = rng.uniform(0.2, 1.5, 2) * rng.choice([-1, 1], 2)
            f += rng.uniform(0.5, 1) * np.sin(
                2 * np.pi * (fx * u + fy * v) + rng.uniform(0, 2 * np.pi)
            )
        fields[i] = f / max(1e-9, np.abs(f).max())
    return fields


def variant_layout(
    geometry: str,
    shape: tuple[int, int],
    seed: int,
    supersample: int = 1,
    angle_deg: float | None = None,
) -> np.ndarray:
    """Variant index (into ``VARIANTS``) on a grid ``supersample`` times finer than the scan.

    Sub-sample ``(i, j)`` sits at scan coordinates ``((i + 0.5) / s - 0.5, (j + 0.5) / s - 0.5)``
    (``s`` odd puts one sub-sample on every position). The axis of the polarization comes
    from :func:`layout`; its sign from a smooth random field split at its median over the
    polar region, so every layout has both signs, separated by meandering 180-degree walls.
    """
    s = supersample
    n_rx, n_ry = shape
    rx, ry = np.meshgrid(
        (np.arange(n_rx * s) + 0.5) / s - 0.5,
        (np.arange(n_ry * s) + 0.5) / s - 0.5,
        indexing="ij",
    )
    truth, _ = layout(geometry, rx, ry, shape, np.random.default_rng([seed, 1]), angle_deg)
    field = smooth_fields(shape, 1, np.random.default_rng([seed, 7]), rx, ry)[0]
    polar = truth != NONE
    positive = field > (np.median(field[polar]) if polar.any() else 0.0)
    variant = np.where(truth == VERTICAL, np.where(positive, 0, 1), np.where(positive, 2, 3))
    return np.where(polar, variant, 4).astype(np.int8)
