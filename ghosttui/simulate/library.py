"""The multislice library: Bragg-disk intensities of a crystal for every incident direction.

What is simulated, and why it is enough
---------------------------------------
With a 1.8 mrad probe at 200 kV the diffraction disks of a perovskite (Bragg angles
lambda/a ~ 6 mrad) do not overlap. Each detector pixel inside disk g then receives the
amplitude of exactly one plane-wave component of the probe, the one whose direction is
``k_in = q - g``, and its intensity is ``|A(k_in)|^2 I_g(k_in + t)``: the aperture A times
the intensity of beam g for a *plane wave* incident along ``k_in`` on the crystal tilted by
``t``. Probe position and aberrations drop out (they only change phases). So a CBED pattern
of a perfect crystal is a set of rocking curves ``I_g(d)`` read over the directions
``d = k_in + t`` that the aperture covers. The library holds exactly these: ``I_g(d)`` on a
square grid of directions ``|d| <= max_angle`` (default 5 mrad = 1.8 mrad aperture + 3 mrad
tilt), for every beam g up to ``beam_angle`` and at every thickness up to
``max_thickness``. Specimen tilt and the disk interiors are the same data: a tilted
crystal just reads the rocking curves at shifted directions, so interpolating in tilt is
interpolating on this grid (checked against abTEM's own probe CBED of 6 nm of PbTiO3,
benchmarks/multislice_vs_probe.py: disk intensities agree within 1% for strong beams,
4% for weak ones).

Each direction is one plane-wave multislice run (abTEM ``PlaneWave`` with a small-angle
tilt, batched), which gives the exit planes of *every* thickness in one pass.

Choices (stated, measured on PbTiO3 at 30 nm)
---------------------------------------------
* Cell: 3 x 3 unit cells across the beam. The cell only has to hold the crystal's
  periodicity and decorrelate thermal displacements; the angular sampling of the CBED
  pattern comes from the direction grid, not from the cell size.
* Lateral sampling <= 0.05 A (grid sizes rounded up to FFT-friendly 2-3-5-7 numbers):
  0.1 A moved weak beams by up to 30% at 20-30 nm (Pb columns scatter strongly); 0.05 A
  and 0.039 A agree to a few per cent. The 2/3 antialias cutoff is then ~160 mrad.
* Slices: half the repeat along the beam (a/2 ~ 1.95 A), the two atom planes of the
  perovskite cell in the middle of their slices; a/4 slices changed beams by ~1%, whole-cell
  slices by ~5%. Exit planes after every unit cell (3.9 A); composition interpolates
  linearly in thickness between them.
* Directions: a 0.5 mrad grid (the detector pixel of the default 128 x 128 scan).
* Frozen phonons: every direction batch is run through ``phonon_configs`` independent
  configurations of thermally displaced atoms (abTEM ``FrozenPhonons``, sigma = sqrt(U_iso))
  and the *intensities* are averaged: the average of |psi|^2 over configurations is the
  measured pattern, elastic Bragg intensities (with their Debye-Waller damping and the
  absorption into thermal diffuse scattering) plus the thermal diffuse scattering itself.
  Configurations are drawn afresh for each batch of directions, and directions are
  assigned to batches at random, so the residual phonon noise is uncorrelated between
  neighbouring directions and averages out over a disk. The diffuse intensity between
  the Bragg beams is kept, averaged over directions, as a smooth background map.
* Symmetry: only directions in the fundamental domain of the projected point group are
  simulated (the polar phase with P along x has the mirror y -> -y, the cubic parent 4mm),
  the rest are copies, and the library is averaged over the group so that it has the
  symmetry exactly (so the parent phase at zero tilt has no Friedel asymmetry at all).
  The other polarization variants are not simulated: -P is the mirror x -> -x of the
  pattern, P along y a 90-degree rotation; composition applies the operation to the
  pattern and its inverse to the tilt (the grid is closed under both).

The file is HDF5 under ``default_cache_dir()/multislice``, named by a hash of every
physical parameter and the abTEM version, and written atomically; a second request
builds nothing. abTEM is imported only here, and only to build.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from ghosttui.errors import GhostError
from ghosttui.files import atomic_output, hdf5_file
from ghosttui.simulate.structures import (
    PHASES,
    get_structure,
    lab_cell,
    projected_symmetry,
    unit_cell,
)

LIBRARY_FORMAT = 1
Progress = Callable[[int, int], None]
INSTALL_HINT = "pip install 'ghosttui[multislice]'"


@dataclass(frozen=True)
class LibrarySpec:
    """Everything that determines a library's content."""

    structure: str = "pto"
    energy_kev: float = 200.0
    max_thickness_nm: float = 30.0
    max_angle_mrad: float = 5.0  # incident directions |d| <= this: aperture + tilt
    direction_step_mrad: float = 0.5
    beam_angle_mrad: float = 50.0  # Bragg beams and diffuse background up to this angle
    cells: tuple[int, int] = (3, 3)
    sampling: float = 0.05  # A, upper bound
    phonon_configs: int = 4  # 0: a static lattice
    batch: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        get_structure(self.structure)
        if not all(math.isfinite(v) for v in _numbers(self)):
            raise GhostError("multislice library settings must be finite numbers")
        checks = {
            "energy": self.energy_kev > 0,
            "library thickness": 0 < self.max_thickness_nm <= 500,
            "library angle": 0 < self.max_angle_mrad <= 50,
            "direction step": 0 < self.direction_step_mrad <= self.max_angle_mrad,
            "beam angle": self.max_angle_mrad < self.beam_angle_mrad <= 200,
            "cells": min(self.cells) >= 1,
            "sampling": 0 < self.sampling <= 0.5,
            "phonon configurations": self.phonon_configs >= 0,
            "batch": self.batch >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise GhostError(f"invalid multislice library setting: {name}")

    def physical_key(self) -> str:
        """Hash of every parameter that changes the library (not the abTEM version)."""
        blob = json.dumps(
            {
                "format": LIBRARY_FORMAT,
                "spec": asdict(self),
                "structure": get_structure(self.structure).describe(),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _numbers(spec: LibrarySpec) -> list[float]:
    return [v for v in asdict(spec).values() if isinstance(v, float)]


@dataclass
class PhaseData:
    """One phase of a library (lab frame: x the polar axis, y across, z the beam)."""

    thickness_nm: np.ndarray  # (T,) exit planes, one per unit cell along the beam
    intensity: np.ndarray  # (T, N, N, G) float32, NaN outside the simulated directions
    beams: np.ndarray  # (G, 2) int Miller indices along lab x, y
    g: np.ndarray  # (G, 2) reciprocal vectors, 1/A
    diffuse: np.ndarray  # (T, Kx, Ky) float32 diffuse intensity per 1/A^2, zero beam at centre
    diffuse_step: np.ndarray  # (2,) 1/A
    cell: np.ndarray  # (3,) A


@dataclass
class Library:
    spec: LibrarySpec
    path: Path
    wavelength: float  # A
    directions_mrad: np.ndarray  # (N,) grid axis, the same along x and y
    phases: dict[str, PhaseData] = field(default_factory=dict)
    abtem_version: str = ""
    build_seconds: float = 0.0


# -- cache -------------------------------------------------------------------------------
def library_dir() -> Path:
    from ghosttui.patterns.cache import default_cache_dir

    return default_cache_dir() / "multislice"


def abtem_version() -> str | None:
    try:
        return metadata.version("abtem")
    except metadata.PackageNotFoundError:
        return None


def library_path(spec: LibrarySpec, version: str) -> Path:
    return library_dir() / f"{spec.structure}-{spec.physical_key()}-abtem{version}.h5"


def cached_library(spec: LibrarySpec) -> Path | None:
    """The library file for ``spec`` if one is cached: built with the installed abTEM, or,
    when abTEM is not installed, with any version."""
    version = abtem_version()
    if version is not None:
        path = library_path(spec, version)
        return path if path.exists() else None
    found = sorted(
        library_dir().glob(f"{spec.structure}-{spec.physical_key()}-abtem*.h5"),
        key=lambda p: p.stat().st_mtime,
    )
    return found[-1] if found else None


def is_cached(spec: LibrarySpec) -> bool:
    """True when the library for ``spec`` is cached (composing from it needs no abTEM)."""
    return cached_library(spec) is not None


def ensure_library(spec: LibrarySpec, progress: Progress | None = None) -> Library:
    """Load the cached library for ``spec``, building it first if there is none."""
    path = cached_library(spec)
    if path is not None:
        try:
            return load_library(path, spec)
        except GhostError:
            if abtem_version() is None:
                raise
            # an unreadable cache file (an older format, a damaged disk): build it anew
    return load_library(build_library(spec, progress), spec)


# -- geometry of the direction grid ----------------------------------------------------------
def direction_grid(spec: LibrarySpec) -> tuple[np.ndarray, np.ndarray]:
    """Grid axis (N,) in mrad and the mask (N, N) of simulated directions: every point
    within ``max_angle`` plus one diagonal step, so that bilinear interpolation anywhere
    inside ``max_angle`` only reads simulated points."""
    step = spec.direction_step_mrad
    half = math.ceil(spec.max_angle_mrad / step + math.sqrt(2))
    axis = step * np.arange(-half, half + 1)
    dx, dy = np.meshgrid(axis, axis, indexing="ij")
    mask = np.hypot(dx, dy) <= spec.max_angle_mrad + step * math.sqrt(2) + 1e-9
    return axis, mask


def beam_list(cell: tuple[float, float, float], wavelength: float, angle_mrad: float) -> np.ndarray:
    """Miller indices (h, k) along lab x, y of every beam within ``angle_mrad``."""
    g_max = angle_mrad * 1e-3 / wavelength
    h_max, k_max = int(g_max * cell[0]), int(g_max * cell[1])
    hk = [
        (h, k)
        for h in range(-h_max, h_max + 1)
        for k in range(-k_max, k_max + 1)
        if math.hypot(h / cell[0], k / cell[1]) <= g_max
    ]
    hk.sort(key=lambda p: (abs(p[0]) + abs(p[1]), p))
    return np.array(hk, dtype=int)


def orbit_tables(
    group: list[np.ndarray], mask: np.ndarray, beams: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Representatives of the simulated directions under ``group`` and, per group element,
    the index permutations it induces on directions and beams.

    Returns ``reps`` (R,) flat indices of the directions to simulate, ``dir_perm``
    (|G|, N*N) with ``dir_perm[o, v]`` = flat index of ``O v`` (-1 if off the grid), and
    ``beam_perm`` (|G|, G) with ``beam_perm[o, b]`` = index of beam ``O g_b``.
    """
    n = mask.shape[0]
    half = n // 2
    ij = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2)
    offsets = ij - half
    dir_perm = np.full((len(group), n * n), -1, dtype=np.int64)
    for o, op in enumerate(group):
        moved = offsets @ op.T + half
        inside = (moved >= 0).all(1) & (moved < n).all(1)
        dir_perm[o, inside] = moved[inside, 0] * n + moved[inside, 1]
    lookup = {(int(h), int(k)): i for i, (h, k) in enumerate(beams)}
    beam_perm = np.array(
        [[lookup[tuple(int(v) for v in op @ hk)] for hk in beams] for op in group], dtype=np.int64
    )
    flat_mask = mask.ravel()
    reps = []
    for v in np.flatnonzero(flat_mask):
        images = dir_perm[:, v]
        if (images >= 0).all() and v == images.min():
            reps.append(v)
    return np.array(reps, dtype=np.int64), dir_perm, beam_perm


def _fft_size(n: int) -> int:
    """The smallest integer >= n with no prime factor above 7."""
    while True:
        m = n
        for p in (2, 3, 5, 7):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


# -- building --------------------------------------------------------------------------------
def _import_abtem():
    try:
        import abtem
    except ImportError:
        raise GhostError(
            f"the multislice library needs abTEM, which is not installed: {INSTALL_HINT}"
        ) from None
    abtem.config.set({"device": "cpu", "fftw.threads": 1, "diagnostics.progress_bar": False})
    return abtem


def _simulate_phase(
    abtem, spec: LibrarySpec, phase: str, phase_index: int, wavelength: float, tick: Callable
) -> PhaseData:
    structure = get_structure(spec.structure)
    cell = lab_cell(structure, phase)
    nz = math.ceil(spec.max_thickness_nm * 10 / cell[2] - 1e-9)
    supercell = unit_cell(structure, phase) * (spec.cells[0], spec.cells[1], nz)
    extent = (spec.cells[0] * cell[0], spec.cells[1] * cell[1])
    gpts = tuple(_fft_size(math.ceil(e / spec.sampling)) for e in extent)
    axis, mask = direction_grid(spec)
    n = len(axis)
    beams = beam_list(cell, wavelength, spec.beam_angle_mrad)
    group = projected_symmetry(phase)
    reps, dir_perm, beam_perm = orbit_tables(group, mask, beams)
    rep_dirs = np.stack([axis[reps // n], axis[reps % n]], -1)
    order = np.random.default_rng([spec.seed, phase_index]).permutation(len(reps))
    batches = [order[i : i + spec.batch] for i in range(0, len(reps), spec.batch)]

    def potential(config: int, batch: int):
        atoms = supercell
        if spec.phonon_configs > 0:
            seed = np.random.SeedSequence([spec.seed, phase_index, config, batch])
            atoms = abtem.FrozenPhonons(
                supercell, 1, sigmas=structure.sigmas(), seed=int(seed.generate_state(1)[0])
            )
        built = abtem.Potential(
            atoms,
            gpts=gpts,
            slice_thickness=(cell[2] / 2,) * (2 * nz),
            exit_planes=2,
            projection="infinite",
        ).build(lazy=False)
        return built

    configs = max(1, spec.phonon_configs)
    static = None if spec.phonon_configs > 0 else potential(0, 0)
    bragg = None
    diffuse = None
    stabiliser = (dir_perm[:, reps] == reps[None, :]).sum(0)
    orbit_size = len(group) / stabiliser  # how many directions each representative stands for
    for config in range(configs):
        for b, idx in enumerate(batches):
            pot = static if static is not None else potential(config, b)
            waves = abtem.PlaneWave(energy=spec.energy_kev * 1e3, tilt=rep_dirs[idx])
            patterns = waves.multislice(
                pot,
                detectors=abtem.PixelatedDetector(max_angle=spec.beam_angle_mrad + 2.0),
                lazy=False,
            )
            array = np.asarray(patterns.array, dtype=np.float64)
            array = array.reshape(nz + 1, len(idx), *array.shape[-2:])
            if bragg is None:
                kx, ky = array.shape[-2:]
                centre = np.array([kx // 2, ky // 2])
                bx = centre[0] + beams[:, 0] * spec.cells[0]
                by = centre[1] + beams[:, 1] * spec.cells[1]
                if bx.min() < 0 or by.min() < 0 or bx.max() >= kx or by.max() >= ky:
                    raise RuntimeError("beams outside abTEM's cropped diffraction patterns")
                bragg = np.zeros((nz + 1, len(reps), len(beams)))
                diffuse = np.zeros((nz + 1, kx, ky))
            bragg[:, idx] += array[:, :, bx, by]
            diffuse += np.tensordot(orbit_size[idx], array, axes=([0], [1]))
            tick()
    bragg /= configs
    diffuse /= configs * orbit_size.sum()
    intensity = _expand(bragg, reps, dir_perm, beam_perm, n)
    diffuse = _diffuse_map(diffuse, centre, spec.cells, group)
    g = beams / np.array(cell[:2])
    step = np.array([1.0 / extent[0], 1.0 / extent[1]])
    return PhaseData(
        thickness_nm=np.arange(nz + 1) * cell[2] / 10,
        intensity=intensity.astype(np.float32),
        beams=beams,
        g=g,
        diffuse=(diffuse / (step[0] * step[1])).astype(np.float32),
        diffuse_step=step,
        cell=np.array(cell),
    )


def _expand(
    bragg: np.ndarray, reps: np.ndarray, dir_perm: np.ndarray, beam_perm: np.ndarray, n: int
) -> np.ndarray:
    """From representatives to the whole grid, averaged over the group.

    A structure invariant under O has I_{O g}(O d) = I_g(d). Every simulated direction v
    is O r for a representative r, so I_g(v) = I_{O^-1 g}(r); averaging over all O that
    map a representative onto v makes directions on mirror lines exactly symmetric too.
    """
    t, _, nb = bragg.shape
    total = np.zeros((t, n * n, nb))
    count = np.zeros(n * n)
    inverse = np.argsort(beam_perm, axis=1)  # inverse[o] maps O g -> g
    for o in range(dir_perm.shape[0]):
        targets = dir_perm[o, reps]  # O r
        total[:, targets, :] += bragg[:, :, inverse[o]]
        count[targets] += 1
    out = np.full((t, n * n, nb), np.nan)
    seen = count > 0
    out[:, seen] = total[:, seen] / count[seen, None]
    return out.reshape(t, n, n, nb)


def _diffuse_map(
    diffuse: np.ndarray, centre: np.ndarray, cells: tuple[int, int], group: list[np.ndarray]
) -> np.ndarray:
    """The diffuse background: Bragg points replaced by the mean of their four neighbours,
    then averaged over the point group (the map is centred, so the group permutes it)."""
    out = diffuse.copy()
    kx, ky = out.shape[1:]
    hx = np.arange(centre[0] % cells[0], kx, cells[0])
    hy = np.arange(centre[1] % cells[1], ky, cells[1])
    ix, iy = np.meshgrid(hx, hy, indexing="ij")
    neighbours = [
        out[:, np.clip(ix + dx, 0, kx - 1), np.clip(iy + dy, 0, ky - 1)]
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
    ]
    out[:, ix, iy] = np.mean(neighbours, axis=0)
    # crop symmetrically about the zero beam; square when the group swaps x and y
    half_x = min(centre[0], kx - 1 - centre[0])
    half_y = min(centre[1], ky - 1 - centre[1])
    if any(op[0, 1] != 0 for op in group):
        half_x = half_y = min(half_x, half_y)
    out = out[
        :, centre[0] - half_x : centre[0] + half_x + 1, centre[1] - half_y : centre[1] + half_y + 1
    ]
    symmetric = np.zeros_like(out)
    for op in group:
        symmetric += _apply_op(out, op)
    return symmetric / len(group)


def _apply_op(image: np.ndarray, op: np.ndarray) -> np.ndarray:
    """``out[..., O q] = image[..., q]`` for a centred odd-sized map and an integer O."""
    result = image
    if op[0, 1] != 0:  # a rotation or diagonal mirror: swap axes first
        result = np.swapaxes(result, -1, -2)
        op = op @ np.array([[0, 1], [1, 0]])
    if op[0, 0] < 0:
        result = result[..., ::-1, :]
    if op[1, 1] < 0:
        result = result[..., ::-1]
    return result


def build_library(spec: LibrarySpec, progress: Progress | None = None) -> Path:
    """Simulate the library for ``spec`` with abTEM and write it to the cache (atomically)."""
    abtem = _import_abtem()
    from abtem.core.energy import energy2wavelength

    started = time.perf_counter()
    wavelength = float(energy2wavelength(spec.energy_kev * 1e3))
    axis, mask = direction_grid(spec)
    total = 0
    for phase in PHASES:
        group = projected_symmetry(phase)
        cell = lab_cell(get_structure(spec.structure), phase)
        reps, _, _ = orbit_tables(group, mask, beam_list(cell, wavelength, spec.beam_angle_mrad))
        total += max(1, spec.phonon_configs) * math.ceil(len(reps) / spec.batch)
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    phases = {
        phase: _simulate_phase(abtem, spec, phase, index, wavelength, tick)
        for index, phase in enumerate(PHASES)
    }
    version = abtem.__version__
    path = library_path(spec, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, spec, wavelength, axis, phases, version, time.perf_counter() - started)
    return path


def _write(path, spec, wavelength, axis, phases, version, seconds) -> None:

    with atomic_output(path, durable=False) as tmp, hdf5_file(tmp) as output:
        f = output.file
        f.attrs["ghosttui_multislice_library"] = LIBRARY_FORMAT
        f.attrs["spec"] = json.dumps(asdict(spec))
        f.attrs["structure"] = json.dumps(get_structure(spec.structure).describe())
        f.attrs["abtem_version"] = version
        f.attrs["wavelength_A"] = wavelength
        f.attrs["build_seconds"] = seconds
        f.create_dataset("directions_mrad", data=axis)
        for name, data in phases.items():
            group = f.create_group(f"phases/{name}")
            group.create_dataset("thickness_nm", data=data.thickness_nm)
            group.create_dataset("intensity", data=data.intensity)
            group.create_dataset("beams", data=data.beams)
            group.create_dataset("g", data=data.g)
            group.create_dataset("diffuse", data=data.diffuse)
            group.attrs["diffuse_step"] = data.diffuse_step
            group.attrs["cell"] = data.cell


def load_library(path: Path, spec: LibrarySpec | None = None) -> Library:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            stored = LibrarySpec(**_tuples(json.loads(f.attrs["spec"])))
            if spec is not None and stored != spec:
                raise GhostError("library does not match the requested settings", path)
            phases = {
                name: PhaseData(
                    thickness_nm=f[f"phases/{name}/thickness_nm"][()],
                    intensity=f[f"phases/{name}/intensity"][()],
                    beams=f[f"phases/{name}/beams"][()],
                    g=f[f"phases/{name}/g"][()],
                    diffuse=f[f"phases/{name}/diffuse"][()],
                    diffuse_step=np.asarray(f[f"phases/{name}"].attrs["diffuse_step"]),
                    cell=np.asarray(f[f"phases/{name}"].attrs["cell"]),
                )
                for name in PHASES
            }
            return Library(
                spec=stored,
                path=Path(path),
                wavelength=float(f.attrs["wavelength_A"]),
                directions_mrad=f["directions_mrad"][()],
                phases=phases,
                abtem_version=str(f.attrs["abtem_version"]),
                build_seconds=float(f.attrs["build_seconds"]),
            )
    except (OSError, KeyError) as exc:
        raise GhostError(f"cannot read the multislice library ({exc})", path) from None


def _tuples(values: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
