"""Series in one process: discovery (files, globs, folders, 5D HDF5), the resumable writer,
the single-process engine and the predict / preprocess commands on a series."""

from __future__ import annotations

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
from conftest import SIM_SETTINGS, assert_one_line_error

from ghosttui.data.formats import open_scan
from ghosttui.data.options import LoadOptions
from ghosttui.errors import DataError, ModelError
from ghosttui.inference import blocks
from ghosttui.inference.blocks import (
    ModelBundle,
    ScanPlan,
    classify_range,
    plan_scan,
    row_blocks,
)
from ghosttui.inference.jobs import predict_session, preprocess_series
from ghosttui.inference.report import Reporter
from ghosttui.inference.series import discover_series, expand_inputs
from ghosttui.inference.writer import SeriesWriter
from ghosttui.model.predict import predict_cache
from ghosttui.patterns.cache import open_or_build
from ghosttui.session.session import Session
from ghosttui.simulate import simulate

pytestmark = pytest.mark.usefixtures("one_torch_thread")
CPU = __import__("torch").device("cpu")


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory):
    """Three small simulated scans (different seeds) named so that natural order matters."""
    folder = tmp_path_factory.mktemp("series")
    for i, seed in zip((1, 2, 10), (21, 22, 23), strict=True):
        settings = type(SIM_SETTINGS)(**{**SIM_SETTINGS.__dict__, "seed": seed})
        simulate(folder / f"scan_{i}.h5", settings)
    (folder / "notes.txt").write_text("not data")
    (folder / ".hidden.h5").write_bytes(b"")
    return folder


def five_d(path, scans):
    """A 5D series (T, Rx, Ry, Qx, Qy) made of the /data of ``scans``."""
    stack = [h5py.File(s, "r")["data"][()] for s in scans]
    with h5py.File(path, "w") as f:
        f["series"] = np.stack(stack)
    return path


# -- discovery --------------------------------------------------------------------------------
def test_a_folder_a_glob_and_files_in_natural_order(series_dir, tmp_path):
    names = ["scan_1.h5", "scan_2.h5", "scan_10.h5"]
    files, series = expand_inputs([series_dir])
    assert [f.name for f in files] == names and series
    files, series = expand_inputs([str(series_dir / "scan_*.h5")])
    assert [f.name for f in files] == names and series
    files, series = expand_inputs([series_dir / "scan_10.h5"])
    assert [f.name for f in files] == ["scan_10.h5"] and not series
    # the output file is never taken as input
    files, _ = expand_inputs([series_dir], exclude=[series_dir / "scan_2.h5"])
    assert [f.name for f in files] == ["scan_1.h5", "scan_10.h5"]


def test_discovered_scans_carry_shapes_fingerprints_and_group_names(series_dir, tmp_path):
    refs = discover_series([series_dir, series_dir / "scan_1.h5"])
    assert [r.name for r in refs] == ["scan_1", "scan_2", "scan_10", "scan_1_2"]
    assert all(r.shape == (24, 16, 64, 64) and r.itemsize == 2 for r in refs)
    assert refs[0].fingerprint == refs[3].fingerprint != refs[1].fingerprint
    (single,) = discover_series([series_dir / "scan_2.h5"])
    assert single.name is None  # one plain file: results at the file's root


def test_a_5d_hdf5_file_is_a_series_of_scans(series_dir, tmp_path):
    scans = [series_dir / "scan_1.h5", series_dir / "scan_2.h5"]
    path = five_d(tmp_path / "insitu.h5", scans)
    refs = discover_series([path])
    assert [r.name for r in refs] == ["insitu_t0000", "insitu_t0001"]
    assert [r.options.series_index for r in refs] == [0, 1]
    for ref, scan_path in zip(refs, scans, strict=True):
        with ref.open() as member, open_scan(scan_path) as original:
            assert member.shape == original.shape
            np.testing.assert_array_equal(member.read(5, 40), original.read(5, 40))
    with pytest.raises(DataError, match=r"series of 2 scans .* read it as a series"):
        open_scan(path)
    with pytest.raises(DataError, match="there is no scan 2"):
        open_scan(path, LoadOptions(series_index=2))
    with pytest.raises(DataError, match="holds no 5D series"):
        open_scan(scans[0], LoadOptions(series_index=0))


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        (["{d}/missing.h5"], "missing.h5: no such file"),
        (["{d}/nothing_*.h5"], "no files match"),
        (["{empty}"], "holds no data files"),
    ],
)
def test_discovery_errors_name_the_input(series_dir, tmp_path, inputs, fragment):
    (tmp_path / "empty").mkdir()
    inputs = [i.format(d=series_dir, empty=tmp_path / "empty") for i in inputs]
    with pytest.raises(DataError, match=fragment):
        discover_series(inputs)


