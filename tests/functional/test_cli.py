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


def test_preprocess_shows_no_progress_bar_when_the_cache_is_ready(run_cli, sim_file):
    first = run_cli("preprocess", sim_file, "--size", "16")
    assert "preprocessing" in first.err and "384/384" in first.err  # the bar, at its end
    second = run_cli("preprocess", sim_file, "--size", "16")
    assert second.code == 0
    assert "reused" in second.out
    assert second.err == ""  # no empty "0/?" bar


# -- info describes a file that needs an option to be one scan ---------------------------
def test_info_describes_a_stack_and_names_the_scan_option(run_cli, tmp_path):
    path = tmp_path / "stack.npy"
    np.save(path, np.ones((12, 8, 8), np.float32))
    result = run_cli("info", path)
    assert result.code == 0, result.err
    assert "NumPy .npy" in result.out
    assert "(12, 8, 8)" in result.out and "float32" in result.out
    assert "add --scan RXxRY with RX x RY = 12 patterns" in result.out
    assert f"ghosttui info {path} --scan RXxRY" in result.out
    assert result.err == ""


def test_info_lists_several_4d_datasets_and_names_the_dataset_option(run_cli, tmp_path):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["one"] = np.ones((2, 3, 4, 4), np.uint16)
        f["group/two"] = np.ones((5, 2, 8, 8), np.float32)
        f["stack"] = np.ones((7, 4, 4), np.uint8)
        f["image"] = np.ones((4, 4))
    result = run_cli("info", path)
    assert result.code == 0, result.err
    rows = {line.split()[1]: line for line in result.out.splitlines() if line.startswith("│ /")}
    assert set(rows) == {"/one", "/group/two", "/stack"}  # the 2D image cannot be a scan
    assert "(2, 3, 4, 4)" in rows["/one"] and "uint16" in rows["/one"] and " 6 " in rows["/one"]
    assert "(5, 2, 8, 8)" in rows["/group/two"] and "float32" in rows["/group/two"]
    assert "(7, 4, 4)" in rows["/stack"] and " 7 " in rows["/stack"]
    assert "add --dataset with one of the datasets above" in result.out
    assert f"ghosttui info {path} --dataset /group/two" in result.out  # the first, in file order


def test_info_keeps_the_units_of_a_prismatic_emd_file(run_cli):
    path = DATA / "emd" / "Si100_4D.emd"
    dataset = "/4DSTEM_simulation/data/datacubes/CBED_array_depth0000/datacube"
    result = run_cli("info", path, "--dataset", dataset, "--no-preview")
    assert result.code == 0, result.err
    assert "R 0.5 nm/px, Q 0.1842 nm^-1/px" in result.out


def test_info_on_nan_data_warns_in_words_not_with_a_numpy_warning(run_cli, tmp_path):
    import warnings

    path = tmp_path / "nan.npy"
    data = np.random.default_rng(0).poisson(20, (6, 5, 16, 16)).astype(np.float32)
    data[2, 3, 4, 5] = np.nan
    data[4, 0, 0, 0] = np.inf
    np.save(path, data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning would become an internal error
        result = run_cli("info", path)
    assert result.code == 0, result.err
    assert result.err == ""
    assert "2 of the patterns shown hold NaN or Inf (the first at (2, 3)" in result.out


# -- usage lines and help --------------------------------------------------------------------
@pytest.mark.parametrize("command", ["new", "label", "status", "train", "predict", "export"])
def test_usage_lines_name_arguments_in_capitals(run_cli, command):
    result = run_cli(command, "--help")
    assert result.code == 0, result.err
    usage = next(line for line in result.out.splitlines() if "Usage:" in line)
    expected = "[NAME]" if command == "status" else "NAME"
    assert usage.split() == ["Usage:", "ghosttui", command, "[OPTIONS]", expected]


def test_usage_error_shows_the_usage_line_without_braces(run_cli):
    result = run_cli("label")
    assert result.code == 2
    assert "Usage: ghosttui label [OPTIONS] NAME" in result.err
    assert "{" not in result.err


def test_flags_show_no_type_in_help(run_cli):
    for args in (["--help"], ["info", "--help"], ["labels", "--help"]):
        result = run_cli(*args)
        assert result.code == 0
        assert "<bool>" not in result.out, args
        assert "--help" in result.out
    assert "<path>" in run_cli("info", "--help").out  # options that take a value keep theirs


def test_simulate_help_states_the_simulators_defaults(run_cli):
    from ghosttui.simulate import SimulationSettings
    from ghosttui.simulate.compose import MultisliceSettings

    out = " ".join(run_cli("simulate", "--help").out.split())
    assert f"the simulator's, {SimulationSettings.ghost_strength:g}" in out
    assert (
        f"the simulator's, {SimulationSettings.dose:g}; multislice {MultisliceSettings.dose:g}"
        in out
    )
