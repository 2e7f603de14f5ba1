"""What runs on a Dask worker: the model plugin and the tasks (plain functions over paths).

Tasks receive paths, pattern ranges and plain settings, never open file handles;
each opens its file itself. The model is built once per worker by
:class:`ModelPlugin` (registered by the client, set up on every worker, lazily
built on the worker's first task so that a device error reaches the client as
that task's error); the plugin also sets the worker's torch threads instead of
inheriting whatever the process started with.

A :class:`~ghosttui.errors.GhostError` raised here reaches the client with the
worker's address added, so a file missing on one node says so.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from distributed import WorkerPlugin, get_worker

from ghosttui.data.options import LoadOptions
from ghosttui.errors import GhostError
from ghosttui.inference.blocks import ModelBundle, ScanPlan, classify_range, plan_scan
from ghosttui.inference.series import ScanRef, discover_series
from ghosttui.model.device import resolve_device
from ghosttui.patterns.settings import PreprocessSettings

T = TypeVar("T")


def cores() -> int:
    """CPU cores this process may use (its affinity mask, which containers set)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def host_of(address: str) -> str:
    """``tcp://10.0.0.5:40123`` -> ``10.0.0.5``."""
    return address.split("://", 1)[-1].rsplit(":", 1)[0]


class ThreadsPlugin(WorkerPlugin):
    """Sets torch's threads on every worker (and on workers that join or restart later)."""

    idempotent = False

    def __init__(self, torch_threads: dict[str, int]) -> None:
        self.torch_threads = torch_threads  # by host; a host not listed gets one thread

    def setup(self, worker: Any) -> None:
        torch.set_num_threads(max(1, int(self.torch_threads.get(host_of(worker.address), 1))))


class ModelPlugin(ThreadsPlugin):
    """Holds the model on a worker: built once, on the worker's device, on first use."""

    def __init__(self, bundle: ModelBundle, device: str, torch_threads: dict[str, int]) -> None:
        super().__init__(torch_threads)
        self.bundle = bundle
        self.device = device
        self._model: tuple[torch.nn.Module, torch.device] | None = None

    def setup(self, worker: Any) -> None:
        super().setup(worker)
        self._model = None

    def teardown(self, worker: Any) -> None:
        self._model = None

    def model(self) -> tuple[torch.nn.Module, torch.device]:
        if self._model is None:
            device = resolve_device(self.device)
            self._model = (self.bundle.build(device), device)
        return self._model


def on_worker(task: Callable[..., T]) -> Callable[..., T]:
    """Add the worker's address to the user errors a task raises."""

    @functools.wraps(task)
    def run(*args: Any, **kwargs: Any) -> T:
        try:
            return task(*args, **kwargs)
        except GhostError as exc:
            try:
                where = get_worker().address
            except ValueError:  # not on a worker (called directly)
                raise exc from None
            raise type(exc)(f"{exc.message} (on Dask worker {where})", exc.path) from None

    return run


@on_worker
def discover_task(
    inputs: Sequence[str], options: LoadOptions, exclude: Sequence[str]
) -> list[ScanRef]:
    return discover_series(inputs, options, exclude=exclude)


@on_worker
def plan_task(ref: ScanRef, settings: PreprocessSettings) -> ScanPlan:
    return plan_scan(ref, settings)


@on_worker
def classify_task(
    plan: ScanPlan, settings: PreprocessSettings, plugin: str, start: int, stop: int
) -> tuple[np.ndarray, str]:
    """Probabilities of patterns ``start..stop``, and whether they came from a cache or raw."""
    model, device = get_worker().plugins[plugin].model()
    probabilities = classify_range(plan, settings, model, device, start, stop)
    return probabilities, "cache" if plan.cache and Path(plan.cache).exists() else "raw"


@on_worker
def build_cache_task(
    ref: ScanRef, settings: PreprocessSettings, cache_dir: str | None, rebuild: bool
) -> tuple[str, bool, float]:
    """Build (or find) one scan's cache on this worker: (path, reused, seconds)."""
    from ghosttui.inference.blocks import cache_file
    from ghosttui.patterns.cache import open_or_build

    started = time.perf_counter()
    reused = cache_file(ref, settings, cache_dir).exists() and not rebuild
    cache = open_or_build(ref.path, ref.options, settings, cache_dir=cache_dir, rebuild=rebuild)
    cache.close()
    return str(Path(cache.path)), reused, time.perf_counter() - started


def worker_cores() -> int:
    """Cores of the machine a worker runs on (called on every worker with ``Client.run``)."""
    return cores()
