"""The multislice simulator: physics of the library, its symmetry copies, composition, errors.

A tiny static library (2 x 2 cells, 0.1 A sampling, up to 4 nm, directions within 1 mrad,
no phonons) is built once for the module: a few seconds.
"""

from __future__ import annotations

import math
import sys

import h5py
import numpy as np
import pytest
from conftest import assert_one_line_error

from ghosttui.data import open_scan
from ghosttui.errors import GhostError
from ghosttui.simulate import library as library_module
from ghosttui.simulate.compose import (
    MultisliceSettings,
    PatternModel,
    check_library,
    scan_maps,
    simulate_multislice,
)
from ghosttui.simulate.layouts import HORIZONTAL, NONE, VARIANT_CLASS, VERTICAL
from ghosttui.simulate.library import (
    LibrarySpec,
    build_library,
    ensure_library,
    library_dir,
    load_library,
)
from ghosttui.simulate.structures import (
    MIRROR_X,
    PTO,
    ROTATE_90,
    fractional_sites,
    get_structure,
    lab_cell,
    polarization_sign,
    unit_cell,
)

TINY_SPEC = LibrarySpec(
    max_thickness_nm=4.0,
    max_angle_mrad=1.0,
    beam_angle_mrad=20.0,
    cells=(2, 2),
    sampling=0.1,
    phonon_configs=0,
)
# a scan that fits the tiny library: 0.375 mrad pixels, disks 3.2 pixels across
TINY_SCAN = MultisliceSettings(
    scan=(24, 16),
    size=64,
    thickness=(1.0, 4.0),
    tilt=0.3,
    semiangle=0.6,
    detector_angle=12.0,
    dose=1e5,
    seed=3,
)


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ms-cache")


@pytest.fixture(scope="module")
def tiny(tiny_cache):
    pytest.importorskip("abtem")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GHOSTTUI_CACHE_DIR", str(tiny_cache))
        return load_library(build_library(TINY_SPEC))


@pytest.fixture
def use_tiny_cache(tiny, tiny_cache, monkeypatch):
    monkeypatch.setenv("GHOSTTUI_CACHE_DIR", str(tiny_cache))
    return tiny


