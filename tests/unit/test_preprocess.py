"""Preprocessing: pooling keeps faint features, hot pixels are found and replaced, the direct
beam is found, bad crop windows are refused."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from ghosttui.data import open_scan
from ghosttui.errors import DataError
from ghosttui.patterns.detector import (
    DetectorSurvey,
    find_bad_pixels,
    find_direct_beam,
    repair_hot_pixels,
    survey,
)
from ghosttui.patterns.preprocess import PatternPipeline
from ghosttui.patterns.settings import PreprocessSettings, parse_crop


def flat_detector(shape: tuple[int, int]) -> DetectorSurvey:
    """A survey that found nothing: no hot pixels, beam in the middle."""
    return DetectorSurvey(shape, beam_centre=(shape[0] / 2, shape[1] / 2), beam_radius=4.0)


def disk(shape, centre, radius, value):
    rr, cc = np.indices(shape)
    return np.where(np.hypot(rr - centre[0], cc - centre[1]) <= radius, value, 0.0)


# -- pooling ------------------------------------------------------------------------------
@pytest.mark.parametrize("pooling", ["sum", "max"])
def test_pooling_keeps_a_one_pixel_spike(pooling):
    rng = np.random.default_rng(0)
    pattern = rng.poisson(10, (64, 64)).astype(np.float32)
    spike = (37, 22)
    pattern[spike] += 400
    settings = PreprocessSettings(size=16, pooling=pooling, hot_pixels=False)
    model_input, _ = PatternPipeline(settings, flat_detector((64, 64)))(pattern[None])
    out = model_input[0]
    where = (spike[0] // 4, spike[1] // 4)
    assert np.unravel_index(np.argmax(out), out.shape) == where
    others = np.delete(out.ravel(), np.ravel_multi_index(where, out.shape))
    assert out[where] > others.max() + 0.25  # stands out by a quarter of the output range


def test_sum_pooling_preserves_total_counts():
    rng = np.random.default_rng(1)
    patterns = rng.poisson(3, (5, 64, 64)).astype(np.uint16)
    patterns[2, 10, 50] = 5000
    settings = PreprocessSettings(size=16, transform="linear", normalise="none", hot_pixels=False)
    model_input, _ = PatternPipeline(settings, flat_detector((64, 64)))(patterns)
    assert np.allclose(model_input.sum(axis=(1, 2)), patterns.sum(axis=(1, 2)), rtol=1e-6)
    expected = patterns.reshape(5, 16, 4, 16, 4).sum(axis=(2, 4))
    assert np.allclose(model_input, expected)
    assert model_input[2, 2, 12] == expected[2, 2, 12] >= 5000


def test_max_pooling_keeps_the_peak_value():
    pattern = np.ones((64, 64), np.float32)
    pattern[5, 61] = 777
    settings = PreprocessSettings(size=8, pooling="max", transform="linear", normalise="none")
    model_input, _ = PatternPipeline(settings, flat_detector((64, 64)))(pattern[None])
    assert model_input[0, 0, 7] == 777
    assert np.count_nonzero(model_input[0] == 1) == 63


def test_sum_pooling_when_the_size_does_not_divide_the_detector():
    rng = np.random.default_rng(2)
    patterns = rng.poisson(5, (3, 50, 50)).astype(np.float32)
    patterns[:, 24, 31] += 300
    settings = PreprocessSettings(size=16, transform="linear", normalise="none", hot_pixels=False)
    model_input, _ = PatternPipeline(settings, flat_detector((50, 50)))(patterns)
    assert model_input.shape == (3, 16, 16)
    # about the total counts, and the spike is the brightest output pixel
    assert np.allclose(model_input.sum(axis=(1, 2)), patterns.sum(axis=(1, 2)), rtol=0.1)
    for out in model_input:
        r, c = np.unravel_index(np.argmax(out), out.shape)
        assert abs(r - 24 * 16 / 50) <= 1 and abs(c - 31 * 16 / 50) <= 1


def test_big_endian_and_native_counts_give_the_same_inputs():
    rng = np.random.default_rng(3)
    native = rng.integers(0, 65535, (4, 32, 32)).astype(np.uint16)
    pipeline = PatternPipeline(PreprocessSettings(size=16), flat_detector((32, 32)))
    a, va = pipeline(native)
    b, vb = pipeline(native.astype(">u2"))
    c, vc = pipeline(native.astype(np.float64))
    assert np.array_equal(a, b) and np.array_equal(va, vb)
    assert np.allclose(a, c) and np.allclose(va, vc)


def test_transforms_and_robust_normalisation():
    rng = np.random.default_rng(4)
    pattern = rng.poisson(50, (32, 32)).astype(np.float32)
    detector = flat_detector((32, 32))
    linear = PreprocessSettings(size=32, transform="linear", normalise="none", hot_pixels=False)
    sqrt = PreprocessSettings(size=32, transform="sqrt", normalise="none", hot_pixels=False)
    log = PreprocessSettings(size=32, transform="log", normalise="none", hot_pixels=False)
    assert np.allclose(PatternPipeline(linear, detector)(pattern[None])[0][0], pattern)
    assert np.allclose(PatternPipeline(sqrt, detector)(pattern[None])[0][0], np.sqrt(pattern))
    assert np.allclose(PatternPipeline(log, detector)(pattern[None])[0][0], np.log1p(pattern))
    robust = PreprocessSettings(size=32, transform="linear", hot_pixels=False)
    out = PatternPipeline(robust, detector)(pattern[None])[0][0]
    low_median = np.quantile(pattern, 0.5, method="lower")
    assert np.allclose(out, (pattern - low_median) / (np.quantile(pattern, 0.995) - low_median))


# -- hot and dead pixels -------------------------------------------------------------------
HOT = [(3, 40), (20, 20), (47, 5)]
DEAD = [(30, 33)]


@pytest.fixture
def scan_with_bad_pixels(tmp_path):
    rng = np.random.default_rng(5)
    n, q = 30, 48
    beam = disk((q, q), (24.3, 23.6), 6, 400.0)
    data = rng.poisson(30 + beam, (n, q, q)).astype(np.uint16)
    for r, c in HOT:
        data[:, r, c] = rng.integers(2000, 4000, n)
    for r, c in DEAD:
        data[:, r, c] = 0
    path = tmp_path / "bad_pixels.h5"
    with h5py.File(path, "w") as f:
        f["data"] = data.reshape(6, 5, q, q)
    return path, data


def test_survey_finds_exactly_the_hot_and_dead_pixels(scan_with_bad_pixels):
    path, _ = scan_with_bad_pixels
    with open_scan(path) as scan:
        found = survey(scan, PreprocessSettings())
        nothing = survey(scan, PreprocessSettings(hot_pixels=False))
    expected = sorted(r * 48 + c for r, c in HOT + DEAD)
    assert sorted(found.hot_pixels.tolist()) == expected
    assert nothing.hot_pixels.size == 0
    # the beam is not mistaken for hot pixels, and is found where it is
    assert found.beam_centre == pytest.approx((24.3, 23.6), abs=0.3)


def test_hot_pixels_are_replaced_by_their_neighbours(scan_with_bad_pixels):
    path, data = scan_with_bad_pixels
    settings = PreprocessSettings(size=48, transform="linear", normalise="none")
    with open_scan(path) as scan:
        pipeline = PatternPipeline(settings, survey(scan, settings))
        cleaned = pipeline.to_tensor(scan.read(0, 30)).numpy()
    for r, c in HOT + DEAD:
        neighbours = data[:, r - 1 : r + 2, c - 1 : c + 2].astype(float)
        neighbours[:, 1, 1] = np.nan
        assert np.allclose(cleaned[:, r, c], np.nanmean(neighbours, axis=(1, 2)), rtol=1e-5)
    untouched = np.ones((48, 48), bool)
    for r, c in HOT + DEAD:
        untouched[r, c] = False
    assert np.array_equal(cleaned[:, untouched], data[:, untouched].astype(np.float32))


def test_the_numpy_repair_is_the_pipelines_repair(scan_with_bad_pixels):
    """`ghosttui info` repairs bad pixels without torch; the result equals the cache's."""
    path, data = scan_with_bad_pixels
    settings = PreprocessSettings()
    with open_scan(path) as scan:
        detector = survey(scan, settings)
    assert len(detector.hot_pixels) == len(HOT + DEAD)
    torch_repaired = PatternPipeline(settings, detector).to_tensor(data).numpy()
    numpy_repaired = repair_hot_pixels(data, detector)
    assert numpy_repaired.dtype == np.float32
    assert np.allclose(numpy_repaired, torch_repaired, rtol=1e-6)
    assert not np.allclose(numpy_repaired, data)  # there was something to repair


