"""Multislice scans composed from the library (``ghosttui simulate --physics multislice``).

Per probe position the scan has a domain variant (+P or -P along Qx or Qy, or the
non-polar parent phase, :mod:`~ghosttui.simulate.layouts`), a thickness and a specimen tilt
(smooth maps: a wedge with undulations, a bent foil). A pattern is:

* the Bragg disks: every pixel q inside disk g reads the library's rocking curve I_g at the
  incident direction ``d = O^-1 (q - centre_g + t)`` (``O`` the variant's mirror or
  rotation of the canonical domain, times the specimen's small azimuthal rotation
  relative to the detector, ``t`` the tilt), linearly interpolated in thickness and
  bilinearly in direction; the aperture (semiangle ``alpha``) weights each pixel by the
  fraction of it inside the disk;
* the thermal diffuse background: the library's diffuse map, transformed by ``O`` and
  convolved with the aperture (each incident direction carries its own diffuse pattern);
* probe footprint and walls: patterns of the variants under the probe are mixed with the
  weights of a Gaussian footprint (the Airy probe's FWHM 0.51 lambda/alpha combined with a
  wall width) on a finer grid than the scan. Mixing is incoherent: the interference of
  the two domains' waves inside a disk is neglected;
* the detector: descan (linear in scan position) and a slow drift of the pattern origin,
  beam-current flicker, Gaussian point-spread, per-pixel and per-quadrant gain, dead and
  hot pixels, Poisson counting noise at ``dose`` electrons per pattern.

The output has the kinematic simulator's layout (``/data``, ``/truth``, ``/simulation``)
plus the maps that explain it: ``/variant``, ``/variant_weights``, ``/polarization``,
``/thickness_nm``, ``/tilt_mrad``, ``/origin``.
"""

from __future__ import annotations

import json
import math
import shutil
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
    VARIANT_CLASS,
    VARIANTS,
    smooth_fields,
    variant_layout,
)
from ghosttui.simulate.library import Library, LibrarySpec, PhaseData
from ghosttui.simulate.limits import check_scan_memory
from ghosttui.simulate.structures import (
    IDENTITY,
    MIRROR_X,
    ROTATE_90,
    get_structure,
    lab_cell,
)

FORMAT_VERSION = 1
SUPERSAMPLE = 7  # layout sub-samples per scan step (odd: one sits on every position)
Progress = Callable[[int, int], None]

# canonical domain (+P along lab x = Qx) -> each variant, before the specimen's azimuth
VARIANT_OPS = (IDENTITY, MIRROR_X, ROTATE_90, ROTATE_90.T, IDENTITY)
VARIANT_PHASE = ("polar", "polar", "polar", "polar", "parent")


