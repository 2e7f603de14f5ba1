"""Every bad input is a one-line DataError in-process and exit status 2 on the command line.

Also: a failed run never overwrites or half-writes an existing cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import DATA, assert_one_line_error

import ghosttui.patterns.cache
from ghosttui.data import LoadOptions, open_scan
from ghosttui.data.formats import AmbiguousScan
from ghosttui.errors import DataError
from ghosttui.patterns.cache import build_cache, cache_path_for, open_or_build
from ghosttui.patterns.preprocess import PatternPipeline
from ghosttui.patterns.settings import PreprocessSettings

# -- the table of bad files --------------------------------------------------------------
# Each maker writes a bad file into a folder and returns (path, CLI options, LoadOptions,
# a fragment the one-line message must hold).
Maker = Callable[[Path], tuple[Path, list[str], LoadOptions, str]]


def _good_h5(path: Path) -> Path:
    with h5py.File(path, "w") as f:
        f["data"] = np.random.default_rng(0).integers(0, 500, (6, 6, 32, 32), dtype=np.uint16)
    return path


def missing(d: Path):
    return d / "not_there.h5", [], LoadOptions(), "no such file"


def unknown_extension(d: Path):
    path = d / "scan.tif"
    path.write_bytes(b"II*\x00" + bytes(100))
    return path, [], LoadOptions(), "unknown format '.tif'"


def truncated_hdf5(d: Path):
    real = _good_h5(d / "real.h5").read_bytes()
    path = d / "truncated.h5"
    path.write_bytes(real[: len(real) // 3])
    return path, [], LoadOptions(), "truncated or corrupt"


def corrupt_hdf5(d: Path):
    path = d / "corrupt.h5"
    path.write_bytes(np.random.default_rng(1).bytes(5000))
    return path, [], LoadOptions(), "not a readable HDF5 file"


def truncated_npy(d: Path):
    np.save(d / "full.npy", np.ones((4, 4, 16, 16), np.float32))
    path = d / "truncated.npy"
    path.write_bytes((d / "full.npy").read_bytes()[:-100])
    return path, [], LoadOptions(), "truncated .npy"


def object_npy(d: Path):
    path = d / "objects.npy"
    np.save(path, np.array([{"a": 1}, None, "x"], dtype=object), allow_pickle=True)
    return path, [], LoadOptions(), "Python objects"


def not_npy(d: Path):
    path = d / "text.npy"
    path.write_text("Rx,Ry,counts\n1,2,3\n" * 20)
    return path, [], LoadOptions(), "not a .npy file"


def npz_named_npy(d: Path):
    path = d / "archive.npy"
    np.savez(d / "archive.npz", data=np.ones((2, 2, 4, 4)))
    shutil.copyfile(d / "archive.npz", path)
    return path, [], LoadOptions(), ".npz archive"


def complex_npy(d: Path):
    path = d / "complex.npy"
    np.save(path, np.ones((2, 2, 4, 4), np.complex64))
    return path, [], LoadOptions(), "complex64 data"


def image_2d_npy(d: Path):
    path = d / "image.npy"
    np.save(path, np.ones((64, 64), np.uint16))
    return path, [], LoadOptions(), "is 2D (64, 64), not a 4D-STEM scan"


def image_2d_h5(d: Path):
    path = d / "image.h5"
    with h5py.File(path, "w") as f:
        f["image"] = np.ones((64, 64))
    return path, [], LoadOptions(), "holds no 4D dataset"


def image_2d_h5_dataset(d: Path):
    path = d / "image.h5"
    with h5py.File(path, "w") as f:
        f["image"] = np.ones((64, 64))
    return path, ["--dataset", "/image"], LoadOptions(dataset="/image"), "is 2D (64, 64)"


def two_4d_h5(d: Path):
    path = d / "two.h5"
    with h5py.File(path, "w") as f:
        f["one"] = np.ones((2, 2, 4, 4))
        f["two"] = np.ones((2, 2, 4, 4))
    return path, [], LoadOptions(), "several 4D datasets (/one, /two); choose one with --dataset"


def scan_mismatch(d: Path):
    path = d / "stack.npy"
    np.save(path, np.ones((10, 8, 8), np.uint16))
    return path, ["--scan", "3x3"], LoadOptions(scan=(3, 3)), "gives 9 patterns but the stack"


def stack_without_scan(d: Path):
    path = d / "stack.npy"
    np.save(path, np.ones((10, 8, 8), np.uint16))
    return path, [], LoadOptions(), "give the scan shape with --scan"


def empty_file(d: Path):
    path = d / "empty.h5"
    path.touch()
    return path, [], LoadOptions(), "is empty (0 bytes)"


def directory(d: Path):
    path = d / "folder.h5"
    path.mkdir()
    return path, [], LoadOptions(), "is a directory"


def raw_too_short(d: Path):
    path = d / "frames.dat"
    path.write_bytes(bytes(3 * 8 * 8 * 2))
    args = ["--scan", "2x2", "--detector", "8x8", "--dtype", "uint16"]
    return path, args, LoadOptions(scan=(2, 2), detector=(8, 8), dtype="uint16"), "needs 4"


def corrupt_dm4(d: Path):
    path = d / "corrupt.dm4"
    path.write_bytes(np.random.default_rng(2).bytes(3000))
    return path, ["--scan", "2x1"], LoadOptions(scan=(2, 1)), "could not be read as Gatan DM"


def truncated_dm4(d: Path):
    path = d / "truncated.dm4"
    real = (DATA / "dm" / "test-2.dm4").read_bytes()
    path.write_bytes(real[: len(real) // 2])
    return path, ["--scan", "2x1"], LoadOptions(scan=(2, 1)), "could not be read as Gatan DM"


BAD_FILES: list[Maker] = [
    missing,
    unknown_extension,
    truncated_hdf5,
    corrupt_hdf5,
    truncated_npy,
    object_npy,
    not_npy,
    npz_named_npy,
    complex_npy,
    image_2d_npy,
    image_2d_h5,
    image_2d_h5_dataset,
    two_4d_h5,
    scan_mismatch,
    stack_without_scan,
    empty_file,
    directory,
    raw_too_short,
    corrupt_dm4,
    truncated_dm4,
]


# files that hold data but need an option to be one 4D scan: `info` describes them
AMBIGUOUS = {two_4d_h5, stack_without_scan}


@pytest.mark.parametrize("make", BAD_FILES, ids=lambda m: m.__name__)
def test_bad_file_is_a_data_error(tmp_path, make):
    path, _, options, fragment = make(tmp_path)
    with pytest.raises(DataError) as info:
        open_scan(path, options)
    error = info.value
    assert isinstance(error, AmbiguousScan) == (make in AMBIGUOUS)
    assert fragment in error.message
    assert error.path == path
    assert "\n" not in str(error)
    assert str(error).startswith(f"{path}: ")


@pytest.mark.parametrize("make", BAD_FILES, ids=lambda m: m.__name__)
def test_bad_file_on_the_command_line(tmp_path, run_cli, make):
    path, args, _, fragment = make(tmp_path)
    # `info` describes an ambiguous file (test_cli.py); a command that needs the scan refuses it
    command = ["new", "s", "--data"] if make in AMBIGUOUS else ["info"]
    result = run_cli(*command, path, *args, *([] if make in AMBIGUOUS else ["--no-preview"]))
    assert_one_line_error(result, str(path), fragment)
    assert result.out == ""


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--scan", "3by2"], "--scan must look like RXxRY"),
        (["--scan", "0x4"], "--scan sides must be positive"),
        (["--detector", "8"], "--detector must look like RXxRY"),
        (["--dtype", "uint77", "--detector", "4x4", "--scan", "1x1"], "--dtype 'uint77'"),
        (["--format", "tiff"], "unknown --format 'tiff'"),
        (["--offset", "-5"], "--offset must be zero or positive"),
    ],
)
def test_bad_option_names_the_option(sim_file, run_cli, args, fragment):
    assert_one_line_error(run_cli("info", sim_file, *args, "--no-preview"), fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--size", "4"], "--size must be between 8 and 1024"),
        (["--pooling", "mean"], "--pooling must be one of sum, max"),
        (["--transform", "exp"], "--transform must be one of"),
        (["--normalise", "zscore"], "--normalise must be one of"),
        (["--crop", "10:20"], "--crop must look like QX0:QX1,QY0:QY1"),
        (["--crop", "20:10,0:5"], "--crop must be QX0:QX1,QY0:QY1 with QX0<QX1"),
        (["--crop", "0:65,0:64"], "is outside the 64x64 detector"),
    ],
)
def test_bad_preprocess_option(sim_file, run_cli, cache_dir, args, fragment):
    result = run_cli("preprocess", sim_file, *args)
    assert result.code == 2
    assert "Traceback" not in result.err
    errors = [line for line in result.err_lines if line.startswith("ghosttui: error: ")]
    assert len(errors) == 1 and fragment in errors[0], result.err
    assert list(cache_dir.iterdir()) == []


def test_unreadable_file(tmp_path, run_cli):
    path = _good_h5(tmp_path / "locked.h5")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user reads files whatever their permissions (root)")
        with pytest.raises(DataError, match="not readable"):
            open_scan(path)
        assert_one_line_error(run_cli("info", path, "--no-preview"), str(path), "not readable")
    finally:
        path.chmod(0o644)


def test_unreadable_file_even_as_root(tmp_path, monkeypatch):
    """The permission check itself, for runs as root where chmod 000 does not stop reads."""
    import ghosttui.data.formats as formats

    path = _good_h5(tmp_path / "locked.h5")
    real_access = os.access

    def access(p, mode, *args, **kwargs):
        if Path(p) == path and mode & os.R_OK:
            return False
        return real_access(p, mode, *args, **kwargs)

    monkeypatch.setattr(formats.os, "access", access)
    with pytest.raises(DataError, match=r"not readable \(permission denied\)") as info:
        open_scan(path)
    assert info.value.path == path


# -- bad values, found while preprocessing ------------------------------------------------------
def _patterns_with(value: float, at: tuple[int, int], dtype: str = "float32") -> np.ndarray:
    data = np.random.default_rng(3).poisson(20, (5, 4, 16, 16)).astype(dtype)
    if np.isnan(value) or np.isinf(value):
        data[at][7, 9] = value
    else:
        data[at][...] = value
    return data


@pytest.mark.parametrize(
    ("value", "dtype", "fragment"),
    [
        (np.nan, "float32", "pattern (3, 2) contains NaN or Inf values"),
        (np.inf, "float32", "pattern (3, 2) contains NaN or Inf values"),
        (-np.inf, "float64", "pattern (3, 2) contains NaN or Inf values"),
        (0, "uint16", "pattern (3, 2) is all zeros"),
        (0, "float32", "pattern (3, 2) is all zeros"),
    ],
    ids=["nan", "inf", "-inf", "blank-uint16", "blank-float32"],
)
def test_bad_values_stop_preprocessing(tmp_path, run_cli, cache_dir, value, dtype, fragment):
    path = tmp_path / "bad_values.npy"
    np.save(path, _patterns_with(value, (3, 2), dtype))
    with pytest.raises(DataError) as info:
        open_or_build(path, LoadOptions(), PreprocessSettings(size=8))
    assert fragment in str(info.value)
    assert info.value.path == path
    assert list(cache_dir.iterdir()) == [], "a failed build must leave nothing behind"

    result = run_cli("preprocess", path, "--size", "8")
    assert result.code == 2
    assert "Traceback" not in result.err and "Warning" not in result.err
    assert result.err_lines[-1].startswith("ghosttui: error: ")
    assert str(path) in result.err_lines[-1] and fragment in result.err_lines[-1]
    assert sum(line.startswith("ghosttui: error") for line in result.err_lines) == 1
    assert list(cache_dir.iterdir()) == []


def test_blank_pattern_accepted_with_allow_blank(tmp_path, run_cli):
    path = tmp_path / "blank.npy"
    np.save(path, _patterns_with(0, (3, 2), "uint16"))
    settings = PreprocessSettings(size=8, allow_blank=True)
    with open_or_build(path, LoadOptions(), settings) as cache:
        assert cache.shape == (5, 4, 8, 8)
        patterns = cache.read(0, 20).reshape(5, 4, 8, 8)
        assert np.isfinite(patterns).all()
        assert np.all(patterns[3, 2] == 0)
        assert cache.vbf[3, 2] == 0 and cache.vbf[0, 0] > 0
    result = run_cli("preprocess", path, "--size", "8", "--allow-blank")
    assert result.code == 0, result.err
    assert "5x4 patterns of 8x8" in result.out


# -- a failed run leaves what existed untouched ------------------------------------------------
class Crash(Exception):
    pass


@pytest.mark.parametrize(
    "failure", [DataError("disk went away"), Crash("bug"), KeyboardInterrupt()], ids=repr
)
def test_failed_rebuild_keeps_the_existing_cache(sim_copy, cache_dir, monkeypatch, failure):
    options, settings = LoadOptions(), PreprocessSettings(size=16)
    with open_or_build(sim_copy, options, settings) as cache:
        target = cache.path
    before = target.read_bytes()
    stat = target.stat()

    # several blocks, and the pipeline breaks on the second one
    monkeypatch.setattr(ghosttui.patterns.cache, "BLOCK_BYTES", 64 * 64 * 4 * 50)
    calls = []
    real_call = PatternPipeline.__call__

    def breaking(self, block):
        calls.append(len(block))
        if len(calls) == 2:
            raise failure
        return real_call(self, block)

    monkeypatch.setattr(PatternPipeline, "__call__", breaking)
    with pytest.raises(type(failure)):
        open_or_build(sim_copy, options, settings, rebuild=True)
    assert len(calls) == 2
    assert target.read_bytes() == before
    assert target.stat().st_ino == stat.st_ino
    assert sorted(p.name for p in cache_dir.iterdir()) == [target.name], "no temporary files"


def test_failed_first_build_leaves_no_file(sim_copy, cache_dir, monkeypatch):
    options, settings = LoadOptions(), PreprocessSettings(size=16)
    target, fingerprint = cache_path_for(sim_copy, options, settings)

    def fail(self, block):
        raise DataError("read failed", sim_copy)

    monkeypatch.setattr(PatternPipeline, "__call__", fail)
    with open_scan(sim_copy) as scan, pytest.raises(DataError):
        build_cache(scan, settings, target, fingerprint=fingerprint, options=options)
    assert not target.exists()
    assert list(cache_dir.iterdir()) == []


def test_failed_preprocess_command_keeps_the_existing_cache(
    sim_copy, cache_dir, run_cli, monkeypatch
):
    assert run_cli("preprocess", sim_copy, "--size", "16").code == 0
    (target,) = cache_dir.iterdir()
    before = target.read_bytes()

    def fail(self, block):
        raise DataError("pattern (0, 0) could not be read", sim_copy)

    monkeypatch.setattr(PatternPipeline, "__call__", fail)
    result = run_cli("preprocess", sim_copy, "--size", "16", "--rebuild")
    assert result.code == 2
    assert result.err_lines[-1].startswith("ghosttui: error: ")
    assert target.read_bytes() == before
    assert list(cache_dir.iterdir()) == [target]


# -- the real program, in a process of its own -----------------------------------------------
@pytest.mark.parametrize("make", [truncated_hdf5, missing, not_npy], ids=lambda m: m.__name__)
def test_subprocess_bad_input_exit_status_and_one_line(tmp_path, make):
    path, args, _, fragment = make(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "ghosttui", "info", str(path), *args, "--no-preview"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("ghosttui: error: ")
    assert str(path) in lines[0] and fragment in lines[0]
    assert proc.stdout == ""


@pytest.mark.slow
def test_subprocess_preprocess_inf_values(tmp_path):
    path = tmp_path / "inf.npy"
    np.save(path, _patterns_with(np.inf, (1, 1)))
    proc = subprocess.run(
        [sys.executable, "-m", "ghosttui", "preprocess", str(path), "--size", "8"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Warning" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ghosttui: error:")]
    assert errors == [f"ghosttui: error: {path}: pattern (1, 1) contains NaN or Inf values"]
