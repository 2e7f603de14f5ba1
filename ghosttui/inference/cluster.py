"""The Dask engine: a series on a ``LocalCluster`` (``--workers N``) or an existing cluster
(``--scheduler tcp://HOST:PORT``), with the client as the only writer.

The client never opens a data file: it sends paths, pattern ranges and settings.
Series discovery runs as a task on a worker; every scan gets one planning task
(its cache, or a survey of its detector), whose small result the client sends
with each of the scan's classification tasks, one per block of rows
(:data:`~ghosttui.inference.blocks.TASK_BYTES` of raw data), so one large scan
spreads over every free worker. The model reaches every worker once, in a
worker plugin. Results come back as small probability arrays; the client writes
each scan when all its blocks are in and every earlier scan is written, so the
file fills in order. At most a few scans are in flight at once, which bounds the
client's memory. A worker that dies mid-task has its tasks re-run elsewhere by the
scheduler (``distributed.scheduler.allowed-failures`` times); after that the run
stops with a one-line error and every scan written so far stays in the file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import time
import uuid
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from distributed import Client, Future, KilledWorker, LocalCluster, as_completed

from ghosttui.data.options import LoadOptions
from ghosttui.errors import ClusterError, GhostError
from ghosttui.inference import worker as tasks
from ghosttui.inference.blocks import TASK_BYTES, ModelBundle, ScanPlan, row_blocks
from ghosttui.inference.report import Reporter, ScanOutcome
from ghosttui.inference.series import ScanRef
from ghosttui.inference.writer import SeriesWriter
from ghosttui.patterns.settings import PreprocessSettings


@dataclass(frozen=True)
class ClusterSpec:
    """Where to run: ``workers`` local processes, or the cluster behind ``scheduler``."""

    workers: int | None = None
    scheduler: str | None = None
    resources: dict[str, float] = field(default_factory=dict)  # each task needs these
    torch_threads: int | None = None  # per worker; default: the host's cores shared out
    connect_timeout: float = 10.0
    resource_timeout: float = 30.0
    dashboard: str | None = ":8787"  # LocalCluster dashboard address; None: none
    task_bytes: int = TASK_BYTES
    scans_in_flight: int = 4

    def __post_init__(self) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise ClusterError("give --workers or --scheduler, not both")
        if self.workers is not None and self.workers < 1:
            raise ClusterError(f"--workers must be at least 1 (got {self.workers})")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ClusterError(f"--torch-threads must be at least 1 (got {self.torch_threads})")


def parse_resources(text: str | None) -> dict[str, float]:
    """``"GPU=1,MEMORY=8e9"`` -> ``{"GPU": 1.0, "MEMORY": 8e9}``."""
    resources: dict[str, float] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not sep or not name.strip() or amount <= 0:
            raise ClusterError(f"--resources must look like GPU=1[,NAME=AMOUNT] (got {text!r})")
        resources[name.strip()] = amount
    return resources


@contextlib.contextmanager
def connect(spec: ClusterSpec) -> Iterator[Client]:
    """A client of a new ``LocalCluster`` or of the scheduler at ``spec.scheduler``."""
    if spec.scheduler is not None:
        try:
            client = Client(spec.scheduler, timeout=spec.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise ClusterError(
                f"cannot reach the Dask scheduler at {spec.scheduler} within "
                f"{spec.connect_timeout:g} s ({reason})"
            ) from None
        with client:
            yield client
        return
    try:
        with warnings.catch_warnings():
            # "Port 8787 is already in use ... instead": the address we print says where it is
            warnings.filterwarnings("ignore", message="Port .* is already in use")
            cluster = LocalCluster(
                n_workers=spec.workers or 1,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=spec.dashboard,
                # without a dashboard, the scheduler's HTTP server (health, metrics) on a free port
                scheduler_kwargs=None if spec.dashboard else {"dashboard_address": ":0"},
                resources=spec.resources or None,
                silence_logs=logging.ERROR,
            )
    except (OSError, TimeoutError, RuntimeError) as exc:
        raise ClusterError(f"cannot start a local Dask cluster ({exc})") from exc
    with cluster, Client(cluster, set_as_default=False) as client:
        yield client


def _scheduler_has_dashboard() -> bool:
    """Run on the scheduler: whether it can draw its dashboard pages (they need bokeh)."""
    return importlib.util.find_spec("bokeh") is not None


def describe(client: Client, dashboard: bool = True) -> str:
    """``Dask: 2 workers, 2 threads at tcp://...; dashboard http://...``."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    text = f"Dask: {len(workers)} workers, {threads} threads at {info.get('address', '?')}"
    if dashboard and "dashboard" in info.get("services", {}):
        try:
            running = client.run_on_scheduler(_scheduler_has_dashboard)
        except Exception:  # a scheduler without ghosttui installed cannot run the check
            running = True
        if running:
            text += f"; dashboard {client.dashboard_link}"
        else:
            text += "; no dashboard pages without bokeh (pip install 'ghosttui[dashboard]')"
    return text