@dataclass(frozen=True)
class MultisliceSettings:
    """A multislice scan. Angles in mrad, lengths in nm."""

    scan: tuple[int, int] = (120, 60)
    size: int = 128
    geometry: str = "wall"
    seed: int = 0
    dose: float = 1.0e5  # electrons per pattern
    structure: str = "pto"
    thickness: tuple[float, float] = (8.0, 30.0)
    tilt: float = 3.0  # largest specimen tilt
    semiangle: float = 1.8
    detector_angle: float = 32.0  # half-width of the detector
    step: float = 2.0  # scan step
    wall_width: float = 1.0  # FWHM of the change from one variant to the next
    stripe_angle: float | None = None  # stripes / patches: None draws 25-45 degrees
    energy_kev: float = 200.0
    classes: tuple[str, ...] = field(default=CLASSES)

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise GhostError(
                f"unknown --geometry {self.geometry!r} (known: {', '.join(GEOMETRIES)})"
            )
        get_structure(self.structure)
        numbers = [
            ("--dose", self.dose),
            ("--thickness", self.thickness[0]),
            ("--thickness", self.thickness[1]),
            ("--tilt", self.tilt),
            ("--semiangle", self.semiangle),
            ("--step", self.step),
            ("--wall-width", self.wall_width),
            ("--detector-angle", self.detector_angle),
        ]
        for name, value in numbers:
            if not math.isfinite(value):
                raise GhostError(f"{name} must be a finite number (got {value})")
        if self.dose <= 0:
            raise GhostError(f"--dose must be positive (got {self.dose:g})")
        if not 0 < self.thickness[0] <= self.thickness[1]:
            raise GhostError(
                f"--thickness must be MIN-MAX with 0 < MIN <= MAX nm "
                f"(got {self.thickness[0]:g}-{self.thickness[1]:g})"
            )
        if self.tilt < 0:
            raise GhostError(f"--tilt must be >= 0 mrad (got {self.tilt:g})")
        if self.semiangle <= 0 or self.step <= 0 or self.wall_width < 0:
            raise GhostError("--semiangle and --step must be positive, --wall-width >= 0")
        if self.detector_angle <= self.semiangle:
            raise GhostError("--detector-angle must be larger than --semiangle")
        if self.size < 32:
            raise GhostError(f"--size must be at least 32 detector pixels (got {self.size})")
        if min(self.scan) < 4:
            raise GhostError(f"--scan must be at least 4x4 (got {self.scan[0]}x{self.scan[1]})")
        if len(self.classes) != 3 or len(set(self.classes)) != 3:
            raise GhostError("simulated scans have exactly three distinct classes")
        wavelength = electron_wavelength(self.energy_kev)
        structure = get_structure(self.structure)
        largest_cell = max(max(lab_cell(structure, p)[:2]) for p in ("polar", "parent"))
        bragg = wavelength / largest_cell * 1e3
        if 2 * self.semiangle >= bragg:
            raise GhostError(
                f"--semiangle {self.semiangle:g} mrad makes the diffraction disks overlap "
                f"(the first Bragg angle is {bragg:.2f} mrad): use less than {bragg / 2:.2f}"
            )

    def library_spec(self, **overrides) -> LibrarySpec:
        """The default library for this scan: the structure and energy, and room for the
        thickness (30 nm or more) and tilt plus aperture (5 mrad or more)."""
        values = {
            "structure": self.structure,
            "energy_kev": self.energy_kev,
            "max_thickness_nm": 30.0,
            "max_angle_mrad": 5.0,
        }
        values.update(overrides)
        return LibrarySpec(**values)

    def pixel_mrad(self) -> float:
        return 2 * self.detector_angle / self.size


def electron_wavelength(energy_kev: float) -> float:
    """Relativistic electron wavelength in A."""
    from scipy.constants import c, e, h, m_e

    energy = energy_kev * 1e3 * e
    return h / math.sqrt(2 * m_e * energy * (1 + energy / (2 * m_e * c**2))) * 1e10


def check_library(settings: MultisliceSettings, spec: LibrarySpec) -> None:
    """A one-line error when the scan asks for more than the library holds."""
    if spec.structure != settings.structure or spec.energy_kev != settings.energy_kev:
        raise GhostError(
            f"the library is {spec.structure} at {spec.energy_kev:g} keV, "
            f"the scan {settings.structure} at {settings.energy_kev:g} keV"
        )
    if settings.thickness[1] > spec.max_thickness_nm + 1e-9:
        raise GhostError(
            f"--thickness up to {settings.thickness[1]:g} nm is outside the library "
            f"(0-{spec.max_thickness_nm:g} nm); build a thicker one with "
            f"--library-thickness {math.ceil(settings.thickness[1]):d}"
        )
    reach = settings.semiangle + settings.tilt
    if reach > spec.max_angle_mrad + 1e-9:
        raise GhostError(
            f"--tilt {settings.tilt:g} plus --semiangle {settings.semiangle:g} mrad is outside "
            f"the library (directions up to {spec.max_angle_mrad:g} mrad); build a wider one "
            f"with --library-angle {math.ceil(reach * 2) / 2:g}"
        )
    corner = settings.detector_angle * math.sqrt(2) + settings.semiangle
    if corner > spec.beam_angle_mrad + 1e-9:
        raise GhostError(
            f"--detector-angle {settings.detector_angle:g} mrad reaches beyond the library's "
            f"beams ({spec.beam_angle_mrad:g} mrad): use at most "
            f"{(spec.beam_angle_mrad - settings.semiangle) / math.sqrt(2):.1f}"
        )