# -- the per-scan work ---------------------------------------------------------------------
def test_row_blocks_cover_the_scan_in_whole_rows(series_dir):
    (ref,) = discover_series([series_dir / "scan_1.h5"])
    row = 16 * 64 * 64 * 2
    assert row_blocks(ref, 5 * row) == [(0, 80), (80, 160), (160, 240), (240, 320), (320, 384)]
    assert row_blocks(ref) == [(0, 384)]
    assert row_blocks(ref, 1) == [(r * 16, r * 16 + 16) for r in range(24)]


@pytest.mark.slow  # the quick-model fixture trains a model
def test_raw_blocks_and_the_cache_give_the_same_probabilities(
    quick_model_session, series_dir, tmp_path
):
    with Session.open(str(quick_model_session), writable=False) as session:
        bundle = ModelBundle.from_checkpoint(session.load_model(session.find_model()))
        settings = session.settings.preprocess
    model = bundle.build(CPU)
    (ref,) = discover_series([series_dir / "scan_2.h5"])
    raw_plan = plan_scan(ref, settings)
    assert raw_plan.cache is None and raw_plan.detector is not None
    whole = classify_range(raw_plan, settings, model, CPU, 0, ref.n_patterns)
    # any split into row blocks gives the same probabilities
    pieces = [classify_range(raw_plan, settings, model, CPU, a, b) for a, b in row_blocks(ref, 1)]
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-6, rtol=0)
    # ... and so does the cache of the same scan, once it exists
    with open_or_build(ref.path, ref.options, settings) as cache:
        from_cache = predict_cache(model, cache, CPU).reshape(-1, whole.shape[1])
    cache_plan = plan_scan(ref, settings)
    assert cache_plan.cache is not None
    np.testing.assert_allclose(from_cache, whole, atol=1e-6, rtol=0)
    np.testing.assert_allclose(
        classify_range(cache_plan, settings, model, CPU, 0, ref.n_patterns),
        whole,
        atol=1e-6,
        rtol=0,
    )
    assert np.array_equal(from_cache.argmax(1), whole.argmax(1))
    # the plan carries the survey the cache was built with: a worker without the cache file
    # classifies the raw patterns with it, and gets the same probabilities again
    np.testing.assert_array_equal(cache_plan.detector.hot_pixels, raw_plan.detector.hot_pixels)
    assert cache_plan.detector.beam_centre == raw_plan.detector.beam_centre
    assert cache_plan.detector.beam_radius == raw_plan.detector.beam_radius
    elsewhere = ScanPlan(ref, cache_plan.detector, str(tmp_path / "not-on-this-worker.h5"))
    np.testing.assert_array_equal(
        classify_range(elsewhere, settings, model, CPU, 0, ref.n_patterns), whole
    )


# -- the writer ------------------------------------------------------------------------------
def writer(path, run_key="k1", layout="series", **kw):
    return SeriesWriter(
        path, ["a", "b"], run_key=run_key, round=1, session="s", layout=layout, **kw
    )


def probabilities(seed):
    p = np.random.default_rng(seed).random((24, 16, 2)).astype(np.float32)
    return p / p.sum(-1, keepdims=True)