def torch_threads_by_host(client: Client, override: int | None) -> dict[str, int]:
    """Torch threads per worker on each host: the host's cores over its Dask threads."""
    workers = client.scheduler_info().get("workers", {})
    if override is not None:
        return {tasks.host_of(address): override for address in workers}
    host_cores = client.run(tasks.worker_cores)
    dask_threads: dict[str, int] = {}
    cores: dict[str, int] = {}
    for address, info in workers.items():
        host = tasks.host_of(address)
        dask_threads[host] = dask_threads.get(host, 0) + int(info.get("nthreads", 1))
        cores[host] = int(host_cores.get(address, 1))
    return {host: max(1, cores[host] // max(1, dask_threads[host])) for host in cores}


def wait_for_resources(client: Client, resources: dict[str, float], timeout: float) -> None:
    """Wait until some worker offers ``resources``; a one-line error after ``timeout``."""
    if not resources:
        return
    deadline = time.monotonic() + timeout
    while True:
        workers = client.scheduler_info().get("workers", {})
        if any(
            all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items())
            for w in workers.values()
        ):
            return
        if time.monotonic() >= deadline:
            wanted = ",".join(f"{k}={v:g}" for k, v in resources.items())
            offered = sorted({k for w in workers.values() for k in w.get("resources", {})})
            raise ClusterError(
                f"no Dask worker offers {wanted} (waited {timeout:g} s for one; "
                f"{len(workers)} workers, resources offered: {', '.join(offered) or 'none'}); "
                f"start workers with `dask worker SCHEDULER --resources {wanted}`"
            )
        time.sleep(0.2)


def result(future: Future, what: str) -> Any:
    """``future.result()`` with cluster failures as one-line :class:`ClusterError`."""
    try:
        return future.result()
    except GhostError:
        raise
    except KilledWorker as exc:
        last = getattr(exc, "last_worker", None)
        where = f", the last {getattr(last, 'address', last)}" if last else ""
        raise ClusterError(
            f"{what}: the Dask worker running it died, and so did every retry "
            f"(distributed.scheduler.allowed-failures{where}); scans finished before it are kept"
        ) from None
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"{what}: lost the Dask cluster ({exc})") from None


def discover_on_worker(
    client: Client, inputs: list[str], options: LoadOptions, exclude: list[str]
) -> list[ScanRef]:
    """List the series on a worker: the client does not open data files."""
    future = client.submit(
        tasks.discover_task, inputs, options, exclude, key=f"ghosttui-discover-{uuid.uuid4().hex}"
    )
    return result(future, "listing the series")


@dataclass(eq=False)
class _ScanWork:
    index: int  # in this run's list: names its tasks
    ref: ScanRef
    probabilities: np.ndarray | None = None
    remaining: int = 0  # blocks not yet back (-1: the plan is not back yet)
    started: float = 0.0
    route: str = ""
    futures: list[Future] = field(default_factory=list)


