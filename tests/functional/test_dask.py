"""The Dask engine: a LocalCluster of two worker processes, a scheduler and workers started
as separate processes on localhost, and what goes wrong (unreachable scheduler, a worker
that dies mid-scan, a file missing on the workers, no worker with the resources asked).

Every test here has a deadline (SIGALRM), so a hung cluster fails instead of hanging.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time

import cloudpickle
import dask
import h5py
import numpy as np
import pytest
from conftest import SIM_SETTINGS, assert_one_line_error
from distributed import Client, LocalCluster, WorkerPlugin, get_task_stream

from ghosttui.errors import ClusterError, DataError
from ghosttui.inference.cluster import ClusterSpec
from ghosttui.inference.jobs import predict_session, preprocess_series
from ghosttui.inference.report import Reporter
from ghosttui.session.session import Session
from ghosttui.simulate import simulate

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread", "deadline")]

# the plugins below travel to the workers by value: they need not import this module
cloudpickle.register_pickle_by_value(sys.modules[__name__])

SMALL_TASKS = ClusterSpec(task_bytes=6 * 16 * 64 * 64 * 2)  # 6 rows: 4 tasks per 24-row scan


@pytest.fixture
def deadline():
    def expired(*_):
        raise TimeoutError("the test ran past its deadline (a Dask cluster hung?)")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(240)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def worker_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("worker-cache")


@pytest.fixture(scope="module")
def client(worker_cache):
    """Two worker processes, one thread each; a task may kill one worker and be retried once."""
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
            silence_logs=logging.ERROR,
            env={"GHOSTTUI_CACHE_DIR": str(worker_cache)},
        )
    client = Client(cluster, set_as_default=False, timeout=60)
    client.wait_for_workers(2, timeout=120)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def series_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask-series")
    for i, seed in zip((1, 2, 10), (31, 32, 33), strict=True):
        settings = type(SIM_SETTINGS)(**{**SIM_SETTINGS.__dict__, "seed": seed})
        simulate(folder / f"scan_{i}.h5", settings)
    return folder


class Recorder(Reporter):
    def __init__(self):
        self.done, self.skipped, self.notes, self.advanced = [], [], [], 0

    def start(self, total_patterns, n_scans, skipped):
        self.skipped = [r.name for r in skipped]

    def advance(self, patterns):
        self.advanced += patterns

    def scan_done(self, outcome):
        self.done.append(outcome.ref.name)

    def note(self, text):
        self.notes.append(text)


def session_of(path):
    return Session.open(str(path), writable=False)


def groups(path):
    with h5py.File(path, "r") as f:
        return {k: (bool(f[k].attrs.get("complete")), f[k]["probabilities"][()]) for k in f}


class KillOnTask(WorkerPlugin):
    """SIGKILL the worker when it starts a task whose key matches ``pattern``; with a
    ``marker`` file, only the first time (the retry then succeeds)."""

    def __init__(self, pattern, marker=None):
        self.pattern = pattern
        self.marker = marker

    def transition(self, key, start, finish, **kwargs):
        if finish != "executing" or not re.search(self.pattern, str(key)):
            return
        if self.marker is not None:
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
        os.kill(os.getpid(), signal.SIGKILL)


# -- the same probabilities, whatever the engine -------------------------------------------------
def test_every_engine_gives_the_same_probabilities(client, quick_model_session, sim_file, tmp_path):
    """Single process (raw), the cache, Dask row blocks on two workers, the LiberTEM UDF."""
    from ghosttui.inference.blocks import ModelBundle
    from ghosttui.model.predict import predict_cache
    from ghosttui.patterns.cache import open_or_build

    with session_of(quick_model_session) as session:
        local = predict_session(session, tmp_path / "local.h5", inputs=[sim_file])
        with get_task_stream(client) as stream:
            dask = predict_session(
                session, tmp_path / "dask.h5", inputs=[sim_file], client=client, cluster=SMALL_TASKS
            )
        bundle = ModelBundle.from_checkpoint(session.load_model(session.find_model()))
        settings = session.settings.preprocess
    single = local.outcomes[0].probabilities
    on_dask = dask.outcomes[0].probabilities
    workers = {t["worker"] for t in stream.data if "classify" in str(t["key"])}
    tasks = [t for t in stream.data if "classify" in str(t["key"])]
    assert len(tasks) == 4 and len(workers) == 2  # one scan spread over both workers
    with h5py.File(tmp_path / "dask.h5", "r") as f:
        assert f.attrs["layout"] == "scan" and f.attrs["complete"]
        assert f.attrs["engine"] == "dask" and f.attrs["route"] == "raw"
        np.testing.assert_array_equal(f["probabilities"][()], on_dask)
    import torch

    with open_or_build(sim_file, session.load_options, settings) as cache:
        cached = predict_cache(bundle.build(torch.device("cpu")), cache, torch.device("cpu"))

    libertem = pytest.importorskip("libertem.api")
    from ghosttui.inference.udf import classify_dataset

    with libertem.Context.make_with("inline") as ctx:
        dataset = ctx.load("hdf5", path=str(sim_file), ds_path="/data")
        udf = classify_dataset(ctx, dataset, quick_model_session)["probabilities"]
    # float32 results of the same function on the same inputs; batches of one pattern take
    # another convolution algorithm (3e-8 apart), hence the tolerance
    for other in (on_dask, cached, udf):
        assert other.shape == single.shape == (24, 16, 3)
        np.testing.assert_allclose(other, single, atol=1e-6, rtol=0)
        assert np.array_equal(other.argmax(-1), single.argmax(-1))


# -- a series: in order, resumable, one writer --------------------------------------------------
def test_a_series_on_dask_is_written_in_order_and_resumes(
    client, quick_model_session, series_dir, tmp_path
):
    out = tmp_path / "series.h5"
    with session_of(quick_model_session) as session:
        local = predict_session(session, tmp_path / "local.h5", inputs=[series_dir])
        recorder = Recorder()
        result = predict_session(
            session, out, inputs=[series_dir], client=client, cluster=SMALL_TASKS, reporter=recorder
        )
        assert recorder.done == ["scan_1", "scan_2", "scan_10"]  # written in series order
        assert recorder.advanced == 3 * 384
        again = Recorder()
        rerun = predict_session(
            session, out, inputs=[series_dir], client=client, cluster=SMALL_TASKS, reporter=again
        )
    assert again.skipped == ["scan_1", "scan_2", "scan_10"] and rerun.outcomes == []
    assert [o.ref.name for o in result.outcomes] == ["scan_1", "scan_2", "scan_10"]
    written = groups(out)
    for outcome in local.outcomes:
        complete, probabilities = written[outcome.ref.name]
        assert complete
        np.testing.assert_allclose(probabilities, outcome.probabilities, atol=1e-6, rtol=0)


def test_preprocess_of_a_series_on_dask_builds_each_cache_on_a_worker(client, series_dir, tmp_path):
    from ghosttui.data.options import LoadOptions
    from ghosttui.patterns.cache import PatternCache, open_or_build
    from ghosttui.patterns.settings import PreprocessSettings

    settings = PreprocessSettings(size=16)
    folder = tmp_path / "caches"
    result = preprocess_series(
        [series_dir], LoadOptions(), settings, cache_dir=folder, client=client, reporter=Recorder()
    )
    assert [o.ref.name for o in result.outcomes] == ["scan_1", "scan_2", "scan_10"]
    assert len(list(folder.iterdir())) == 3
    for outcome in result.outcomes:
        assert not outcome.reused
        with (
            PatternCache(outcome.cache) as remote,
            open_or_build(
                outcome.ref.path, LoadOptions(), settings, cache_dir=tmp_path / "here"
            ) as local,
        ):
            np.testing.assert_array_equal(remote.read(0, 384), local.read(0, 384))


# -- a worker that dies mid-scan ---------------------------------------------------------------
def test_a_worker_killed_mid_scan_is_retried_and_the_result_is_the_same(
    client, quick_model_session, series_dir, tmp_path
):
    marker = tmp_path / "killed-once"
    client.register_plugin(KillOnTask(r"ghosttui-classify-\w+-1-0$", str(marker)), name="kill-once")
    try:
        with session_of(quick_model_session) as session:
            result = predict_session(
                session, tmp_path / "p.h5", inputs=[series_dir], client=client, cluster=SMALL_TASKS
            )
            local = predict_session(session, tmp_path / "local.h5", inputs=[series_dir])
    finally:
        client.unregister_worker_plugin("kill-once")
    assert marker.exists()  # a worker really died while classifying scan_2
    assert [o.ref.name for o in result.outcomes] == ["scan_1", "scan_2", "scan_10"]
    for ours, theirs in zip(result.outcomes, local.outcomes, strict=True):
        np.testing.assert_allclose(ours.probabilities, theirs.probabilities, atol=1e-6, rtol=0)
    client.wait_for_workers(2, timeout=120)


def test_a_scan_that_kills_every_worker_stops_the_run_and_keeps_what_was_finished(
    client, quick_model_session, series_dir, tmp_path
):
    out = tmp_path / "p.h5"
    # the first block of scan_2 kills every worker that runs it; Dask counts the death against
    # every task the worker held, so the block reported may be one queued beside it
    client.register_plugin(KillOnTask(r"ghosttui-classify-\w+-1-0$"), name="kill-always")
    try:
        with (
            session_of(quick_model_session) as session,
            pytest.raises(
                ClusterError, match=r"scan_\d+\.h5: rows \d+-\d+: the Dask worker running it died"
            ),
        ):
            predict_session(session, out, inputs=[series_dir], client=client, cluster=SMALL_TASKS)
    finally:
        client.unregister_worker_plugin("kill-always")
    client.wait_for_workers(2, timeout=120)
    before = groups(out)
    assert set(before) <= {"scan_1"}  # nothing of scan_2 or of what follows it
    assert all(complete for complete, _ in before.values())
    recorder = Recorder()
    with session_of(quick_model_session) as session:
        predict_session(
            session, out, inputs=[series_dir], client=client, cluster=SMALL_TASKS, reporter=recorder
        )
    assert recorder.skipped == sorted(before)
    assert recorder.done == [n for n in ("scan_1", "scan_2", "scan_10") if n not in before]
    assert sorted(groups(out)) == ["scan_1", "scan_10", "scan_2"]


# -- bad input: one line each --------------------------------------------------------------------
def test_a_file_missing_on_the_workers_is_named(client, quick_model_session, tmp_path):
    with (
        session_of(quick_model_session) as session,
        pytest.raises(DataError, match=r"gone\.h5: no such file \(on Dask worker tcp://127"),
    ):
        predict_session(session, tmp_path / "p.h5", inputs=[tmp_path / "gone.h5"], client=client)
    assert not (tmp_path / "p.h5").exists()


def test_no_worker_with_the_resources_asked_for(client, quick_model_session, sim_file, tmp_path):
    spec = ClusterSpec(resources={"GPU": 1}, resource_timeout=1.0)
    started = time.monotonic()
    with (
        session_of(quick_model_session) as session,
        pytest.raises(ClusterError, match=r"no Dask worker offers GPU=1 \(waited 1 s"),
    ):
        predict_session(session, tmp_path / "p.h5", inputs=[sim_file], client=client, cluster=spec)
    assert time.monotonic() - started < 30


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_scheduler_is_one_line_and_quick(run_cli, quick_model_session, tmp_path):
    address = f"tcp://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    result = run_cli(
        "predict",
        quick_model_session,
        "--out",
        tmp_path / "p.h5",
        "--scheduler",
        address,
        "--connect-timeout",
        "2",
    )
    assert_one_line_error(result, f"cannot reach the Dask scheduler at {address} within 2 s")
    assert time.monotonic() - started < 20
    assert not (tmp_path / "p.h5").exists()


# -- the command line on a local cluster and on separately started processes ---------------------
def test_predict_command_with_workers(run_cli, quick_model_session, series_dir, tmp_path):
    out = tmp_path / "p.h5"
    result = run_cli(
        "predict",
        quick_model_session,
        "--out",
        out,
        "--data",
        series_dir,
        "--workers",
        2,
        "--no-dashboard",
    )
    assert result.code == 0, result.err
    assert "Dask: 2 workers, 2 threads at tcp://127.0.0.1:" in result.out
    assert "dashboard" not in result.out
    assert "3 scans classified" in result.out
    assert sorted(groups(out)) == ["scan_1", "scan_10", "scan_2"]


@pytest.fixture
def separate_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 (one offers GPU=1),
    started in another folder with their own cache; killed at teardown."""
    bin_dir = os.path.dirname(sys.executable)
    dask_cli = os.path.join(bin_dir, "dask")
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "GHOSTTUI_CACHE_DIR": str(tmp_path / "worker-cache")}
    procs = []

    def start(*args):
        procs.append(
            subprocess.Popen(
                [dask_cli, *args],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    try:
        start(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        )
        for extra in (["--resources", "GPU=1"], []):
            start(
                "worker",
                "--scheduler-file",
                str(scheduler_file),
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                *extra,
            )
        for _ in range(600):
            if scheduler_file.exists() and scheduler_file.stat().st_size:
                break
            time.sleep(0.1)
        with Client(scheduler_file=str(scheduler_file), timeout=60) as probe:
            probe.wait_for_workers(2, timeout=120)
            address = probe.scheduler.address
            gpu_worker = next(
                a for a, w in probe.scheduler_info()["workers"].items() if w["resources"]
            )
        yield address, gpu_worker
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_predict_command_on_separately_started_scheduler_and_workers(
    run_cli, separate_cluster, quick_model_session, series_dir, tmp_path
):
    address, gpu_worker = separate_cluster
    out = tmp_path / "p.h5"
    result = run_cli(
        "predict",
        quick_model_session,
        "--out",
        out,
        "--data",
        series_dir,
        "--scheduler",
        address,
        "--resources",
        "GPU=1",
        "--device",
        "cpu",
    )
    assert result.code == 0, result.err
    assert f"Dask: 2 workers, 2 threads at {address}" in result.out
    with session_of(quick_model_session) as session:
        local = predict_session(session, tmp_path / "local.h5", inputs=[series_dir])
    written = groups(out)
    for outcome in local.outcomes:
        complete, probabilities = written[outcome.ref.name]
        assert complete
        np.testing.assert_allclose(probabilities, outcome.probabilities, atol=1e-6, rtol=0)
    # only the worker offering GPU=1 classified
    with (
        Client(address, timeout=30) as client,
        get_task_stream(client) as stream,
        session_of(quick_model_session) as session,
    ):
        predict_session(
            session,
            tmp_path / "again.h5",
            inputs=[series_dir / "scan_1.h5"],
            client=client,
            cluster=ClusterSpec(resources={"GPU": 1}),
        )
    assert {t["worker"] for t in stream.data if "classify" in str(t["key"])} == {gpu_worker}
    # a file that is not there for the workers: one line naming it and the worker
    line = assert_one_line_error(
        run_cli(
            "predict",
            quick_model_session,
            "--out",
            tmp_path / "q.h5",
            "--data",
            tmp_path / "elsewhere.h5",
            "--scheduler",
            address,
        ),
        "elsewhere.h5: no such file (on Dask worker tcp://127.0.0.1:",
    )
    assert "Traceback" not in line
