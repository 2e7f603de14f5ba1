"""The pattern cache: when it is reused, when it is rebuilt, and what it holds."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

import ghosttui.data.fingerprint as fingerprint_module
import ghosttui.patterns.cache
from ghosttui.data import LoadOptions, file_fingerprint, open_scan
from ghosttui.patterns.cache import PatternCache, cache_path_for, default_cache_dir, open_or_build
from ghosttui.patterns.preprocess import PatternPipeline, survey
from ghosttui.patterns.settings import PreprocessSettings

OPTIONS = LoadOptions()
SETTINGS = PreprocessSettings(size=16)


def _forbid_building(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the cache was rebuilt although nothing changed")

    monkeypatch.setattr(ghosttui.patterns.cache, "build_cache", fail)


def test_cache_dir_comes_from_the_environment(cache_dir, monkeypatch):
    assert default_cache_dir() == cache_dir
    monkeypatch.delenv("GHOSTTUI_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/else")
    assert str(default_cache_dir()) == "/somewhere/else/ghosttui"


def test_first_call_builds_second_reuses(sim_copy, cache_dir, monkeypatch):
    with open_or_build(sim_copy, OPTIONS, SETTINGS) as first:
        path = first.path
    assert path.parent == cache_dir
    assert list(cache_dir.iterdir()) == [path]
    before = path.stat()

    _forbid_building(monkeypatch)
    with open_or_build(sim_copy, OPTIONS, SETTINGS) as second:
        assert second.path == path
        assert second.shape == (24, 16, 16, 16)
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    assert list(cache_dir.iterdir()) == [path]


def test_allow_blank_does_not_change_the_cache(sim_copy, monkeypatch):
    with open_or_build(sim_copy, OPTIONS, SETTINGS) as first:
        path = first.path
    _forbid_building(monkeypatch)
    relaxed = PreprocessSettings(size=16, allow_blank=True)
    with open_or_build(sim_copy, OPTIONS, relaxed) as second:
        assert second.path == path


@pytest.mark.parametrize(
    "other",
    [
        PreprocessSettings(size=32),
        PreprocessSettings(size=16, pooling="max"),
        PreprocessSettings(size=16, transform="sqrt"),
        PreprocessSettings(size=16, crop=(4, 60, 4, 60)),
        PreprocessSettings(size=16, hot_pixels=False),
    ],
    ids=["size", "pooling", "transform", "crop", "hot-pixels"],
)
def test_different_settings_give_a_different_cache(sim_copy, cache_dir, other):
    with open_or_build(sim_copy, OPTIONS, SETTINGS) as first:
        path = first.path
    with open_or_build(sim_copy, OPTIONS, other) as second:
        assert second.path != path
        assert second.size == other.size
        assert second.settings == other
    assert sorted(cache_dir.iterdir()) == sorted([path, second.path])


def test_load_options_that_select_other_data_give_a_different_cache(tmp_path):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.ones((2, 2, 8, 8), np.uint16)
        f["b"] = np.ones((2, 2, 8, 8), np.uint16)
    first, _ = cache_path_for(path, LoadOptions(dataset="/a"), SETTINGS)
    second, _ = cache_path_for(path, LoadOptions(dataset="/b"), SETTINGS)
    assert first != second


@pytest.mark.parametrize(
    "options",
    [
        LoadOptions(dataset="/data"),
        LoadOptions(dataset="data"),
        LoadOptions(format="h5"),
        LoadOptions(format="hdf5", dataset="/data", scan=(24, 16)),
    ],
    ids=["dataset", "dataset-no-slash", "format-alias", "everything-spelled-out"],
)
def test_options_naming_the_same_data_find_the_same_cache(sim_copy, options):
    assert (
        cache_path_for(sim_copy, options, SETTINGS)[0]
        == cache_path_for(sim_copy, OPTIONS, SETTINGS)[0]
    )


def test_changed_data_gives_a_new_cache(sim_copy, cache_dir):
    with open_or_build(sim_copy, OPTIONS, SETTINGS) as first:
        old_path = first.path
        old_pattern = first.pattern(5, 7)
    old_fingerprint = file_fingerprint(sim_copy)

    with h5py.File(sim_copy, "r+") as f:  # rewrite one pattern in place
        f["data"][5, 7] = f["data"][5, 7][::-1, ::-1]
    assert file_fingerprint(sim_copy) != old_fingerprint

    with open_or_build(sim_copy, OPTIONS, SETTINGS) as second:
        assert second.path != old_path
        assert not np.allclose(second.pattern(5, 7), old_pattern)
        assert second.meta["fingerprint"] == file_fingerprint(sim_copy)
    assert old_path.exists()


def test_moved_or_copied_file_keeps_its_cache(sim_copy, tmp_path, monkeypatch):
    with open_or_build(sim_copy, OPTIONS, SETTINGS) as first:
        path = first.path
    elsewhere = tmp_path / "moved" / "renamed.h5"
    elsewhere.parent.mkdir()
    shutil.move(sim_copy, elsewhere)
    copy = tmp_path / "another_copy.h5"
    shutil.copyfile(elsewhere, copy)

    assert cache_path_for(elsewhere, OPTIONS, SETTINGS)[0] == path
    assert cache_path_for(copy, OPTIONS, SETTINGS)[0] == path
    _forbid_building(monkeypatch)
    with open_or_build(elsewhere, OPTIONS, SETTINGS) as reused:
        assert reused.path == path


def test_rebuild_builds_again(sim_copy):
    with open_or_build(sim_copy, OPTIONS, SETTINGS) as first:
        path = first.path
    inode = path.stat().st_ino
    with open_or_build(sim_copy, OPTIONS, SETTINGS, rebuild=True) as again:
        assert again.path == path
    assert path.stat().st_ino != inode  # a new file renamed over the old one


@pytest.mark.parametrize("damage", ["garbage", "other-version"])
def test_damaged_or_stale_cache_is_rebuilt(sim_copy, damage):
    with open_or_build(sim_copy, OPTIONS, SETTINGS) as first:
        path = first.path
        good = first.read(0, first.n_patterns)
    if damage == "garbage":
        path.write_bytes(b"not a cache at all")
    else:
        with h5py.File(path, "r+") as f:
            f.attrs["cache_format"] = 0
    with open_or_build(sim_copy, OPTIONS, SETTINGS) as rebuilt:
        assert rebuilt.path == path
        assert np.array_equal(rebuilt.read(0, rebuilt.n_patterns), good)


def test_progress_is_reported_up_to_the_total(sim_copy, monkeypatch):
    monkeypatch.setattr(ghosttui.patterns.cache, "BLOCK_BYTES", 64 * 64 * 4 * 100)
    seen = []
    with open_or_build(sim_copy, OPTIONS, SETTINGS, progress=lambda d, t: seen.append((d, t))):
        pass
    assert seen == [(100, 384), (200, 384), (300, 384), (384, 384)]


# -- what the cache holds ----------------------------------------------------------------------
@pytest.mark.parametrize("block_patterns", [7, 1000])
def test_cache_content_matches_the_pipeline(sim_file, monkeypatch, block_patterns):
    """Streamed in blocks that start and end inside scan rows, or in one block."""
    monkeypatch.setattr(ghosttui.patterns.cache, "BLOCK_BYTES", 64 * 64 * 4 * block_patterns)
    with open_or_build(sim_file, OPTIONS, SETTINGS) as cache:
        assert cache.shape == (24, 16, 16, 16)
        assert cache.scan_shape == (24, 16)
        assert cache.n_patterns == 384
        assert cache.vbf.shape == (24, 16) and cache.adf.shape == (24, 16)
        assert cache.mean_pattern.shape == (64, 64)
        patterns = cache.read(0, cache.n_patterns)
        vbf, adf = cache.vbf, cache.adf
        meta = cache.meta
        gathered = cache.gather(np.array([[23, 15], [0, 0], [12, 3]]))
        single = cache.pattern(12, 3)
    assert np.isfinite(patterns).all()
    assert np.isfinite(vbf).all() and np.isfinite(adf).all()
    assert (vbf > 0).all() and (adf > 0).all()
    assert meta["source_shape"] == [24, 16, 64, 64]
    assert meta["format"] == "HDF5"

    # the same pipeline applied to the whole scan at once, without streaming
    with open_scan(sim_file) as scan:
        pipeline = PatternPipeline(SETTINGS, survey(scan, SETTINGS))
        raw = scan.read(0, scan.n_patterns)
    expected, virtual = pipeline(raw)
    assert np.allclose(patterns, expected, atol=2e-3, rtol=2e-3)  # float16 storage
    assert np.allclose(vbf.ravel(), virtual[:, 0], rtol=1e-5)
    assert np.allclose(adf.ravel(), virtual[:, 1], rtol=1e-5)
    assert np.array_equal(gathered[2], single)
    assert np.allclose(gathered[0], expected[-1], atol=2e-3, rtol=2e-3)
    assert np.allclose(gathered[1], expected[0], atol=2e-3, rtol=2e-3)


def test_robust_normalisation_in_the_cache(sim_file):
    with open_or_build(sim_file, OPTIONS, SETTINGS) as cache:
        patterns = cache.read(0, cache.n_patterns).reshape(384, -1)
    # median 0 and 99.5th percentile 1, per pattern
    assert np.allclose(np.quantile(patterns, 0.5, axis=1, method="lower"), 0, atol=1e-3)
    assert np.allclose(np.quantile(patterns, 0.995, axis=1), 1, atol=2e-2)


def test_unnormalised_counts_do_not_overflow(tmp_path):
    """Sum-pooled counts above float16's 65504 must be stored as they are."""
    counts = np.full((2, 3, 64, 64), 1500, np.uint16)
    counts[1, 2, 5, 5] = 60000
    path = tmp_path / "bright.npy"
    np.save(path, counts)
    settings = PreprocessSettings(size=8, transform="linear", normalise="none", hot_pixels=False)
    with open_or_build(path, OPTIONS, settings) as cache:
        patterns = cache.read(0, 6)
    blocks = counts.reshape(6, 8, 8, 8, 8).sum(axis=(2, 4))
    assert np.isfinite(patterns).all()
    assert np.array_equal(patterns, blocks.astype(np.float32))
    assert patterns.max() == 63 * 1500 + 60000


