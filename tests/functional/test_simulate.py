"""The simulator: deterministic, its truth well formed, and its truth matching its data."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from conftest import SIM_SETTINGS

from ghosttui.data import open_scan
from ghosttui.errors import GhostError
from ghosttui.simulate import (
    CLASSES,
    HORIZONTAL,
    NONE,
    VERTICAL,
    SimulationSettings,
    domain_truth,
    simulate,
)

TINY = SimulationSettings(scan=(8, 6), size=32, seed=1, ghost_strength=0.05)


def read(path, name):
    with h5py.File(path, "r") as f:
        return f[name][()]


# -- determinism and file layout ------------------------------------------------------------------
def test_same_seed_same_file_content(tmp_path):
    a = simulate(tmp_path / "a.h5", TINY)
    b = simulate(tmp_path / "b.h5", TINY)
    for name in ("data", "truth", "ghost_strength", "origin"):
        assert read(a, name).tobytes() == read(b, name).tobytes(), name


def test_different_seed_different_data(tmp_path):
    a = simulate(tmp_path / "a.h5", TINY)
    b = simulate(tmp_path / "b.h5", SimulationSettings(scan=(8, 6), size=32, seed=2))
    assert not np.array_equal(read(a, "data"), read(b, "data"))


def test_file_layout(sim_file):
    with h5py.File(sim_file, "r") as f:
        data, truth = f["data"], f["truth"]
        assert data.shape == (24, 16, 64, 64) and data.dtype == np.uint16
        assert truth.shape == (24, 16) and truth.dtype == np.int8
        assert truth.attrs["classes"] == "horizontal,vertical,none"
        assert set(np.unique(truth[()])) <= {0, 1, 2}
        assert f["ghost_strength"].shape == (24, 16)
        assert f["origin"].shape == (24, 16, 2)
        attrs = f["simulation"].attrs
        assert list(attrs["scan"]) == [24, 16] and attrs["size"] == 64 and attrs["seed"] == 11
        assert data.attrs["R_pixel_units"] == "nm"
        assert data.attrs["Q_pixel_size"] > 0
        stored_truth = truth[()]
        strength = f["ghost_strength"][()]
    assert np.array_equal(stored_truth, domain_truth(SIM_SETTINGS)[0])
    assert np.all(strength[stored_truth == NONE] == 0)
    assert np.all(strength[stored_truth != NONE] >= 0)
    assert strength.max() <= SIM_SETTINGS.ghost_strength + 1e-6
    # and ghosttui reads it as any HDF5 scan
    with open_scan(sim_file) as scan:
        assert scan.shape == (24, 16, 64, 64)
        assert scan.calibration.r_pixel_size == 1.0


def test_truth_npy_is_the_same_array(tmp_path):
    out = simulate(tmp_path / "s.h5", TINY, truth_npy=tmp_path / "truth.npy")
    from_npy = np.load(tmp_path / "truth.npy")
    assert from_npy.dtype == np.int8
    assert np.array_equal(from_npy, read(out, "truth"))


def test_progress_reaches_the_total(tmp_path):
    seen = []
    simulate(tmp_path / "s.h5", TINY, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (48, 48)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"geometry": "spiral"}, "unknown --geometry 'spiral'"),
        ({"size": 16}, "--size must be at least 32"),
        ({"scan": (3, 10)}, "--scan must be at least 4x4"),
        ({"classes": ("a", "a", "b")}, "three distinct classes"),
    ],
)
def test_bad_settings(kwargs, fragment):
    with pytest.raises(GhostError, match=fragment):
        SimulationSettings(**kwargs)


def test_bad_output_names(tmp_path):
    with pytest.raises(GhostError, match=r"ending in \.h5"):
        simulate(tmp_path / "scan.npy", TINY)
    with pytest.raises(GhostError, match="output folder does not exist"):
        simulate(tmp_path / "no" / "scan.h5", TINY)


def test_failed_simulation_leaves_the_old_file(tmp_path, monkeypatch):
    import ghosttui.simulate.kinematic as simulate_module

    out = tmp_path / "scan.h5"
    out.write_bytes(b"an earlier result")

    def broken(self, start, stop, seed):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(simulate_module._Renderer, "render", broken)
    with pytest.raises(RuntimeError):
        simulate(out, TINY)
    assert out.read_bytes() == b"an earlier result"
    assert [p.name for p in tmp_path.iterdir()] == ["scan.h5"]


# -- domain geometries ---------------------------------------------------------------------------
@pytest.mark.parametrize("geometry", ["wall", "stripes", "needles"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_geometry_has_all_three_classes(geometry, seed):
    settings = SimulationSettings(scan=(60, 40), size=64, geometry=geometry, seed=seed)
    truth, strength = domain_truth(settings)
    counts = np.bincount(truth.ravel(), minlength=3)
    assert len(counts) == 3 and (counts >= 20).all(), counts
    assert strength.min() >= 0 and strength.max() <= 1
    assert (strength[truth == NONE] == 0).all()
    assert (strength[truth != NONE] > 0.9).any()  # far from walls the ghosts are at full strength


@pytest.mark.parametrize("seed", [0, 3, 8])
def test_wall_vertical_above_horizontal_below(seed):
    truth, _ = domain_truth(SimulationSettings(scan=(60, 40), size=64, geometry="wall", seed=seed))
    assert (truth[:15] == VERTICAL).all()
    assert (truth[-15:] == HORIZONTAL).all()
    for column in truth.T:  # down every column: vertical, then a band of none, then horizontal
        changes = column[np.flatnonzero(np.diff(column)) + 1]
        assert column[0] == VERTICAL and list(changes) == [NONE, HORIZONTAL], column
        band = np.flatnonzero(column == NONE)
        assert 2 <= len(band) <= 8 and 20 <= band.mean() <= 40


# -- the ghost disks are where the truth says they are ---------------------------------------------
def disk_means(image: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    """Mean of ``image`` (N, Q, Q) over disks of ``radius`` around sub-pixel ``centres``
    (N, P, 2); NaN for disks that are not wholly on the detector."""
    n, q = image.shape[0], image.shape[1]
    reach = int(np.ceil(radius)) + 1
    grid = np.arange(-reach, reach + 1)
    base = np.floor(centres).astype(int)
    px = base[..., 0, None, None] + grid[:, None]  # (N, P, W, 1)
    py = base[..., 1, None, None] + grid[None, :]  # (N, P, 1, W)
    inside = np.hypot(px - centres[..., 0, None, None], py - centres[..., 1, None, None])
    inside = inside <= radius
    on_detector = (px >= 0) & (px < q) & (py >= 0) & (py < q)
    whole = (on_detector | ~inside).all(axis=(2, 3))
    batch = np.arange(n)[:, None, None, None]
    values = image[batch, np.clip(px, 0, q - 1), np.clip(py, 0, q - 1)]
    sums = np.nansum(np.where(inside, values, 0.0), axis=(2, 3))
    counts = np.sum(inside & ~np.isnan(values), axis=(2, 3))
    return np.where(whole, sums / np.maximum(counts, 1), np.nan)


def disk_contrast(image, origin, points, across, radius):
    """Per pattern: mean over ``points`` of (counts in a disk at the point) minus (counts at
    the two points half a lattice step ``across`` to either side, where no disk ever is)."""
    centres = origin[:, None, :] + points[None]
    here = disk_means(image, centres, radius)
    side = 0.5 * (
        disk_means(image, centres + 0.5 * across, radius)
        + disk_means(image, centres - 0.5 * across, radius)
    )
    return np.nanmean(here - side, axis=1)


@pytest.fixture(scope="module")
def ghost_scan(tmp_path_factory):
    path = tmp_path_factory.mktemp("ghosts") / "ghosts.h5"
    settings = SimulationSettings(scan=(40, 24), size=128, seed=7, ghost_strength=0.05)
    simulate(path, settings)
    with h5py.File(path, "r") as f:
        sim = f["simulation"].attrs
        hot = np.asarray(sim["hot_pixels"])
        data = f["data"][()].astype(np.float32)
        data = data.reshape(-1, 128 * 128)
        data[:, hot] = np.nan  # detector defects the simulator reports; not part of the signal
        return {
            "data": data.reshape(-1, 128, 128),
            "truth": f["truth"][()].ravel(),
            "strength": f["ghost_strength"][()].ravel(),
            "origin": f["origin"][()].reshape(-1, 2).astype(np.float64),
            "a": np.asarray(sim["a_star"], float),
            "b": np.asarray(sim["b_star"], float),
            "radius": float(sim["disk_radius"]),
            "nudge": float(sim["ghost_nudge"]),
            "ghost_strength": float(sim["ghost_strength"]),
        }


@pytest.mark.slow
def test_ghost_disks_are_where_the_truth_says(ghost_scan):
    """Measure, in every pattern, the counts at the horizontal-ghost positions
    G + (1/2 + nudge) a* and the vertical-ghost positions G + (1/2 + nudge) b* (G a lattice
    vector), each against background half a lattice step to either side, and compare
    with the Bragg disks at G themselves.

    Thresholds, all in units of a full-strength ghost (``ghost_strength`` times the
    pattern's own Bragg-disk contrast): a class shows its ghosts if their mean contrast
    is above 0.3, and does not show the other kind if that stays below 0.15 (the
    measurement's own offset on ghost-free patterns is about 0.05). Per pattern, "none"
    if both contrasts are below 0.25, else the larger one names the class.
    """
    s = ghost_scan
    a, b, nudge = s["a"], s["b"], s["nudge"]
    n = int(np.ceil(128 / min(np.linalg.norm(a), np.linalg.norm(b))))
    hk = np.array([(h, k) for h in range(-n, n + 1) for k in range(-n, n + 1)], float)
    lattice = hk[:, :1] * a + hk[:, 1:] * b
    near = np.linalg.norm(lattice, axis=1) < 0.5 * 128 + 4  # (partly) on the detector
    hk, lattice = hk[near], lattice[near]
    bragg = lattice[np.any(hk != 0, axis=1)]  # the direct beam is not a Bragg disk
    r = 0.8 * s["radius"]

    h_signal = disk_contrast(s["data"], s["origin"], lattice + (0.5 + nudge) * a, b, r)
    v_signal = disk_contrast(s["data"], s["origin"], lattice + (0.5 + nudge) * b, a, r)
    bragg_signal = disk_contrast(s["data"], s["origin"], bragg, a + b, r)
    assert (bragg_signal > 0).all()
    full = s["ghost_strength"] * bragg_signal  # a full-strength ghost, per pattern
    h, v = h_signal / full, v_signal / full
    truth, strength = s["truth"], s["strength"]
    for cls in (HORIZONTAL, VERTICAL, NONE):
        assert (truth == cls).sum() >= 50, CLASSES[cls]

    # (a) averaged over each truth class
    assert h[truth == HORIZONTAL].mean() > 0.3
    assert abs(v[truth == HORIZONTAL].mean()) < 0.15
    assert v[truth == VERTICAL].mean() > 0.3
    assert abs(h[truth == VERTICAL].mean()) < 0.15
    assert abs(h[truth == NONE].mean()) < 0.15
    assert abs(v[truth == NONE].mean()) < 0.15

    # (b) pattern by pattern
    predicted = np.where(h > v, HORIZONTAL, VERTICAL)
    predicted = np.where(np.maximum(h, v) < 0.25, NONE, predicted)
    strong = strength >= 0.5 * strength.max()  # upper half of the ghost strength range
    assert strong.sum() >= 300
    assert (predicted[strong] == truth[strong]).mean() > 0.95
    assert (predicted[truth == NONE] == NONE).mean() > 0.9

    # (c) the ghosts are as bright as /ghost_strength says (relative to the Bragg disks)
    for cls, signal in ((HORIZONTAL, h_signal), (VERTICAL, v_signal)):
        chosen = strong & (truth == cls)
        ratio = signal[chosen] / (strength[chosen] * bragg_signal[chosen])
        assert 0.7 < np.median(ratio) < 1.3, (CLASSES[cls], np.median(ratio))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_patches_geometry_has_non_polar_patches(seed):
    """``patches``: stripes plus patches of the non-polar phase, far bigger than the walls."""
    settings = SimulationSettings(scan=(60, 40), size=64, geometry="patches", seed=seed)
    truth, strength = domain_truth(settings)
    stripes, _ = domain_truth(
        SimulationSettings(scan=(60, 40), size=64, geometry="stripes", seed=seed)
    )
    counts = np.bincount(truth.ravel(), minlength=3)
    assert (counts >= 20).all(), counts
    assert (truth == NONE).sum() > (stripes == NONE).sum() + 50  # the patches add non-polar area
    assert (strength[truth == NONE] == 0).all() and strength.max() <= 1
