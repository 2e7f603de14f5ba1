"""Nothing saved is ever lost (issue 12): changed data is noticed (2), numbers are checked (6),
and "internal error" is left to real bugs.
"""

from __future__ import annotations

import os
import shutil
import sys

import h5py
import numpy as np
import pytest
import tomli_w
from conftest import assert_one_line_error
from fault_kit import make_session_with_rounds

import ghosttui.data.fingerprint as fingerprint_module
from ghosttui.data import LoadOptions
from ghosttui.data.fingerprint import file_fingerprint, recorded_fingerprint, sampled_fingerprint
from ghosttui.patterns.cache import cache_path_for
from ghosttui.patterns.settings import PreprocessSettings
from ghosttui.session.session import Session

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@pytest.fixture
def data(sim_file, tmp_path):
    path = tmp_path / "data" / "scan.h5"
    path.parent.mkdir()
    shutil.copyfile(sim_file, path)
    return path


@pytest.fixture
def trusted(monkeypatch):
    """Records are trusted at once (files written by a test are seconds old, never quiet)."""
    monkeypatch.setattr(fingerprint_module, "QUIET_SECONDS", 0.0)


# -- 2. change detection ----------------------------------------------------------------------
def test_a_changed_pattern_anywhere_in_a_large_file_is_noticed(run_cli, tmp_path, trusted):
    """79 MB-class file: the former sampled fingerprint missed a change between its windows."""
    path = tmp_path / "big.npy"
    cube = np.random.default_rng(0).integers(0, 200, (34, 32, 256, 256), dtype=np.uint8)
    np.save(path, cube)
    assert path.stat().st_size > fingerprint_module.WHOLE_FILE_LIMIT  # sampled, formerly
    assert run_cli("new", "big", "--data", path).code == 0
    settings = PreprocessSettings(size=16)
    old_cache, old_fingerprint = cache_path_for(path, LoadOptions(), settings)
    old_sampled = sampled_fingerprint(path)

    changed = np.load(path, mmap_mode="r+")  # one pixel of pattern (0, 15), 1 MB into the file
    changed[0, 15, 100, 100] ^= 0xFF
    changed.flush()
    del changed
    assert sampled_fingerprint(path) == old_sampled  # what went unnoticed before
    assert file_fingerprint(path) != old_fingerprint
    assert cache_path_for(path, LoadOptions(), settings)[0] != old_cache  # no stale cache served
    assert_one_line_error(run_cli("status", "big"), "changed since the session was made")


def test_a_change_that_keeps_size_and_modification_time_is_noticed(tmp_path, trusted):
    path = tmp_path / "scan.bin"
    path.write_bytes(bytes(100_000))
    before = os.stat(path)
    original = file_fingerprint(path)
    assert recorded_fingerprint(path) == original  # recorded: the next open reads nothing
    with open(path, "r+b") as handle:  # same size, and the old time put back (cp -p, rsync -t)
        handle.seek(50_000)
        handle.write(b"\x01")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert recorded_fingerprint(path) is None  # the change time moved: the record is void
    assert file_fingerprint(path) != original


def test_an_unchanged_session_opens_without_reading_its_data(run_cli, data, trusted, monkeypatch):
    assert run_cli("new", "s", "--data", data).code == 0

    def no_reading(*args, **kwargs):
        raise AssertionError("the data file was hashed again although it did not change")

    monkeypatch.setattr(fingerprint_module, "hash_file", no_reading)
    assert run_cli("status", "s").code == 0


def test_a_record_of_a_file_written_just_before_hashing_is_not_trusted(tmp_path):
    path = tmp_path / "fresh.bin"
    path.write_bytes(b"x" * 1000)
    file_fingerprint(path)
    assert recorded_fingerprint(path) is None  # hashed within the file system's clock tick


def test_a_session_with_the_former_sampled_fingerprint_opens_and_is_upgraded(
    run_cli, data, tmp_path
):
    assert run_cli("new", "old", "--data", data).code == 0
    settings_file = Session.open("old", writable=False).dir / "session.toml"
    doc = tomllib.loads(settings_file.read_text())
    doc["data"]["fingerprint"] = sampled_fingerprint(data)
    settings_file.write_text(tomli_w.dumps(doc))
    assert run_cli("status", "old").code == 0  # read-only: checked, left as it was
    assert tomllib.loads(settings_file.read_text())["data"]["fingerprint"] == sampled_fingerprint(
        data
    )
    csv_file = tmp_path / "l.csv"
    csv_file.write_text("rx,ry,label\n1,1,none\n")
    assert run_cli("labels", "import", "old", csv_file).code == 0  # writable: upgraded
    assert tomllib.loads(settings_file.read_text())["data"]["fingerprint"] == file_fingerprint(data)