def test_nearly_dark_patterns_stay_finite(tmp_path):
    """A pattern with one bright pixel: its 99.5th percentile equals its median."""
    counts = np.zeros((2, 2, 64, 64), np.uint16)
    counts[..., 20, 30] = 9
    path = tmp_path / "dark.npy"
    np.save(path, counts)
    with open_or_build(path, OPTIONS, PreprocessSettings(size=16, hot_pixels=False)) as cache:
        patterns = cache.read(0, 4)
    assert np.isfinite(patterns).all()
    assert np.allclose(patterns[:, 5, 7], 1.0, atol=1e-3)  # the bright pixel
    others = patterns.copy()
    others[:, 5, 7] = 0
    assert np.all(others == 0)


def test_cache_reader_rejects_a_non_cache(tmp_path):
    from ghosttui.errors import DataError

    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["patterns"] = np.zeros((1, 1, 8, 8))
    with pytest.raises(DataError):
        PatternCache(path)


# -- fingerprints ---------------------------------------------------------------------------
def test_fingerprint_depends_on_content_not_name(tmp_path):
    a = tmp_path / "a.bin"
    b = tmp_path / "b.bin"
    a.write_bytes(b"x" * 1000)
    b.write_bytes(b"x" * 1000)
    assert file_fingerprint(a) == file_fingerprint(b)
    assert file_fingerprint(a).startswith("xxh3-128:") and len(file_fingerprint(a)) == 9 + 32
    b.write_bytes(b"x" * 999 + b"y")
    assert file_fingerprint(a) != file_fingerprint(b)


