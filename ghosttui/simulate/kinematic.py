"""Synthetic boracite-like 4D-STEM scans with their ground truth (``--physics kinematic``).

Physics kept (each matters to a classifier or to a human labeller):

* Bragg disks on a rotated, non-square reciprocal lattice; intensities from a
  fixed set of structure factors, a Debye-Waller-like envelope, a dynamical
  (thickness-dependent) factor and a tilt that moves the envelope's centre;
* faint half-order *ghost* disks between neighbouring Bragg disks along the
  polarization direction, nudged a little further along it: horizontal
  polarization puts them between horizontal neighbours (along Qy, the image
  columns), vertical between vertical neighbours (along Qx, the rows); none in
  non-polar regions. Ghost strength fades to zero towards every domain wall, so
  the patterns next to a wall are hard for a human too;
* a diffuse background, a linear descan error plus a slow time drift of the
  whole pattern, beam-current flicker, per-pixel and per-quadrant detector
  gain, dead and hot pixels, and Poisson counting noise.

Rendering is vectorised over a batch of probe positions: every disk is drawn
into a small window around its sub-pixel centre (no full-image FFTs), then the
batch is Poisson-sampled with a generator seeded per batch, so a scan is
deterministic per seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ghosttui.data.layout import write_flat
from ghosttui.errors import GhostError
from ghosttui.files import atomic_output, hdf5_file
from ghosttui.simulate.detector import detector_model
from ghosttui.simulate.layouts import (
    CLASSES,
    GEOMETRIES,
    HORIZONTAL,
    NONE,
    VERTICAL,
    layout,
    smooth_fields,
)
from ghosttui.simulate.limits import check_scan_memory

FORMAT_VERSION = 1
# the renderer's maps (layout, smooth fields, origins, tilt): 145 bytes measured at their peak
MAP_BYTES_PER_POSITION = 256


@dataclass(frozen=True)
class SimulationSettings:
    """What a simulated scan looks like. Lengths in detector pixels scale with ``size``."""

    scan: tuple[int, int] = (206, 34)
    size: int = 128
    geometry: str = "wall"
    seed: int = 0
    dose: float = 5.0e4  # electrons per pattern
    ghost_strength: float = 0.05  # ghost disk / neighbouring Bragg disk, far from walls
    classes: tuple[str, ...] = field(default=CLASSES)

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise GhostError(
                f"unknown --geometry {self.geometry!r} (known: {', '.join(GEOMETRIES)})"
            )
        if self.size < 32:
            raise GhostError(f"--size must be at least 32 detector pixels (got {self.size})")
        if not math.isfinite(self.dose) or self.dose <= 0:
            raise GhostError(f"--dose must be a positive number of electrons (got {self.dose:g})")
        if min(self.scan) < 4:
            raise GhostError(f"--scan must be at least 4x4 (got {self.scan[0]}x{self.scan[1]})")
        if len(self.classes) != 3 or len(set(self.classes)) != 3:
            raise GhostError("simulated scans have exactly three distinct classes")


def domain_truth(settings: SimulationSettings) -> tuple[np.ndarray, np.ndarray]:
    """Truth class per position (int8, indices into ``CLASSES``) and ghost strength in [0, 1]."""
    rng = np.random.default_rng([settings.seed, 1])
    rx, ry = np.meshgrid(
        np.arange(settings.scan[0], dtype=float),
        np.arange(settings.scan[1], dtype=float),
        indexing="ij",
    )
    truth, strength = layout(settings.geometry, rx, ry, settings.scan, rng)
    strength = np.where(truth == NONE, 0.0, strength)
    return truth.astype(np.int8), strength.astype(np.float32)


# -- crystal and detector --------------------------------------------------------------
@dataclass
class _Crystal:
    a_star: np.ndarray  # (2,) pixels, (qx, qy)
    b_star: np.ndarray
    hk: np.ndarray  # (K, 2) Miller indices of the Bragg disks, (0, 0) first
    bragg: np.ndarray  # (K, 2) offsets from the pattern origin
    structure: np.ndarray  # (K,) |F|^2
    extinction: np.ndarray  # (K,) extinction distances (units of the mean thickness)
    ghost_h: np.ndarray  # (K, 2) offsets of horizontal-polarization ghosts
    ghost_v: np.ndarray
    ghost_factor_h: np.ndarray  # (K,)
    ghost_factor_v: np.ndarray
    disk_radius: float
    edge_width: float


def _crystal(settings: SimulationSettings) -> _Crystal:
    q = settings.size
    rng = np.random.default_rng([settings.seed, 2])
    theta = np.deg2rad(rng.uniform(-8, 8))
    skew = np.deg2rad(rng.uniform(-3, 3))
    g_a = 0.15 * q * rng.uniform(0.95, 1.05)
    g_b = g_a * 1.12
    a_star = g_a * np.array([np.sin(theta), np.cos(theta)])
    b_star = g_b * np.array([np.cos(theta + skew), -np.sin(theta + skew)])
    reach = 0.5 * q - 0.03 * q
    n = int(np.ceil(reach / min(g_a, g_b))) + 1
    hk = [(h, k) for h in range(-n, n + 1) for k in range(-n, n + 1)]
    hk.sort(key=lambda p: (p != (0, 0), abs(p[0]) + abs(p[1]), p))
    hk_arr = np.array(hk)
    offsets = hk_arr[:, :1] * a_star + hk_arr[:, 1:] * b_star
    # keep disks (and their ghosts) that can land on the detector
    keep = np.linalg.norm(offsets, axis=1) < reach + 0.5 * g_b
    hk_arr, offsets = hk_arr[keep], offsets[keep]
    k = len(hk_arr)
    # Friedel-symmetric structure factors
    table: dict[tuple[int, int], float] = {}
    extinction_table: dict[tuple[int, int], float] = {}
    structure = np.empty(k)
    extinction = np.empty(k)
    for i, (h, kk) in enumerate(hk_arr):
        key = (h, kk) if (h, kk) >= (-h, -kk) else (-h, -kk)
        if key not in table:
            table[key] = float(rng.lognormal(0.0, 0.6))
            extinction_table[key] = float(rng.uniform(0.6, 1.6))
        structure[i], extinction[i] = table[key], extinction_table[key]
    a_hat, b_hat = a_star / g_a, b_star / g_b
    nudge = 0.06 * g_a
    return _Crystal(
        a_star=a_star,
        b_star=b_star,
        hk=hk_arr,
        bragg=offsets,
        structure=structure,
        extinction=extinction,
        ghost_h=offsets + 0.5 * a_star + nudge * a_hat,
        ghost_v=offsets + 0.5 * b_star + nudge * b_hat,
        ghost_factor_h=rng.uniform(0.5, 1.5, k),
        ghost_factor_v=rng.uniform(0.5, 1.5, k),
        disk_radius=0.022 * q,
        edge_width=max(0.3, 0.003 * q),
    )


def _smooth_fields(settings: SimulationSettings, count: int) -> np.ndarray:
    """``count`` smooth random fields over the scan, each scaled to [-1, 1]."""
    return smooth_fields(settings.scan, count, np.random.default_rng([settings.seed, 3]))


# -- rendering ------------------------------------------------------------------------------
def _draw_disks(
    image: torch.Tensor, centres: torch.Tensor, intensity: torch.Tensor, radius: float, edge: float
) -> None:
    """Add soft-edged disks (total counts ``intensity``) at sub-pixel ``centres``.

    image: (B, Q, Q); centres: (B, K, 2) in (qx, qy) pixels; intensity: (B, K).
    """
    b, q = image.shape[0], image.shape[1]
    reach = math.ceil(radius + 3 * edge) + 1
    grid = torch.arange(-reach, reach + 1, dtype=torch.float32)
    base = torch.floor(centres)  # (B, K, 2)
    px = base[..., 0, None, None] + grid[:, None]  # (B, K, W, 1)
    py = base[..., 1, None, None] + grid[None, :]  # (B, K, 1, W)
    dist = torch.sqrt(
        (px - centres[..., 0, None, None]) ** 2 + (py - centres[..., 1, None, None]) ** 2
    )
    profile = torch.sigmoid((radius - dist) / edge)
    profile = profile * (intensity / (math.pi * radius * radius))[..., None, None]
    ix, iy = px.long().expand_as(profile), py.long().expand_as(profile)
    inside = (ix >= 0) & (ix < q) & (iy >= 0) & (iy < q)
    batch = torch.arange(b).view(b, 1, 1, 1).expand_as(profile)
    flat = (batch * q * q + ix * q + iy)[inside]
    image.view(-1).index_add_(0, flat, profile[inside])


class _Renderer:
    def __init__(self, settings: SimulationSettings) -> None:
        self.settings = settings
        self.crystal = _crystal(settings)
        self.detector = detector_model(settings.size, settings.seed)
        self.truth, self.strength = domain_truth(settings)
        q = settings.size
        fields = _smooth_fields(settings, 7)
        n_rx, n_ry = settings.scan
        rx, ry = np.meshgrid(np.arange(n_rx) / n_rx, np.arange(n_ry) / n_ry, indexing="ij")
        time_frac = (np.arange(n_rx * n_ry) / (n_rx * n_ry)).reshape(n_rx, n_ry)
        rng = np.random.default_rng([settings.seed, 5])
        descan = rng.uniform(-1, 1, (2, 2)) * 0.012 * q
        self.origin = np.stack(
            [
                q / 2
                + 0.3
                + descan[0, 0] * (rx - 0.5)
                + descan[0, 1] * (ry - 0.5)
                + 0.008 * q * time_frac
                + 0.002 * q * fields[4],
                q / 2
                - 0.4
                + descan[1, 0] * (rx - 0.5)
                + descan[1, 1] * (ry - 0.5)
                - 0.006 * q * time_frac
                + 0.002 * q * fields[5],
            ],
            axis=-1,
        )  # (Rx, Ry, 2)
        self.thickness = 1.0 + 0.25 * fields[0]
        self.tilt = 0.05 * q * np.stack([fields[1], fields[2]], axis=-1)
        self.current = 1.0 + 0.05 * fields[3]
        self.ghost = settings.ghost_strength * self.strength * (0.8 + 0.2 * fields[6])
        yy, xx = np.meshgrid(np.arange(q, dtype=np.float32), np.arange(q, dtype=np.float32))
        self.grid_x, self.grid_y = torch.from_numpy(xx), torch.from_numpy(yy)

    def render(self, start: int, stop: int, seed: np.random.SeedSequence) -> np.ndarray:
        """Counts for flat positions ``start..stop`` (uint16, (n, Q, Q))."""
        s, c, d = self.settings, self.crystal, self.detector
        q = s.size
        index = np.arange(start, stop)
        rx, ry = np.divmod(index, s.scan[1])
        n = len(index)
        origin = self.origin[rx, ry]  # (n, 2)
        t = self.thickness[rx, ry][:, None]
        tilt = self.tilt[rx, ry]
        # Bragg intensities: structure x envelope (moved by tilt) x dynamical factor
        g = c.bragg[None]  # (1, K, 2)
        sigma = 0.22 * q
        envelope = np.exp(-np.sum((g - tilt[:, None]) ** 2, -1) / (2 * sigma**2))
        dynamical = 0.35 + np.sin(np.pi * t / c.extinction[None]) ** 2
        bragg = c.structure[None] * envelope * dynamical  # (n, K)
        bragg[:, 0] = 0.0
        bragg *= 0.35 / bragg.sum(1, keepdims=True)
        bragg[:, 0] = 0.45 * np.exp(-0.5 * (t[:, 0] - 1.0))
        # ghosts: between a disk and its neighbour along the polarization direction
        neighbour_h = _neighbour_index(c.hk, (1, 0))
        neighbour_v = _neighbour_index(c.hk, (0, 1))
        eta = self.ghost[rx, ry][:, None]
        truth = self.truth[rx, ry][:, None]
        # the direct beam is not a Bragg reflection: its ghost neighbours are as faint as any
        scattered = bragg.copy()
        scattered[:, 0] = scattered[:, 1:].mean(1)
        pair_h = 0.5 * (scattered + np.where(neighbour_h >= 0, scattered[:, neighbour_h], 0.0))
        pair_v = 0.5 * (scattered + np.where(neighbour_v >= 0, scattered[:, neighbour_v], 0.0))
        ghost_h = np.where(truth == HORIZONTAL, eta * pair_h * c.ghost_factor_h, 0.0)
        ghost_v = np.where(truth == VERTICAL, eta * pair_v * c.ghost_factor_v, 0.0)
        offsets = np.concatenate([c.bragg, c.ghost_h, c.ghost_v])  # (3K, 2)
        intensity = np.concatenate([bragg, ghost_h, ghost_v], axis=1)
        dose = s.dose * self.current[rx, ry][:, None]
        image = torch.zeros((n, q, q), dtype=torch.float32)
        centres = torch.from_numpy((origin[:, None, :] + offsets[None]).astype(np.float32))
        _draw_disks(
            image,
            centres,
            torch.from_numpy((intensity * dose).astype(np.float32)),
            c.disk_radius,
            c.edge_width,
        )
        # diffuse background, 20% of the dose, centred on the (drifting) direct beam
        ox = torch.from_numpy(origin[:, 0].astype(np.float32))[:, None, None]
        oy = torch.from_numpy(origin[:, 1].astype(np.float32))[:, None, None]
        r2 = (self.grid_x - ox) ** 2 + (self.grid_y - oy) ** 2
        diffuse = (1 + r2 / (0.08 * q) ** 2) ** -1.5 + 0.02
        diffuse = diffuse * (
            0.2
            * torch.from_numpy(dose.astype(np.float32))[:, :, None]
            / diffuse.sum((1, 2), keepdim=True)
        )
        return d.record(image + diffuse, seed)


def _neighbour_index(hk: np.ndarray, step: tuple[int, int]) -> np.ndarray:
    lookup = {(int(h), int(k)): i for i, (h, k) in enumerate(hk)}
    return np.array([lookup.get((int(h) + step[0], int(k) + step[1]), -1) for h, k in hk])


# -- writing ----------------------------------------------------------------------------------
def simulate(
    out: str | Path,
    settings: SimulationSettings,
    progress: Callable[[int, int], None] | None = None,
    truth_npy: str | Path | None = None,
) -> Path:
    """Write a simulated scan to ``out`` (HDF5): ``/data`` 4D uint16, ``/truth`` int8.

    The file appears only when complete (written to a temporary name, then renamed).
    """
    out = Path(out)
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise GhostError("simulate writes HDF5; give an output name ending in .h5", out)
    if not out.parent.exists():
        raise GhostError("output folder does not exist", out.parent)
    check_scan_memory(settings.scan, MAP_BYTES_PER_POSITION)
    renderer = _Renderer(settings)
    n_rx, n_ry = settings.scan
    q = settings.size
    total = n_rx * n_ry
    batch = max(1, 8192 * 128 * 128 // (q * q) // 32)  # ~ 32 MiB of float32 per batch
    seeds = np.random.SeedSequence([settings.seed, 6]).spawn((total + batch - 1) // batch)
    c = renderer.crystal
    reserve = total * q * q * 2 + total * 16 + (1 << 20)
    with atomic_output(out, reserve=reserve) as tmp, hdf5_file(tmp) as output:
        f = output.file
        f.attrs["ghosttui_simulation"] = FORMAT_VERSION
        data = f.create_dataset("data", (n_rx, n_ry, q, q), dtype="uint16")
        data.attrs["R_pixel_size"] = 1.0
        data.attrs["R_pixel_units"] = "nm"
        data.attrs["Q_pixel_size"] = (1 / 12.1) / float(np.linalg.norm(c.a_star))
        data.attrs["Q_pixel_units"] = "A^-1"
        for i, start in enumerate(range(0, total, batch)):
            stop = min(total, start + batch)
            counts = renderer.render(start, stop, seeds[i])
            write_flat(data, start, counts, n_ry)
            output.check()
            if progress is not None:
                progress(stop, total)
        truth = f.create_dataset("truth", data=renderer.truth)
        truth.attrs["classes"] = ",".join(settings.classes)
        f.create_dataset("ghost_strength", data=renderer.ghost.astype(np.float32))
        f.create_dataset("origin", data=renderer.origin.astype(np.float32))
        sim = f.create_group("simulation")
        for key, value in asdict(settings).items():
            sim.attrs[key] = list(value) if isinstance(value, tuple) else value
        sim.attrs["a_star"] = c.a_star
        sim.attrs["b_star"] = c.b_star
        sim.attrs["disk_radius"] = c.disk_radius
        sim.attrs["ghost_nudge"] = 0.06
        sim.attrs["hot_pixels"] = renderer.detector.hot_index
        sim.attrs["axes"] = "data is (Rx, Ry, Qx, Qy); horizontal = along Qy (image columns)"
        if truth_npy is not None:  # in place first: the scan never appears without it
            with atomic_output(truth_npy) as truth_tmp, open(truth_tmp, "wb") as handle:
                np.save(handle, renderer.truth)
    return out