# -- 6. numbers, validated where they enter ----------------------------------------------------
def _edit(folder, section, key, value):
    path = folder / "session.toml"
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    doc[section][key] = value
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")


def _zero_length_h5(tmp_path):
    path = tmp_path / "empty-axis.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.zeros((0, 4, 8, 8), np.uint16)
    return ["info", path, "--no-preview"]


def _zero_length_npy(tmp_path):
    path = tmp_path / "empty-axis.npy"
    np.save(path, np.zeros((4, 0, 8, 8), np.float32))
    return ["preprocess", path, "--size", "8"]


def _huge_float64(tmp_path):
    path = tmp_path / "huge.npy"
    cube = np.random.default_rng(0).poisson(20, (3, 3, 16, 16)).astype(np.float64)
    cube[2, 1, 4, 4] = 1e300
    np.save(path, cube)
    return ["preprocess", path, "--size", "8"]


def _float32_sums_overflow(tmp_path):
    path = tmp_path / "bright.npy"
    cube = np.full((2, 2, 16, 16), 3e38, np.float32)
    np.save(path, cube)
    return ["preprocess", path, "--size", "8", "--transform", "linear", "--normalise", "none"]


def _toml(section, key, value, command="status"):
    def setup(ctx):
        _edit(ctx["session"], section, key, value)
        return [command, "s"]

    return setup


def _args(*args):
    return lambda ctx: [a.format(**ctx) if isinstance(a, str) else a for a in args]


NUMBERS = [
    ("train-epochs-zero", _args("train", "s", "--epochs", "0"), "--epochs must be at least 1"),
    ("train-epochs-negative", _args("train", "s", "--epochs", "-3"), "--epochs must be at least 1"),
    ("train-seed-negative", _args("train", "s", "--seed", "-1"), "--seed must be at least 0"),
    (
        "simulate-dose-nan",
        _args("simulate", "{out}", "--dose", "nan"),
        "--dose (electrons per pattern) must be a finite number",
    ),
    (
        "simulate-dose-negative",
        _args("simulate", "{out}", "--dose", "-5"),
        "--dose (electrons per pattern) must be greater than 0",
    ),
    ("simulate-dose-zero", _args("simulate", "{out}", "--dose", "0"), "must be greater than 0"),
    (
        "simulate-ghost-negative",
        _args("simulate", "{out}", "--ghost-strength", "-0.1"),
        "--ghost-strength must be at least 0",
    ),
    (
        "simulate-ghost-inf",
        _args("simulate", "{out}", "--ghost-strength", "inf"),
        "--ghost-strength must be a finite number",
    ),
    (
        "simulate-seed-negative",
        _args("simulate", "{out}", "--seed", "-1"),
        "--seed must be at least 0",
    ),
    (
        "simulate-width-zero",
        _args("simulate", "{out}", "--size", "0"),
        "--size must be at least 32",
    ),
    (
        "bench-grid-step-negative",
        _args("bench", "{data}", "--grid-step", "-1", "--budget", "20"),
        "--grid-step (0: chosen from the budget) must be at least 0",
    ),
    (
        "bench-epochs-zero",
        _args("bench", "{data}", "--epochs", "0", "--budget", "20"),
        "--epochs must be at least 1",
    ),
    (
        "bench-seed-negative",
        _args("bench", "{data}", "--seed", "0,-1", "--budget", "20"),
        "--seed must be at least 0",
    ),
    ("demo-seed-negative", _args("demo", "--seed", "-2"), "--seed must be at least 0"),
    ("toml-width-zero", _toml("model", "width", 0), "[model] width must be at least 1"),
    (
        "toml-arch-unknown",
        _toml("model", "arch", "resnet", "train"),
        "[model] arch must be one of ghostnet, paper",
    ),
    ("toml-epochs-zero", _toml("model", "epochs", 0, "train"), "[model] epochs must be at least 1"),
    ("toml-seed-negative", _toml("model", "seed", -4, "train"), "[model] seed must be at least 0"),
    ("toml-width-text", _toml("model", "width", "wide"), "[model] width must be a whole number"),
    (
        "toml-grid-step-negative",
        _toml("sampling", "grid_step", -2, "label"),
        "[sampling] grid_step (0: chosen from the budget) must be at least 0",
    ),
    ("toml-budget-zero", _toml("sampling", "budget", 0), "[sampling] budget must be at least 1"),
    (
        "toml-boundary-share",
        _toml("sampling", "boundary_share", 1.5),
        "[sampling] boundary_share must be at most 1",
    ),
    (
        "toml-boundary-share-nan",
        _toml("sampling", "boundary_share", float("nan")),
        "[sampling] boundary_share must be a finite number",
    ),
    (
        "toml-strategy",
        _toml("sampling", "strategy", "psychic"),
        "[sampling] strategy must be one of",
    ),
    (
        "toml-input-size",
        _toml("preprocess", "size", 0, "train"),
        "--size must be between 8 and 1024",
    ),
    (
        "toml-rotation-swap",
        _toml("model", "rotation_swap", "hv", "train"),
        "[model] rotation_swap must be pairs of class names",
    ),
    (
        "toml-hot-ratio",
        _toml("preprocess", "hot_ratio", -1.0),
        "hot_ratio must be a number above 1",
    ),
    (
        "zero-length-4d-hdf5",
        lambda ctx: _zero_length_h5(ctx["tmp"]),
        "zero-length axis (0, 4, 8, 8): it holds no patterns",
    ),
    (
        "zero-length-4d-npy",
        lambda ctx: _zero_length_npy(ctx["tmp"]),
        "zero-length axis (4, 0, 8, 8)",
    ),
    (
        "float64-beyond-float32",
        lambda ctx: _huge_float64(ctx["tmp"]),
        "pattern (2, 1) holds values beyond the float32 range",
    ),
    (
        "float32-sums-overflow",
        lambda ctx: _float32_sums_overflow(ctx["tmp"]),
        "pattern (0, 0) gives non-finite values",
    ),
]