def test_fingerprint_notices_a_change_anywhere_in_a_large_file(tmp_path):
    path = tmp_path / "big.bin"
    content = bytearray(np.random.default_rng(0).bytes(3 * fingerprint_module.BLOCK + 123))
    path.write_bytes(content)
    base = file_fingerprint(path)
    # block edges, and the byte the former sampled fingerprint missed
    for offset in (
        0,
        1500,
        fingerprint_module.BLOCK - 1,
        fingerprint_module.BLOCK,
        len(content) - 1,
    ):
        changed = bytearray(content)
        changed[offset] ^= 0xFF
        path.write_bytes(changed)
        assert file_fingerprint(path) != base, offset
    path.write_bytes(content)
    assert file_fingerprint(path) == base


def test_sampled_fingerprint_of_former_sessions_is_unchanged(tmp_path, monkeypatch):
    """Sessions made before full hashing recorded this; it must still compute the same."""
    monkeypatch.setattr(fingerprint_module, "WHOLE_FILE_LIMIT", 1000)
    monkeypatch.setattr(fingerprint_module, "SAMPLE_BYTES", 100)
    monkeypatch.setattr(fingerprint_module, "SAMPLES", 5)
    path = tmp_path / "big.bin"
    content = bytearray(np.random.default_rng(0).bytes(10_000))
    path.write_bytes(content)
    base = fingerprint_module.sampled_fingerprint(path)
    assert len(base) == 32 and not fingerprint_module.is_full_fingerprint(base)
    # samples start at 0, 2475, 4950, 7425 and 9900; 100 bytes each
    for offset in (0, 2500, 4999, 7500, 9999):
        changed = bytearray(content)
        changed[offset] ^= 0xFF
        path.write_bytes(changed)
        assert fingerprint_module.sampled_fingerprint(path) != base, offset
    between = bytearray(content)
    between[1500] ^= 0xFF  # outside every sample: why full hashes replaced it
    path.write_bytes(between)
    assert fingerprint_module.sampled_fingerprint(path) == base


# -- load options, part of every cache key ----------------------------------------------------
@pytest.mark.parametrize("text", ["206x34", "206X34", "206,34", " 206 * 34 "])
def test_parse_shape_forms(text):
    from ghosttui.data import parse_shape

    assert parse_shape(text) == (206, 34)


def test_load_options_round_trip():
    options = LoadOptions(dataset="/a/b", scan=(3, 4), detector=(8, 9), dtype=">u2", offset=16)
    assert LoadOptions.from_dict(options.to_dict()) == options
    assert LoadOptions().to_dict() == {}  # defaults add nothing to a cache key
    assert LoadOptions.from_cli(scan="3x4", format="H5") == LoadOptions(scan=(3, 4), format="h5")