def test_the_writer_resumes_and_drops_a_half_written_scan(series_dir, tmp_path):
    refs = discover_series([series_dir])
    out = tmp_path / "out.h5"
    with writer(out) as w:
        assert not any(w.done(r) for r in refs)
        w.write(refs[0], probabilities(0))
        w.write(refs[1], probabilities(1))
    with h5py.File(out, "a") as f:  # a run killed while it wrote the third scan
        half = f.create_group("scan_10")
        half.create_dataset("probabilities", data=probabilities(2)[:5])
    with writer(out) as w:
        assert w.dropped == ["scan_10"]
        assert [w.done(r) for r in refs] == [True, True, False]
        w.write(refs[2], probabilities(2))
    with h5py.File(out, "r") as f:
        assert sorted(f) == ["scan_1", "scan_10", "scan_2"]
        for i, name in enumerate(["scan_1", "scan_2", "scan_10"]):
            node = f[name]
            assert node.attrs["complete"]
            assert node.attrs["source"] == refs[i].path
            np.testing.assert_array_equal(node["probabilities"][()], probabilities(i))
            np.testing.assert_array_equal(node["classes"][()], probabilities(i).argmax(-1))


def test_the_writer_refuses_another_model_and_another_file(series_dir, tmp_path):
    refs = discover_series([series_dir])
    out = tmp_path / "out.h5"
    with writer(out) as w:
        w.write(refs[0], probabilities(0))
    before = out.read_bytes()
    with pytest.raises(ModelError, match=r"another model or settings .* --overwrite"):
        writer(out, run_key="k2").__enter__()
    with pytest.raises(ModelError, match="laid out as a series, not a scan"):
        writer(out, layout="scan").__enter__()
    other = refs[1].__class__(**{**refs[1].__dict__, "name": "scan_1"})
    with writer(out) as w, pytest.raises(ModelError, match="already holds scan scan_1 from"):
        w.done(other)
    assert out.read_bytes() == before
    # --overwrite replaces the file only once the new run's first scan is written
    with writer(out, run_key="k2", overwrite=True) as w:
        assert not w.done(refs[0])
        assert out.read_bytes() == before
        w.write(refs[1], probabilities(5))
    with h5py.File(out, "r") as f:
        assert list(f) == ["scan_2"] and f.attrs["run_key"] == "k2"


# -- the engine, the commands ----------------------------------------------------------------
class Recorder(Reporter):
    def __init__(self):
        self.total = 0
        self.advanced = 0
        self.done = []
        self.skipped = []

    def start(self, total_patterns, n_scans, skipped):
        self.total = total_patterns
        self.skipped = [r.name for r in skipped]

    def advance(self, patterns):
        self.advanced += patterns

    def scan_done(self, outcome):
        self.done.append(outcome.ref.name)


@pytest.mark.slow  # the quick-model fixture trains a model
def test_a_series_resumes_after_a_failure_mid_series(
    quick_model_session, series_dir, tmp_path, monkeypatch
):
    out = tmp_path / "series.h5"
    calls = []
    original = blocks.classify_range

    def fails_on_the_second_scan(plan, *args, **kwargs):
        calls.append(plan.ref.name)
        if plan.ref.name == "scan_2":
            raise DataError("read failed (simulated I/O error)", plan.ref.path)
        return original(plan, *args, **kwargs)

    monkeypatch.setattr("ghosttui.inference.local.classify_range", fails_on_the_second_scan)
    with Session.open(str(quick_model_session), writable=False) as session:
        with pytest.raises(DataError, match="simulated I/O error"):
            predict_session(session, out, inputs=[series_dir], reporter=Recorder())
        with h5py.File(out, "r") as f:
            assert list(f) == ["scan_1"] and f["scan_1"].attrs["complete"]
        monkeypatch.setattr("ghosttui.inference.local.classify_range", original)
        recorder = Recorder()
        result = predict_session(session, out, inputs=[series_dir], reporter=recorder)
    assert recorder.skipped == ["scan_1"]
    assert recorder.done == ["scan_2", "scan_10"]
    assert recorder.total == 3 * 384 and recorder.advanced == 2 * 384
    assert [o.ref.name for o in result.outcomes] == ["scan_2", "scan_10"]
    with h5py.File(out, "r") as f:
        assert sorted(f) == ["scan_1", "scan_10", "scan_2"]
        assert all(f[k].attrs["complete"] for k in f)