def test_quick_preview_equals_the_caches_virtual_images(scan_with_bad_pixels, cache_dir):
    from ghosttui.data import LoadOptions
    from ghosttui.patterns.cache import open_or_build
    from ghosttui.patterns.preview import quick_virtual_images

    path, _ = scan_with_bad_pixels
    with open_scan(path) as scan:
        preview = quick_virtual_images(scan)
    with open_or_build(path, LoadOptions(), PreprocessSettings()) as cache:
        # the cache surveys more patterns, but on 30 patterns both surveys see them all
        assert np.allclose(preview.vbf, cache.vbf, rtol=1e-5)
        assert np.allclose(preview.adf, cache.adf, rtol=1e-5)
    assert preview.step == 1 and preview.non_finite == 0


def test_find_bad_pixels_ignores_a_diffraction_disk():
    rng = np.random.default_rng(6)
    mean = rng.poisson(20, (40, 40)).astype(float) + disk((40, 40), (12, 25), 1.2, 3000.0)
    assert find_bad_pixels(mean, samples=100).size == 0


def test_survey_finds_the_simulators_hot_pixels(sim_file):
    with h5py.File(sim_file, "r") as f:
        hot = set(np.asarray(f["simulation"].attrs["hot_pixels"]).tolist())
        origin = f["origin"][()]
    with open_scan(sim_file) as scan:
        found = survey(scan, PreprocessSettings())
    assert hot <= set(found.hot_pixels.tolist())
    assert len(found.hot_pixels) <= len(hot) + 40  # dead pixels, and at most 1% of the detector
    # the direct beam: where the simulator put the pattern centre (averaged over the scan)
    assert found.beam_centre == pytest.approx(tuple(origin.reshape(-1, 2).mean(0)), abs=0.5)