def check_output(out: Path, settings: MultisliceSettings) -> None:
    """A one-line error for an output name that is not HDF5, a missing folder, or a scan
    that cannot fit in memory or on disk: checked before any work starts."""
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise GhostError("simulate writes HDF5; give an output name ending in .h5", out)
    if not out.parent.exists():
        raise GhostError("output folder does not exist", out.parent)
    s = SUPERSAMPLE
    # per position: the supersampled variants, a float64 field and its smoothing; the maps
    check_scan_memory(settings.scan, s * s * (1 + 8 * 3) + 4 * 16)
    n_rx, n_ry = settings.scan
    data_bytes = n_rx * n_ry * settings.size**2 * 2
    free = shutil.disk_usage(out.parent).free
    if data_bytes > free:
        raise GhostError(
            f"the scan needs {data_bytes / 2**30:.1f} GiB on disk, {free / 2**30:.1f} GiB is free",
            out.parent,
        )


# -- the scan's maps ----------------------------------------------------------------------
@dataclass
class ScanMaps:
    variant: np.ndarray  # (Rx, Ry) int8, the variant at each position's centre
    weights: np.ndarray  # (Rx, Ry, 5) float32, variants under the probe footprint
    truth: np.ndarray  # (Rx, Ry) int8
    thickness: np.ndarray  # (Rx, Ry) nm
    tilt: (
        np.ndarray
    )  # (Rx, Ry, 2) mrad along Qx, Qy: the beam's direction relative to the zone axis
    origin: np.ndarray  # (Rx, Ry, 2) pixels
    current: np.ndarray  # (Rx, Ry)
    azimuth: float  # degrees, the crystal's rotation about the beam relative to the detector


def footprint_sigma(settings: MultisliceSettings) -> float:
    """Standard deviation (nm) of the Gaussian that mixes variants: the probe's intensity
    FWHM 0.514 lambda / alpha combined with the wall width."""
    probe = 0.514 * electron_wavelength(settings.energy_kev) / (settings.semiangle * 1e-3) / 10
    return math.hypot(probe, settings.wall_width) / (2 * math.sqrt(2 * math.log(2)))