@pytest.fixture
def ctx(data, tmp_path, sessions_dir):
    folder = make_session_with_rounds("s", data, rounds=1)
    return {"session": folder, "data": data, "tmp": tmp_path, "out": tmp_path / "sim.h5"}


@pytest.mark.parametrize(("setup", "fragment"), [pytest.param(s, f, id=i) for i, s, f in NUMBERS])
def test_numbers_are_checked_where_they_enter(run_cli, ctx, setup, fragment):
    args = setup(ctx)
    result = run_cli(*args)
    if args[0] == "preprocess":  # found while streaming: below the progress bar
        assert result.code == 2 and "Traceback" not in result.err
        errors = [line for line in result.err_lines if line.startswith("ghosttui: error: ")]
        assert errors == result.err_lines[-1:] and fragment in errors[0], result.err
        line = errors[0]
    else:
        line = assert_one_line_error(result, fragment)
    if any(isinstance(a, os.PathLike) for a in args) and args[0] in ("info", "preprocess"):
        assert str(args[1]) in line  # a bad file is named
    if setup.__qualname__.startswith("_toml"):
        assert str(ctx["session"] / "session.toml") in line  # a bad setting names its file
    assert not ctx["out"].exists()


# -- "internal error" is for bugs only ------------------------------------------------------------
def test_the_whole_battery_never_says_internal_error_but_a_bug_does(run_cli, ctx, monkeypatch):
    for name, setup, _ in NUMBERS:
        folder = ctx["session"]
        shutil.rmtree(folder)
        make_session_with_rounds("s", ctx["data"], rounds=1)
        result = run_cli(*setup(ctx))
        assert result.code == 2 and "internal error" not in result.err, (name, result.err)
    # a real bug is still reported as one, with exit status 1
    import ghosttui.session.store as store_module

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a real bug")

    monkeypatch.setattr(store_module.LabelStore, "models", bug)
    result = run_cli("status", "s")
    assert result.code == 1
    assert "ghosttui: internal error: ZeroDivisionError: a real bug" in result.err
