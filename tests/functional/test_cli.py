"""The info, simulate and preprocess commands, run in-process."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from conftest import DATA

import ghosttui


@pytest.fixture
def calibrated_h5(tmp_path):
    path = tmp_path / "calibrated.h5"
    with h5py.File(path, "w") as f:
        data = f.create_dataset(
            "scans/cube", data=np.random.default_rng(0).poisson(9, (6, 5, 16, 16)).astype("u2")
        )
        data.attrs["R_pixel_size"] = 0.5
        data.attrs["R_pixel_units"] = "nm"
        data.attrs["Q_pixel_size"] = 0.0125
        data.attrs["Q_pixel_units"] = "A^-1"
    return path


def test_version(run_cli):
    result = run_cli("--version")
    assert result.code == 0
    assert result.out.strip() == f"ghosttui {ghosttui.__version__}"


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("info", ["--dataset", "--scan", "--detector", "--dtype", "--offset", "--format"]),
        ("simulate", ["--scan", "--size", "--seed", "--geometry", "--ghost-strength"]),
        ("preprocess", ["--size", "--pooling", "--crop", "--allow-blank", "--rebuild"]),
    ],
)
def test_every_command_has_help(run_cli, command, options):
    result = run_cli(command, "--help")
    assert result.code == 0, result.err
    assert "Usage" in result.out
    for option in options:
        assert option in result.out, option


def test_top_level_help_lists_the_commands(run_cli):
    result = run_cli("--help")
    assert result.code == 0
    for command in ("info", "simulate", "preprocess"):
        assert command in result.out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["frobnicate"], "No such command"),
        (["info"], "Missing"),
        (["info", "x.h5", "--offset", "abc"], "--offset"),
        (["info", "x.h5", "--colour"], "No such option"),
    ],
    ids=["unknown-command", "missing-file", "bad-integer", "unknown-option"],
)
def test_usage_errors_exit_with_status_2(run_cli, args, fragment):
    result = run_cli(*args)
    assert "Traceback" not in result.err
    assert "internal error" not in result.err
    assert fragment in result.err
    assert result.code == 2


def test_info_on_an_hdf5_file(run_cli, calibrated_h5):
    result = run_cli("info", calibrated_h5, "--no-preview")
    assert result.code == 0, result.err
    out = result.out
    assert "HDF5" in out and "(dataset /scans/cube)" in out
    assert "(Rx, Ry, Qx, Qy) = (6, 5, 16, 16)" in out
    assert "30 patterns" in out
    assert "uint16" in out
    assert "R 0.5 nm/px" in out and "Q 0.0125 A^-1/px" in out
    assert "not built yet" in out
    assert result.err == ""


def test_info_with_preview_draws_a_virtual_bright_field(run_cli, sim_file):
    result = run_cli("info", sim_file)
    assert result.code == 0, result.err
    assert "(Rx, Ry, Qx, Qy) = (24, 16, 64, 64)" in result.out
    assert "virtual bright field (24x16 scan" in result.out
    assert "▀" in result.out  # the image, in half-block cells


def test_info_on_a_real_dm3_stack_with_scan(run_cli):
    path = DATA / "dm" / "test_stackbuilder_imagestack.dm3"
    result = run_cli("info", path, "--scan", "3x1")
    assert result.code == 0, result.err
    assert "Gatan DM" in result.out
    assert "(Rx, Ry, Qx, Qy) = (3, 1, 2, 16)" in result.out
    assert "uint32" in result.out


def test_info_on_raw_binary(run_cli, tmp_path):
    path = tmp_path / "frames.dat"
    path.write_bytes(b"\xff" * 16 + np.arange(6 * 8 * 8, dtype=">u2").tobytes())
    args = ["--scan", "3x2", "--detector", "8x8", "--dtype", ">u2", "--offset", "16"]
    result = run_cli("info", path, *args, "--no-preview")
    assert result.code == 0, result.err
    assert "raw binary" in result.out and "(Rx, Ry, Qx, Qy) = (3, 2, 8, 8)" in result.out


def test_info_reports_a_built_cache(run_cli, calibrated_h5):
    assert "not built yet" in run_cli("info", calibrated_h5, "--no-preview").out
    assert run_cli("preprocess", calibrated_h5).code == 0
    assert "(ready)" in run_cli("info", calibrated_h5, "--no-preview").out


def test_simulate_command(run_cli, tmp_path):
    out, truth = tmp_path / "sim.h5", tmp_path / "truth.npy"
    result = run_cli(
        "simulate", out, "--scan", "8x6", "--size", "32", "--seed", "4", "--truth-npy", truth
    )
    assert result.code == 0, result.err
    assert f"wrote {out}: 8x6 scan of 32x32 patterns" in result.out
    with h5py.File(out, "r") as f:
        assert f["data"].shape == (8, 6, 32, 32)
        assert np.array_equal(np.load(truth), f["truth"][()])
        # the command's documented default
        assert f["simulation"].attrs["ghost_strength"] == pytest.approx(0.05)


def test_simulate_command_bad_geometry(run_cli, tmp_path):
    result = run_cli("simulate", tmp_path / "x.h5", "--geometry", "spiral")
    assert result.code == 2
    assert result.err_lines[-1].startswith("ghosttui: error: unknown --geometry 'spiral'")
    assert not (tmp_path / "x.h5").exists()


def test_preprocess_builds_then_reuses(run_cli, sim_file, cache_dir):
    first = run_cli("preprocess", sim_file, "--size", "16")
    assert first.code == 0, first.err
    assert "(24x16 patterns of 16x16): built in" in first.out
    (cache,) = cache_dir.iterdir()
    assert str(cache) in first.out
    second = run_cli("preprocess", sim_file, "--size", "16")
    assert second.code == 0
    assert "(24x16 patterns of 16x16): reused" in second.out
    third = run_cli("preprocess", sim_file, "--size", "16", "--rebuild")
    assert "built in" in third.out
    assert list(cache_dir.iterdir()) == [cache]


def test_preprocess_cache_dir_option(run_cli, sim_file, tmp_path, cache_dir):
    elsewhere = tmp_path / "my_caches"
    result = run_cli("preprocess", sim_file, "--size", "8", "--cache-dir", elsewhere)
    assert result.code == 0, result.err
    assert len(list(elsewhere.iterdir())) == 1
    assert list(cache_dir.iterdir()) == []