def scan_maps(settings: MultisliceSettings) -> ScanMaps:
    from scipy.ndimage import gaussian_filter

    n_rx, n_ry = settings.scan
    s = SUPERSAMPLE
    fine = variant_layout(settings.geometry, settings.scan, settings.seed, s, settings.stripe_angle)
    centre = fine[s // 2 :: s, s // 2 :: s]
    sigma = footprint_sigma(settings) / settings.step * s
    weights = np.empty((n_rx, n_ry, len(VARIANTS)), np.float32)
    for v in range(len(VARIANTS)):
        smooth = gaussian_filter((fine == v).astype(np.float32), sigma, mode="nearest")
        weights[..., v] = smooth[s // 2 :: s, s // 2 :: s]
    weights /= weights.sum(-1, keepdims=True)

    fields = smooth_fields(settings.scan, 6, np.random.default_rng([settings.seed, 3]))
    rng = np.random.default_rng([settings.seed, 5])
    rx, ry = np.meshgrid(np.arange(n_rx) / n_rx, np.arange(n_ry) / n_ry, indexing="ij")
    wedge_angle = rng.uniform(0, 2 * np.pi)
    wedge = rx * np.cos(wedge_angle) + ry * np.sin(wedge_angle)
    profile = wedge + 0.35 * (wedge.max() - wedge.min()) * fields[0]
    profile = (profile - profile.min()) / max(1e-12, np.ptp(profile))
    low, high = settings.thickness
    thickness = low + (high - low) * profile
    bend = np.stack([fields[1], fields[2]], -1)
    bend *= settings.tilt / max(1e-12, np.linalg.norm(bend, axis=-1).max())

    q = settings.size
    time_frac = (np.arange(n_rx * n_ry) / (n_rx * n_ry)).reshape(n_rx, n_ry)
    descan = rng.uniform(-1, 1, (2, 2)) * 0.012 * q
    origin = np.stack(
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
    )
    return ScanMaps(
        variant=centre.astype(np.int8),
        weights=weights,
        truth=VARIANT_CLASS[centre],
        thickness=thickness.astype(np.float32),
        tilt=bend.astype(np.float32),
        origin=origin.astype(np.float32),
        current=(1.0 + 0.04 * fields[3]).astype(np.float32),
        azimuth=float(rng.uniform(-4.0, 4.0)),
    )


# -- rendering ---------------------------------------------------------------------------
def _rotation(degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


@dataclass
class _Variant:
    op: np.ndarray  # (2, 2) canonical lab frame -> detector frame
    phase: PhaseData
    volume: torch.Tensor  # (1, 1, G * T, N, N): the phase's rocking curves, beam-major
    beams: torch.Tensor  # (K,) indices of the beams that can reach the detector
    centres: torch.Tensor  # (K, 2) their disk centres relative to the origin, pixels
    thickness_step: float  # nm between exit planes
    diffuse: torch.Tensor  # (P, Q, Q) diffuse background centred on the detector
    diffuse_planes: np.ndarray  # (P,) library planes held in ``diffuse``


class PatternModel:
    """Noise-free patterns of every variant on the detector, from the library.

    ``azimuth`` (degrees) rotates the crystal about the beam relative to the detector.
    """

    def __init__(self, settings: MultisliceSettings, library: Library, azimuth: float) -> None:
        from scipy.ndimage import map_coordinates

        self.settings = settings
        self.library = library
        q = settings.size
        self.q = q
        self.pixel = settings.pixel_mrad()
        self.wavelength = library.wavelength
        axis = library.directions_mrad
        self.axis0 = float(axis[0])
        self.step = float(axis[1] - axis[0])
        self.n_dir = len(axis)
        self.detector = detector_model(q, settings.seed)
        # every disk is drawn on the pixels within one pixel of its rim
        self.radius_px = settings.semiangle / self.pixel
        reach = math.ceil(self.radius_px + 1.0)
        grid = torch.arange(-reach, reach + 1, dtype=torch.float32)
        offsets = torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
        self.offsets = offsets[torch.linalg.norm(offsets, dim=-1) <= self.radius_px + 1.5]
        volumes = {
            name: torch.from_numpy(
                np.ascontiguousarray(
                    np.nan_to_num(phase.intensity).transpose(3, 0, 1, 2), dtype=np.float32
                )
            ).reshape(1, 1, -1, self.n_dir, self.n_dir)
            for name, phase in library.phases.items()
        }
        rotation = _rotation(azimuth)
        k_pixel = self.pixel * 1e-3 / self.wavelength  # 1/A per detector pixel
        yy, xx = np.meshgrid(np.arange(q) - q / 2, np.arange(q) - q / 2)
        radius = settings.semiangle / self.pixel
        span = math.ceil(radius) + 1
        ax = np.arange(-span, span + 1)
        disk = (np.hypot(*np.meshgrid(ax, ax, indexing="ij")) <= radius).astype(np.float32)
        disk = torch.from_numpy(disk / disk.sum())[None, None]
        self.variants: list[_Variant] = []
        for v in range(len(VARIANTS)):
            op = rotation @ VARIANT_OPS[v]
            phase = library.phases[VARIANT_PHASE[v]]
            g_det = phase.g @ op.T  # 1/A in the detector frame
            centres = g_det * self.wavelength * 1e3 / self.pixel
            keep = np.linalg.norm(centres, axis=1) <= q / math.sqrt(2) + radius + 0.05 * q + 2
            step_nm = float(phase.thickness_nm[1] - phase.thickness_nm[0])
            planes = np.arange(len(phase.thickness_nm))
            # diffuse: sample the canonical map at O^-1 k for every detector pixel
            k = np.stack([xx, yy], -1) * k_pixel  # (Q, Q, 2) detector frame
            k_canonical = k @ op  # O^-1 k as row vectors (O orthogonal)
            dk = phase.diffuse_step
            cx, cy = (np.array(phase.diffuse.shape[1:]) - 1) / 2
            coords = [cx + k_canonical[..., 0] / dk[0], cy + k_canonical[..., 1] / dk[1]]
            images = []
            for p in planes:
                density = map_coordinates(phase.diffuse[p], coords, order=1, mode="constant")
                image = density * k_pixel**2  # fraction of the beam per pixel
                images.append(image)
            self.variants.append(
                _Variant(
                    op=op,
                    phase=phase,
                    volume=volumes[VARIANT_PHASE[v]],
                    beams=torch.from_numpy(np.flatnonzero(keep)),
                    centres=torch.from_numpy(centres[keep].astype(np.float32)),
                    thickness_step=step_nm,
                    diffuse=torch.nn.functional.conv2d(
                        torch.from_numpy(np.array(images, dtype=np.float32))[:, None],
                        disk,
                        padding=span,
                    )[:, 0].clamp(min=0),
                    diffuse_planes=planes,
                )
            )
        sigma = 0.6  # detector point-spread, pixels
        kernel = torch.arange(-3, 4, dtype=torch.float32)
        kernel = torch.exp(-0.5 * (kernel / sigma) ** 2)
        self.psf = kernel / kernel.sum()

    def _disks(
        self, var: _Variant, origin: torch.Tensor, tilt: torch.Tensor, thickness: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Detector pixels (n, K*S, 2) and their share of the beam (n, K*S) for every disk.

        Pixel q of disk g reads beam g's rocking curve at the incident direction
        ``O^-1 (q - centre_g + t)`` and the position's thickness: one trilinear
        ``grid_sample`` over (thickness, direction) for all beams and pixels, the beams laid
        end to end along the depth axis so that interpolation never mixes two of them. The
        share is weighted by the part of the pixel inside the aperture, normalised per disk.
        """
        n = origin.shape[0]
        t_count = var.phase.intensity.shape[0]
        nd = self.n_dir
        centres = origin[:, None, :] + var.centres[None]  # (n, K, 2)
        pixels = torch.floor(centres)[:, :, None, :] + self.offsets  # (n, K, S, 2)
        kappa = (pixels - centres[:, :, None, :]) * self.pixel  # mrad
        r = torch.linalg.norm(kappa, dim=-1)
        aperture = ((self.settings.semiangle - r) / self.pixel + 0.5).clamp(0.0, 1.0)
        aperture = aperture / aperture.sum(-1, keepdim=True)
        rim = (self.settings.semiangle * 0.999 / r.clamp(min=1e-9)).clamp(max=1.0)
        op = torch.from_numpy(var.op.astype(np.float32))
        d = (kappa * rim[..., None] + tilt[:, None, None, :]) @ op  # O^-1 (kappa + t)
        index = ((d - self.axis0) / self.step).clamp(0, nd - 1)  # (n, K, S, 2): (i, j)
        p = (thickness / var.thickness_step).clamp(0, t_count - 1)  # (n,)
        depth = (var.beams[None, :, None] * t_count + p[:, None, None]).expand_as(r)  # (n, K, S)
        grid = torch.stack(
            [
                index[..., 1] / (nd - 1) * 2 - 1,
                index[..., 0] / (nd - 1) * 2 - 1,
                depth / (var.volume.shape[2] - 1) * 2 - 1,
            ],
            -1,
        )[None]  # (1, n, K, S, 3): (W = j, H = i, D = beam * T + plane)
        values = torch.nn.functional.grid_sample(
            var.volume, grid, mode="bilinear", align_corners=True
        )[0, 0]  # (n, K, S)
        share = values * aperture
        return pixels.long().reshape(n, -1, 2), share.reshape(n, -1)

    def _diffuse(
        self, var: _Variant, origin: torch.Tensor, thickness: torch.Tensor
    ) -> torch.Tensor:
        """Diffuse background (n, Q, Q), shifted to each origin."""
        q = self.q
        planes = var.diffuse_planes
        p = (thickness / var.thickness_step - planes[0]).clamp(0, len(planes) - 1.0001)
        p0 = torch.floor(p)
        fp = (p - p0)[:, None, None]
        p0 = p0.long()
        images = var.diffuse[p0] * (1 - fp) + var.diffuse[p0 + 1] * fp  # (n, Q, Q)
        shift = origin - q / 2  # pixels
        ramp = torch.arange(q, dtype=torch.float32)
        gx = ((ramp[None, :] - shift[:, :1]) + 0.5) / q * 2 - 1  # rows
        gy = ((ramp[None, :] - shift[:, 1:]) + 0.5) / q * 2 - 1  # columns
        grid = torch.stack([gy[:, None, :].expand(-1, q, -1), gx[:, :, None].expand(-1, -1, q)], -1)
        return torch.nn.functional.grid_sample(
            images[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )[:, 0]

    def add(
        self,
        image: torch.Tensor,
        rows: np.ndarray,
        variant: int,
        origin: np.ndarray,
        tilt: np.ndarray,
        thickness: np.ndarray,
        scale: np.ndarray,
    ) -> None:
        """Add ``scale`` (electrons) times the pattern of ``variant`` to ``image[rows]``, for
        pattern origins (pixels), tilts (mrad) and thicknesses (nm) per row."""
        q = self.q
        var = self.variants[variant]
        origin_t = torch.from_numpy(np.asarray(origin, np.float32).reshape(-1, 2))
        tilt_t = torch.from_numpy(np.asarray(tilt, np.float32).reshape(-1, 2))
        thickness_t = torch.from_numpy(np.asarray(thickness, np.float32).reshape(-1))
        scale_t = torch.from_numpy(np.asarray(scale, np.float32).reshape(-1))
        rows_t = torch.from_numpy(np.asarray(rows)).long()
        for chunk in range(0, len(rows_t), 32):
            sl = slice(chunk, chunk + 32)
            pixels, share = self._disks(var, origin_t[sl], tilt_t[sl], thickness_t[sl])
            share = share * scale_t[sl, None]
            inside = (
                (pixels[..., 0] >= 0)
                & (pixels[..., 0] < q)
                & (pixels[..., 1] >= 0)
                & (pixels[..., 1] < q)
            )
            index = rows_t[sl, None].expand_as(share)
            flat = (index * q + pixels[..., 0]) * q + pixels[..., 1]
            image.view(-1).index_add_(0, flat[inside], share[inside])
            diffuse = self._diffuse(var, origin_t[sl], thickness_t[sl])
            image[rows_t[sl]] += diffuse * scale_t[sl, None, None]

    def pattern(
        self,
        variant: int,
        thickness: float,
        tilt: tuple[float, float] = (0.0, 0.0),
        origin: tuple[float, float] | None = None,
    ) -> np.ndarray:
        """One noise-free pattern (Q, Q), as a fraction of the incident beam per pixel,
        before the detector's blur; the origin defaults to the detector centre."""
        image = torch.zeros((1, self.q, self.q))
        centre = (self.q / 2, self.q / 2) if origin is None else origin
        self.add(
            image,
            np.array([0]),
            variant,
            np.array([centre]),
            np.array([tilt]),
            np.array([thickness]),
            np.array([1.0]),
        )
        return image[0].numpy()

    def record(self, expected: torch.Tensor, seed: np.random.SeedSequence) -> np.ndarray:
        """The detector: point-spread (separable Gaussian), gain, defects, counting noise."""
        blurred = torch.nn.functional.conv2d(
            expected[:, None], self.psf.view(1, 1, -1, 1), padding=(3, 0)
        )
        blurred = torch.nn.functional.conv2d(blurred, self.psf.view(1, 1, 1, -1), padding=(0, 3))
        return self.detector.record(blurred[:, 0].clamp_(min=0), seed)


def render(
    model: PatternModel, maps: ScanMaps, start: int, stop: int, seed: np.random.SeedSequence
) -> np.ndarray:
    """Counts for flat positions ``start..stop`` (uint16, (n, Q, Q))."""
    s, q = model.settings, model.q
    index = np.arange(start, stop)
    rx, ry = np.divmod(index, s.scan[1])
    expected = torch.zeros((len(index), q, q))
    dose = s.dose * maps.current[rx, ry]
    weights = maps.weights[rx, ry]  # (n, 5)
    for v in range(len(VARIANTS)):
        local = np.flatnonzero(weights[:, v] > 1e-3)
        if len(local):
            model.add(
                expected,
                local,
                v,
                maps.origin[rx[local], ry[local]],
                maps.tilt[rx[local], ry[local]],
                maps.thickness[rx[local], ry[local]],
                dose[local] * weights[local, v],
            )
    return model.record(expected, seed)


# -- writing --------------------------------------------------------------------------------
def polarization_map(maps: ScanMaps) -> np.ndarray:
    """Mean polarization direction under the probe (Rx, Ry, 2) in detector axes (Qx, Qy),
    unit length in a single polar domain, zero in the parent phase."""
    rotation = _rotation(maps.azimuth)
    vectors = np.array([rotation @ op @ np.array([1.0, 0.0]) for op in VARIANT_OPS])
    vectors[4] = 0.0
    return (maps.weights @ vectors).astype(np.float32)


def simulate_multislice(
    out: str | Path,
    settings: MultisliceSettings,
    library: Library,
    progress: Progress | None = None,
    truth_npy: str | Path | None = None,
) -> Path:
    """Write a multislice scan composed from ``library`` to ``out`` (HDF5), atomically."""

    out = Path(out)
    check_library(settings, library.spec)
    check_output(out, settings)
    maps = scan_maps(settings)
    threads = torch.get_num_threads()
    # small tensor operations: extra threads only add contention (10x slower on a busy machine)
    torch.set_num_threads(1)
    try:
        _write_scan(out, settings, library, maps, progress)
    finally:
        torch.set_num_threads(threads)
    if truth_npy is not None:
        np.save(truth_npy, maps.truth)
    return out


def _write_scan(
    out: Path,
    settings: MultisliceSettings,
    library: Library,
    maps: ScanMaps,
    progress: Progress | None,
) -> None:

    model = PatternModel(settings, library, maps.azimuth)
    n_rx, n_ry = settings.scan
    q = settings.size
    total = n_rx * n_ry
    batch = max(1, min(256, 8192 * 128 * 128 // (q * q) // 32))
    seeds = np.random.SeedSequence([settings.seed, 6]).spawn((total + batch - 1) // batch)
    reserve = total * q * q * 2  # the uint16 counts, about the whole file
    with atomic_output(out, reserve=reserve) as tmp, hdf5_file(tmp) as output:
        f = output.file
        f.attrs["ghosttui_simulation"] = FORMAT_VERSION
        data = f.create_dataset("data", (n_rx, n_ry, q, q), dtype="uint16", chunks=(1, n_ry, q, q))
        data.attrs["R_pixel_size"] = settings.step
        data.attrs["R_pixel_units"] = "nm"
        data.attrs["Q_pixel_size"] = settings.pixel_mrad() * 1e-3 / library.wavelength
        data.attrs["Q_pixel_units"] = "A^-1"
        for i, start in enumerate(range(0, total, batch)):
            stop = min(total, start + batch)
            write_flat(data, start, render(model, maps, start, stop, seeds[i]), n_ry)
            output.check()
            if progress is not None:
                progress(stop, total)
        truth = f.create_dataset("truth", data=maps.truth)
        truth.attrs["classes"] = ",".join(settings.classes)
        variant = f.create_dataset("variant", data=maps.variant)
        variant.attrs["variants"] = ",".join(VARIANTS)
        f.create_dataset("variant_weights", data=maps.weights)
        f.create_dataset("polarization", data=polarization_map(maps))
        f.create_dataset("thickness_nm", data=maps.thickness)
        f.create_dataset("tilt_mrad", data=maps.tilt)
        f.create_dataset("origin", data=maps.origin)
        sim = f.create_group("simulation")
        for key, value in asdict(settings).items():
            if value is None:
                continue
            sim.attrs[key] = list(value) if isinstance(value, tuple) else value
        sim.attrs["physics"] = "multislice"
        sim.attrs["library"] = json.dumps(asdict(library.spec))
        sim.attrs["library_file"] = library.path.name
        sim.attrs["abtem_version"] = library.abtem_version
        sim.attrs["azimuth_deg"] = maps.azimuth
        sim.attrs["pixel_mrad"] = settings.pixel_mrad()
        sim.attrs["wavelength_A"] = library.wavelength
        sim.attrs["footprint_sigma_nm"] = footprint_sigma(settings)
        sim.attrs["hot_pixels"] = model.detector.hot_index
        sim.attrs["axes"] = (
            "data is (Rx, Ry, Qx, Qy); horizontal = polarization along Qy (image columns), "
            "vertical = along Qx (rows)"
        )