@pytest.mark.slow  # the quick-model fixture trains a model
def test_predict_command_on_a_folder_and_a_5d_series(
    run_cli, quick_model_session, series_dir, tmp_path
):
    out = tmp_path / "p.h5"
    result = run_cli("predict", quick_model_session, "--out", out, "--data", series_dir)
    assert result.code == 0, result.err
    assert "wrote" in result.out and "3 scans classified" in result.out
    for name in ("scan_1", "scan_2", "scan_10"):
        assert f"{series_dir / (name + '.h5')}: 24x16 -> horizontal" in result.out
    again = run_cli("predict", quick_model_session, "--out", out, "--data", series_dir)
    assert again.code == 0, again.err
    assert "3 of 3 scans already done by this model: skipped" in again.out
    assert "0 scans classified, 3 already there" in again.out

    insitu = five_d(tmp_path / "insitu.h5", [series_dir / "scan_1.h5", series_dir / "scan_2.h5"])
    out5 = tmp_path / "p5.h5"
    result = run_cli("predict", quick_model_session, "--out", out5, "--data", insitu)
    assert result.code == 0, result.err
    with h5py.File(out, "r") as f, h5py.File(out5, "r") as g:
        assert list(g) == ["insitu_t0000", "insitu_t0001"]
        assert g["insitu_t0001"].attrs["series_index"] == 1
        for member, name in (("insitu_t0000", "scan_1"), ("insitu_t0001", "scan_2")):
            np.testing.assert_allclose(
                g[member]["probabilities"][()], f[name]["probabilities"][()], atol=1e-6
            )


@pytest.mark.slow  # the quick-model fixture trains a model
def test_predict_command_errors_are_one_line(run_cli, quick_model_session, series_dir, tmp_path):
    out = tmp_path / "p.h5"
    assert_one_line_error(
        run_cli("predict", quick_model_session, "--out", out, "--data", tmp_path / "gone.h5"),
        "gone.h5: no such file",
    )
    assert not out.exists()
    assert_one_line_error(
        run_cli("predict", quick_model_session, "--out", out, "--data", series_dir / "x_*.h5"),
        "no files match",
    )
    assert_one_line_error(
        run_cli("predict", quick_model_session, "--out", out, "--resources", "GPU=1"),
        "--resources and --torch-threads need --workers or --scheduler",
    )
    assert_one_line_error(
        run_cli("predict", quick_model_session, "--out", out, "--workers", 0),
        "--workers must be at least 1",
    )
    out.write_bytes(b"not hdf5 at all")
    assert_one_line_error(
        run_cli("predict", quick_model_session, "--out", out),
        "exists but cannot be opened as a prediction file",
    )
    assert out.read_bytes() == b"not hdf5 at all"


def test_preprocess_command_on_a_series(run_cli, series_dir, cache_dir):
    result = run_cli("preprocess", series_dir, "--size", "16")
    assert result.code == 0, result.err
    assert result.out.count("(24x16 patterns of 16x16): built in") == 3
    assert len(list(cache_dir.iterdir())) == 3
    again = run_cli("preprocess", str(series_dir / "scan_*.h5"), "--size", "16")
    assert again.out.count("(24x16 patterns of 16x16): reused") == 3


def test_preprocess_series_builds_the_caches_predict_then_reads(series_dir, cache_dir, tmp_path):
    from ghosttui.patterns.settings import PreprocessSettings

    settings = PreprocessSettings(size=32)
    result = preprocess_series([series_dir], LoadOptions(), settings, reporter=Recorder())
    assert [o.reused for o in result.outcomes] == [False] * 3
    for outcome in result.outcomes:
        assert plan_scan(outcome.ref, settings).cache == outcome.cache
    copy = tmp_path / "scan_copy.h5"  # same content: the cache is found by content
    shutil.copyfile(series_dir / "scan_1.h5", copy)
    (ref,) = discover_series([copy])
    assert plan_scan(ref, settings).cache == result.outcomes[0].cache


@pytest.mark.slow  # the quick-model fixture trains a model
def test_without_workers_nothing_of_dask_or_libertem_is_imported(
    quick_model_session, sim_file, tmp_path
):
    code = (
        "import sys\n"
        "from ghosttui.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(sorted(m for m in ('distributed', 'dask', 'libertem') if m in sys.modules))\n"
    )
    out = tmp_path / "p.h5"
    args = ["predict", str(quick_model_session), "--out", str(out), "--data", str(sim_file)]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert out.exists()