# -- the direct beam -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("centre", "radius"), [((31.5, 32.5), 5.0), ((20.25, 41.7), 3.0), ((40.0, 12.0), 8.0)]
)
def test_find_direct_beam_on_a_synthetic_disk(centre, radius):
    rng = np.random.default_rng(7)
    image = disk((64, 64), centre, radius, 500.0) + rng.poisson(5, (64, 64))
    image += disk((64, 64), (centre[0], centre[1] + 15 - 40 * (centre[1] > 40)), 2.0, 60.0)
    found, found_radius = find_direct_beam(image)
    assert found == pytest.approx(centre, abs=0.3)
    assert found_radius == pytest.approx(radius, abs=1.0)


def test_virtual_bright_and_dark_field_masks():
    detector = DetectorSurvey((32, 32), beam_centre=(16.0, 16.0), beam_radius=3.0)
    pipeline = PatternPipeline(PreprocessSettings(size=16), detector)
    bright = disk((32, 32), (16, 16), 2.0, 1.0)  # only inside the beam
    ring = disk((32, 32), (16, 16), 8.0, 1.0) - disk((32, 32), (16, 16), 6.5, 1.0)
    _, virtual = pipeline(np.stack([bright, ring]).astype(np.float32))
    assert virtual[0, 0] == bright.sum() and virtual[0, 1] == 0
    assert virtual[1, 0] == 0 and virtual[1, 1] == ring.sum()


# -- crop --------------------------------------------------------------------------------------
@pytest.mark.parametrize("crop", [(0, 65, 0, 64), (0, 64, 10, 70), (60, 100, 60, 100)])
def test_crop_outside_the_detector_is_refused(sim_file, crop):
    with open_scan(sim_file) as scan, pytest.raises(DataError, match=r"outside the 64x64 detector"):
        survey(scan, PreprocessSettings(crop=crop))


def test_crop_inside_the_detector(sim_file):
    settings = PreprocessSettings(
        size=8, crop=(8, 40, 16, 48), transform="linear", normalise="none"
    )
    with open_scan(sim_file) as scan:
        found = survey(scan, settings)
        assert found.shape == (32, 32)
        pipeline = PatternPipeline(settings, found)
        raw = scan.read(0, 3)
    cleaned = pipeline.to_tensor(raw).numpy()
    expected = cleaned.reshape(3, 8, 4, 8, 4).sum(axis=(2, 4))
    assert np.allclose(pipeline(raw)[0], expected)
    untouched = np.ones((32, 32), bool).ravel()
    untouched[found.hot_pixels] = False
    assert np.array_equal(
        cleaned.reshape(3, -1)[:, untouched], raw[:, 8:40, 16:48].reshape(3, -1)[:, untouched]
    )


@pytest.mark.parametrize(
    ("text", "crop"), [("100:400,120:420", (100, 400, 120, 420)), (None, None), ("", None)]
)
def test_parse_crop(text, crop):
    assert parse_crop(text) == crop


@pytest.mark.parametrize("text", ["100:400", "a:b,c:d", "1:2:3,4:5"])
def test_parse_crop_rejects(text):
    with pytest.raises(DataError, match="--crop must look like"):
        parse_crop(text)


def test_settings_key_ignores_only_allow_blank():
    base = PreprocessSettings()
    assert base.key() == PreprocessSettings(allow_blank=True).key()
    assert base.key() != PreprocessSettings(hot_ratio=4.0).key()
    assert PreprocessSettings.from_dict(PreprocessSettings(crop=(1, 5, 2, 9)).to_dict()) == (
        PreprocessSettings(crop=(1, 5, 2, 9))
    )