# -- measuring the polar signal -------------------------------------------------------------
def disk_sums(model: PatternModel, image: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Counts in a disk (aperture radius + 1 pixel) around the pattern origin + each g (px)."""
    q = model.q
    xx, yy = np.meshgrid(np.arange(q) - q / 2, np.arange(q) - q / 2, indexing="ij")
    radius = model.settings.semiangle / model.pixel + 1
    return np.array([image[np.hypot(xx - gx, yy - gy) <= radius].sum() for gx, gy in g])


def friedel(model: PatternModel, image: np.ndarray, axis: int, cell: float, h: int = 1):
    """(I(+h) - I(-h)) and I(+h) + I(-h) for the disks along detector ``axis``."""
    g = h / cell * model.wavelength * 1e3 / model.pixel
    vector = np.zeros(2)
    vector[axis] = g
    plus, minus = disk_sums(model, image, np.array([vector, -vector]))
    return plus - minus, plus + minus


@pytest.fixture(scope="module")
def model(tiny):
    return PatternModel(TINY_SCAN, tiny, azimuth=0.0)


# -- structures ---------------------------------------------------------------------------
def test_published_parameters_and_polar_axis():
    pto = get_structure("pto")
    assert (pto.polar.a, pto.polar.c, pto.polar.dz) == (3.904, 4.152, (0.040, 0.112, 0.112))
    assert pto.polar.space_group == "P4mm" and pto.parent.space_group == "Pm-3m"
    bto = get_structure("BTO")
    assert (bto.polar.a, bto.polar.c) == (3.9998, 4.0180)
    for structure in (pto, bto):
        # the canonical polar cell has +P along +x; the parent has no dipole
        assert polarization_sign(fractional_sites(structure, "polar"), structure) == 1.0
        assert polarization_sign(fractional_sites(structure, "parent"), structure) == 0.0
        atoms = unit_cell(structure, "polar")
        assert sorted(atoms.get_chemical_symbols()) == sorted(
            [structure.a_site, structure.b_site, "O", "O", "O"]
        )
        assert np.allclose(atoms.cell.lengths(), lab_cell(structure, "polar"))
    with pytest.raises(GhostError, match="unknown --structure 'lno'"):
        get_structure("lno")


# -- the library ----------------------------------------------------------------------------
@pytest.mark.slow
def test_library_layout(tiny):
    polar, parent = tiny.phases["polar"], tiny.phases["parent"]
    n = len(tiny.directions_mrad)
    assert polar.intensity.shape == (len(polar.thickness_nm), n, n, len(polar.beams))
    assert polar.thickness_nm[-1] >= 4.0 and parent.thickness_nm[-1] >= 4.0
    assert abs(tiny.wavelength - 0.02508) < 1e-4  # 200 keV
    centre = n // 2
    # the undiffracted beam holds everything at the entrance surface
    zero = [tuple(b) for b in polar.beams].index((0, 0))
    assert polar.intensity[0, centre, centre, zero] == pytest.approx(1.0, abs=1e-3)
    # intensity leaves the zero beam as the crystal gets thicker, none is created
    totals = np.nansum(polar.intensity[:, centre, centre], axis=-1)
    assert totals.max() <= 1.0 + 1e-3 and polar.intensity[-1, centre, centre, zero] < 0.9


@pytest.mark.slow
def test_library_matches_a_direct_simulation(tiny):
    """Values at grid directions (including symmetry copies the library never simulated)
    equal abTEM plane-wave runs at those directions."""
    compare_with_direct(tiny, operation=None)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "operation"), [("-P", MIRROR_X), ("P along y", ROTATE_90)])
def test_symmetry_copies_equal_resimulation(tiny, name, operation):
    """The pattern of the mirrored (-P) or rotated (P along y) structure, simulated from
    scratch, equals the library's canonical pattern transformed: I'_{O g}(O d) = I_g(d)."""
    compare_with_direct(tiny, operation=operation)


def compare_with_direct(tiny, operation):
    import abtem

    from ghosttui.simulate.library import _fft_size

    op = np.eye(2, dtype=int) if operation is None else np.asarray(operation)
    spec = tiny.spec
    polar = tiny.phases["polar"]
    cell = lab_cell(PTO, "polar")
    cells = np.abs(op) @ np.array(spec.cells)
    extent = np.abs(op) @ (np.array(spec.cells) * np.array(cell[:2]))
    nz = len(polar.thickness_nm) - 1
    atoms = unit_cell(PTO, "polar", operation) * (int(cells[0]), int(cells[1]), nz)
    gpts = tuple(_fft_size(math.ceil(e / spec.sampling)) for e in extent)
    potential = abtem.Potential(
        atoms,
        gpts=gpts,
        slice_thickness=(cell[2] / 2,) * (2 * nz),
        exit_planes=2,
        projection="infinite",
    )
    axis = tiny.directions_mrad
    centre = len(axis) // 2
    picks = [(centre, centre), (centre + 1, centre), (centre - 2, centre + 1), (centre, centre - 2)]
    directions = np.array([[axis[i], axis[j]] for i, j in picks])
    waves = abtem.PlaneWave(energy=200e3, tilt=directions @ op.T.astype(float))
    patterns = waves.multislice(
        potential, detectors=abtem.PixelatedDetector(max_angle=spec.beam_angle_mrad + 2), lazy=False
    )
    array = np.asarray(patterns.array).reshape(nz + 1, len(picks), *patterns.array.shape[-2:])
    kx, ky = array.shape[-2:]
    moved = polar.beams @ op.T
    bx = kx // 2 + moved[:, 0] * int(cells[0])
    by = ky // 2 + moved[:, 1] * int(cells[1])
    for k, (i, j) in enumerate(picks):
        for plane in (3, nz):
            direct = array[plane, k, bx, by]
            stored = polar.intensity[plane, i, j]
            strong = stored > 1e-4
            assert strong.sum() >= 10
            assert np.allclose(direct[strong], stored[strong], rtol=2e-3, atol=2e-6), (k, plane)


@pytest.mark.slow
def test_polar_signal_only_in_polar_cells_flips_with_p_and_grows(model, tiny):
    """The Friedel asymmetry I(g) - I(-g) of the first disks along the polar axis, at zero
    tilt: zero in the parent phase, opposite for +P and -P, the same along Qy for P along
    Qy, and growing from the thinnest crystal (where Friedel's law holds) to ~1 nm."""
    c_polar = tiny.phases["polar"].cell[0]
    c_parent = tiny.phases["parent"].cell[0]
    asymmetry = {}
    for t in (0.4, 0.8, 1.2, 4.0):
        plus, plus_sum = friedel(model, model.pattern(0, t), axis=0, cell=c_polar)
        minus, _ = friedel(model, model.pattern(1, t), axis=0, cell=c_polar)
        along_y, _ = friedel(model, model.pattern(2, t), axis=1, cell=c_polar)
        across, _ = friedel(model, model.pattern(2, t), axis=0, cell=tiny.phases["polar"].cell[1])
        parent, parent_sum = friedel(model, model.pattern(4, t), axis=0, cell=c_parent)
        total = model.pattern(0, t).sum()
        assert abs(parent) <= 1e-5 * parent_sum  # centrosymmetric: Friedel-symmetric (float32)
        assert abs(across) <= 1e-5 * plus_sum  # no asymmetry across the polar axis
        assert plus == pytest.approx(-minus, rel=1e-4)  # -P: the mirror image
        assert along_y == pytest.approx(plus, rel=1e-4)  # P along Qy: the rotated image
        asymmetry[t] = abs(plus) / total
    assert asymmetry[0.4] > 2e-5  # polar cells show it from the thinnest slab on
    assert asymmetry[0.4] < asymmetry[0.8] < asymmetry[1.2]
    assert asymmetry[4.0] > 2 * asymmetry[0.4]


@pytest.mark.slow
def test_pattern_conserves_the_beam(model):
    for variant in range(5):
        assert model.pattern(variant, 0.0).sum() == pytest.approx(1.0, abs=2e-3)
        assert 0.5 < model.pattern(variant, 4.0).sum() < 1.0


@pytest.mark.slow
def test_tilt_breaks_friedel_symmetry_even_in_the_parent(model, tiny):
    """A tilted centrosymmetric crystal is not Friedel-symmetric either: tilt, not only P,
    moves intensity between +g and -g (what a classifier must see through)."""
    c = tiny.phases["parent"].cell[0]
    straight, _ = friedel(model, model.pattern(4, 3.0), axis=0, cell=c)
    tilted, total = friedel(model, model.pattern(4, 3.0, tilt=(0.3, 0.0)), axis=0, cell=c)
    assert abs(straight) <= 1e-5 * total
    assert abs(tilted) > 1e-3 * total


@pytest.mark.slow
def test_phonon_library_is_symmetric_and_cached(tmp_path, monkeypatch):
    """Frozen phonons: a different library (its own file), still exactly symmetric where
    the structure is, and a second request builds nothing."""
    pytest.importorskip("abtem")
    monkeypatch.setenv("GHOSTTUI_CACHE_DIR", str(tmp_path))
    spec = LibrarySpec(
        max_thickness_nm=1.5,
        max_angle_mrad=0.5,
        beam_angle_mrad=15.0,
        cells=(2, 2),
        sampling=0.1,
        phonon_configs=2,
        batch=4,
    )
    steps = []
    first = ensure_library(spec, progress=lambda done, total: steps.append((done, total)))
    assert steps[-1][0] == steps[-1][1] > 0
    files = list(library_dir().iterdir())
    assert len(files) == 1 and files[0].name.startswith("pto-")

    def no_build(*args, **kwargs):
        raise AssertionError("built again")

    monkeypatch.setattr(library_module, "build_library", no_build)
    second = ensure_library(spec)
    assert np.array_equal(first.phases["polar"].intensity, second.phases["polar"].intensity, True)
    parent = first.phases["parent"]
    beams = [tuple(b) for b in parent.beams]
    n = parent.intensity.shape[1] // 2
    for h, k in ((1, 0), (1, 1), (2, 1)):
        a = parent.intensity[:, n, n, beams.index((h, k))]
        for other in ((-h, k), (k, h), (-k, -h), (h, -k)):
            assert np.array_equal(a, parent.intensity[:, n, n, beams.index(other)])
    # the thermal diffuse background is there, and symmetric too
    assert parent.diffuse[-1].sum() > 0
    assert np.allclose(parent.diffuse, parent.diffuse[:, ::-1, :])


def test_library_needs_abtem_only_to_build(tmp_path, monkeypatch):
    monkeypatch.setenv("GHOSTTUI_CACHE_DIR", str(tmp_path))
    monkeypatch.setitem(sys.modules, "abtem", None)
    monkeypatch.setattr(library_module, "abtem_version", lambda: None)
    with pytest.raises(GhostError, match=r"needs abTEM.*pip install 'ghosttui\[multislice\]'"):
        ensure_library(TINY_SPEC)
    assert not tmp_path.joinpath("multislice").exists() or not any(
        tmp_path.joinpath("multislice").iterdir()
    )


@pytest.mark.slow
def test_cached_library_is_used_without_abtem(use_tiny_cache, monkeypatch):
    monkeypatch.setitem(sys.modules, "abtem", None)
    monkeypatch.setattr(library_module, "abtem_version", lambda: None)
    library = ensure_library(TINY_SPEC)
    assert library.spec == TINY_SPEC


# -- composition ----------------------------------------------------------------------------
def test_layout_maps():
    settings = MultisliceSettings(scan=(60, 40), geometry="stripes", seed=2, stripe_angle=70.0)
    maps = scan_maps(settings)
    assert set(np.unique(maps.variant)) == {0, 1, 2, 3, 4}  # both signs of both axes, parent
    assert np.array_equal(maps.truth, VARIANT_CLASS[maps.variant])
    assert np.allclose(maps.weights.sum(-1), 1.0, atol=1e-5)
    single = maps.weights.max(-1) > 0.999
    mixed = maps.weights.max(-1) < 0.9
    assert single.mean() > 0.5 and mixed.any()  # the footprint mixes patterns at walls only
    assert maps.thickness.min() == pytest.approx(8.0) and maps.thickness.max() == pytest.approx(30)
    assert np.linalg.norm(maps.tilt, axis=-1).max() == pytest.approx(3.0, rel=1e-5)


@pytest.mark.slow
def test_composed_scan_file(use_tiny_cache, tmp_path):
    out = simulate_multislice(tmp_path / "ms.h5", TINY_SCAN, use_tiny_cache)
    with h5py.File(out, "r") as f:
        data, truth = f["data"], f["truth"]
        assert data.shape == (24, 16, 64, 64) and data.dtype == np.uint16
        assert data.chunks == (1, 16, 64, 64)
        assert truth.attrs["classes"] == "horizontal,vertical,none"
        variant = f["variant"][()]
        assert np.array_equal(truth[()], VARIANT_CLASS[variant])
        for name, shape in (
            ("variant_weights", (24, 16, 5)),
            ("polarization", (24, 16, 2)),
            ("thickness_nm", (24, 16)),
            ("tilt_mrad", (24, 16, 2)),
            ("origin", (24, 16, 2)),
        ):
            assert f[name].shape == shape, name
        polarization = f["polarization"][()]
        pure = f["variant_weights"][()].max(-1) > 0.999
        assert np.allclose(
            np.linalg.norm(polarization[pure & (truth[()] != NONE)], axis=-1), 1, atol=2e-3
        )
        assert np.allclose(polarization[pure & (truth[()] == NONE)], 0, atol=2e-3)
        assert f["simulation"].attrs["physics"] == "multislice"
        counts = data[()].reshape(-1, 64 * 64).sum(1)
        classes = set(np.unique(truth[()]))
    # most of the dose lands on the detector
    assert 0.5 * TINY_SCAN.dose < np.median(counts) < 1.2 * TINY_SCAN.dose
    assert {HORIZONTAL, VERTICAL} <= classes
    with open_scan(out) as scan:  # read like any HDF5 scan (ghosttui bench, label, ...)
        assert scan.shape == (24, 16, 64, 64)


@pytest.mark.slow
def test_composition_is_deterministic_per_seed(use_tiny_cache, tmp_path):
    a = simulate_multislice(tmp_path / "a.h5", TINY_SCAN, use_tiny_cache)
    b = simulate_multislice(tmp_path / "b.h5", TINY_SCAN, use_tiny_cache)
    other = MultisliceSettings(**{**TINY_SCAN.__dict__, "seed": 4})
    c = simulate_multislice(tmp_path / "c.h5", other, use_tiny_cache)
    with h5py.File(a) as fa, h5py.File(b) as fb, h5py.File(c) as fc:
        for name in ("data", "truth", "variant_weights", "thickness_nm", "tilt_mrad"):
            assert fa[name][()].tobytes() == fb[name][()].tobytes(), name
        assert not np.array_equal(fa["data"][()], fc["data"][()])


@pytest.mark.slow
def test_cli_multislice_end_to_end(use_tiny_cache, tmp_path, run_cli, monkeypatch):
    monkeypatch.setattr(MultisliceSettings, "library_spec", lambda self, **kw: TINY_SPEC)
    out = tmp_path / "cli.h5"
    result = run_cli(
        "simulate", out, "--physics", "multislice", "--scan", "8x6", "--size", "64",
        "--thickness", "1-4", "--tilt", "0.3", "--semiangle", "0.6", "--detector-angle", "12",
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "multislice" in result.out
    with h5py.File(out) as f:
        assert f["data"].shape == (8, 6, 64, 64)


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--physics", "bloch"], "unknown --physics 'bloch'"),
        (["--physics", "multislice", "--structure", "lno"], "unknown --structure 'lno'"),
        (["--physics", "multislice", "--thickness", "8-40"], "outside the library (0-30 nm)"),
        (["--physics", "multislice", "--thickness", "thick"], "--thickness must look like"),
        (["--physics", "multislice", "--thickness", "20-10"], "0 < MIN <= MAX"),
        (["--physics", "multislice", "--tilt", "4"], "outside the library (directions up to 5"),
        (["--physics", "multislice", "--semiangle", "3.5"], "disks overlap"),
        (
            ["--physics", "multislice", "--dose", "0"],
            "--dose (electrons per pattern) must be greater than 0",
        ),
        (["--physics", "multislice", "--dose", "-5"], "must be greater than 0 (got -5)"),
        (
            ["--physics", "multislice", "--dose", "nan"],
            "--dose (electrons per pattern) must be a finite number",
        ),
        (["--dose", "0"], "--dose (electrons per pattern) must be greater than 0"),
        (["--dose", "nan"], "must be a finite number (got nan)"),
        (["--physics", "multislice", "--scan", "200000x100000"], "memory"),
        (["--scan", "200000x100000"], "GiB of memory to lay out"),
        (["--physics", "multislice", "--geometry", "spiral"], "unknown --geometry 'spiral'"),
    ],
)
def test_bad_simulate_options(tmp_path, run_cli, args, fragment):
    out = tmp_path / "scan.h5"
    out.write_bytes(b"an earlier result")
    result = run_cli("simulate", out, *args)
    assert_one_line_error(result, fragment)
    assert out.read_bytes() == b"an earlier result"
    assert [p.name for p in tmp_path.iterdir()] == ["scan.h5"]


def test_too_large_for_the_disk(tmp_path, run_cli, monkeypatch):
    import shutil

    class Usage:
        free = 10 * 2**20

    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage)
    result = run_cli("simulate", tmp_path / "scan.h5", "--physics", "multislice")
    assert_one_line_error(result, "on disk", "free")
    assert list(tmp_path.iterdir()) == []


def test_library_limits_in_process():
    spec = LibrarySpec()
    check_library(MultisliceSettings(), spec)  # the defaults fit the default library
    with pytest.raises(GhostError, match="--library-thickness 41"):
        check_library(MultisliceSettings(thickness=(8.0, 40.5)), spec)
    with pytest.raises(GhostError, match="--library-angle 6"):
        check_library(MultisliceSettings(tilt=4.0), spec)
    with pytest.raises(GhostError, match="reaches beyond the library's beams"):
        check_library(MultisliceSettings(detector_angle=40.0), spec)
    with pytest.raises(GhostError, match="library is bto"):
        check_library(MultisliceSettings(), LibrarySpec(structure="bto"))