def predict_dask(
    client: Client,
    refs: list[ScanRef],
    bundle: ModelBundle,
    settings: PreprocessSettings,
    device: str,
    writer: SeriesWriter,
    reporter: Reporter,
    spec: ClusterSpec,
) -> list[ScanOutcome]:
    """Classify ``refs`` on the cluster; the client writes each scan, in order.

    Each scan's plan (its cache, or its detector survey) is made on a worker and comes
    back to the client, which sends it, stripped to what the pipeline needs (a few
    kilobytes), with every block task: blocks then go to whichever worker is free,
    instead of piling up where the plan was made.
    """
    if not refs:
        return []
    wait_for_resources(client, spec.resources, spec.resource_timeout)
    token = uuid.uuid4().hex[:12]
    plugin = f"ghosttui-model-{bundle.digest[:12]}-{token}"
    client.register_plugin(
        tasks.ModelPlugin(bundle, device, torch_threads_by_host(client, spec.torch_threads)),
        name=plugin,
    )
    threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
    todo = deque(enumerate(refs))
    in_flight: deque[_ScanWork] = deque()
    where: dict[str, tuple[_ScanWork, int, int]] = {}  # block key -> its scan and range
    plans: dict[str, _ScanWork] = {}  # plan key -> its scan
    outcomes: list[ScanOutcome] = []
    running = as_completed(loop=client.loop)

    def plan(index: int, ref: ScanRef) -> None:
        work = _ScanWork(index, ref, remaining=-1, started=time.perf_counter())
        future = client.submit(
            tasks.plan_task, ref, settings, key=f"ghosttui-plan-{token}-{index}", pure=False
        )
        plans[future.key] = work
        work.futures.append(future)
        running.add(future)
        in_flight.append(work)

    def classify(work: _ScanWork, scan_plan: ScanPlan) -> None:
        scan_plan = replace(scan_plan, detector=replace(scan_plan.detector, mean_pattern=None))
        blocks = row_blocks(work.ref, spec.task_bytes)
        work.remaining = len(blocks)
        for start, stop in blocks:
            future = client.submit(
                tasks.classify_task,
                scan_plan,
                settings,
                plugin,
                start,
                stop,
                key=f"ghosttui-classify-{token}-{work.index}-{start}",
                resources=spec.resources or None,
                pure=False,
            )
            where[future.key] = (work, start, stop)
            work.futures.append(future)
            running.add(future)

    def busy() -> int:
        return sum(max(w.remaining, 1) for w in in_flight)

    try:
        while todo or in_flight:
            while todo and (
                not in_flight or (len(in_flight) < spec.scans_in_flight and busy() < 2 * threads)
            ):
                plan(*todo.popleft())
            future = next(running)
            if future.key in plans:
                work = plans.pop(future.key)
                classify(work, result(future, f"{work.ref.label}: planning"))
                continue
            work, start, stop = where.pop(future.key)
            rows = f"rows {start // work.ref.shape[1]}-{(stop - 1) // work.ref.shape[1]}"
            block, work.route = result(future, f"{work.ref.label}: {rows}")
            if work.probabilities is None:
                work.probabilities = np.empty((work.ref.n_patterns, block.shape[1]), np.float32)
            work.probabilities[start:stop] = block
            work.remaining -= 1
            reporter.advance(stop - start)
            while in_flight and in_flight[0].remaining == 0:
                done = in_flight.popleft()
                probabilities = done.probabilities.reshape(*done.ref.shape[:2], -1)
                seconds = time.perf_counter() - done.started
                writer.write(
                    done.ref,
                    probabilities,
                    engine="dask",
                    route=done.route,
                    seconds=round(seconds, 3),
                )
                client.cancel(done.futures)
                outcome = ScanOutcome(done.ref, probabilities, seconds)
                reporter.scan_done(outcome)
                outcomes.append(outcome)
    finally:
        for work in in_flight:
            client.cancel(work.futures)
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(plugin)
    return outcomes


def preprocess_dask(
    client: Client,
    refs: list[ScanRef],
    settings: PreprocessSettings,
    reporter: Reporter,
    spec: ClusterSpec,
    *,
    cache_dir: str | None = None,
    rebuild: bool = False,
) -> list[ScanOutcome]:
    """Build every scan's cache on the workers, one task per scan (each worker's cache)."""
    token = uuid.uuid4().hex[:12]
    plugin = f"ghosttui-threads-{token}"
    client.register_plugin(
        tasks.ThreadsPlugin(torch_threads_by_host(client, spec.torch_threads)), name=plugin
    )
    futures = {
        client.submit(
            tasks.build_cache_task,
            ref,
            settings,
            cache_dir,
            rebuild,
            key=f"ghosttui-preprocess-{token}-{i}",
            pure=False,
        ): ref
        for i, ref in enumerate(refs)
    }
    outcomes = []
    try:
        for future in as_completed(futures, loop=client.loop):
            ref = futures[future]
            path, reused, seconds = result(future, ref.label)
            if reused:
                reporter.found_done(ref.n_patterns)
            else:
                reporter.advance(ref.n_patterns)
            outcome = ScanOutcome(ref, None, seconds, cache=path, reused=reused)
            reporter.scan_done(outcome)
            outcomes.append(outcome)
    finally:
        client.cancel(list(futures))
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(plugin)
    order = {id(ref): i for i, ref in enumerate(refs)}
    return sorted(outcomes, key=lambda o: order[id(o.ref)])
