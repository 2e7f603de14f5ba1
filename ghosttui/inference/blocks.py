"""One scan, or a block of its rows, to probabilities: the work every engine does.

:func:`plan_scan` looks at a scan once (its pattern cache when one exists, else a
survey of the detector: hot pixels, direct beam) and :func:`classify_range`
classifies any range of its patterns through
:func:`ghosttui.model.predict.classify_block`. The single-process path calls it on
the whole scan, a Dask task on a block of rows; everything here is plain data and
plain functions, so it runs the same in this process and on a worker.

Without a cache, raw patterns are read and preprocessed on the fly (one pass over
the file, nothing written); a scan that was preprocessed before (``ghosttui
preprocess``, or the session's own scan) is classified from its cache, which
reads 64x64 float16 inputs instead of raw frames. Both give the same inputs to the
model (see :func:`ghosttui.patterns.cache.stored_precision`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ghosttui.data.formats import load_identity
from ghosttui.errors import DataError
from ghosttui.inference.series import ScanRef
from ghosttui.model.checkpoint import Checkpoint
from ghosttui.model.predict import classify_block, fuse_for_inference
from ghosttui.patterns.cache import (
    BLOCK_BYTES,
    PatternCache,
    cache_key,
    default_cache_dir,
)
from ghosttui.patterns.preprocess import (
    DetectorSurvey,
    PatternPipeline,
    check_block,
    survey,
)
from ghosttui.patterns.settings import PreprocessSettings

CACHE_BATCH = 1024  # model inputs per batch when reading a cache
TASK_BYTES = 64 * 1024 * 1024  # raw bytes per Dask task (a block of whole rows)


@dataclass(eq=False)
class ModelBundle:
    """A trained model as plain data: checkpoint metadata, weights and a content digest."""

    meta: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    digest: str

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> ModelBundle:
        digest = hashlib.blake2b(Path(checkpoint.path).read_bytes(), digest_size=16).hexdigest()
        return cls(dict(checkpoint.meta), dict(checkpoint.state_dict), digest)

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def round(self) -> int:
        return int(self.meta.get("round", 0))

    def build(self, device: torch.device) -> nn.Module:
        """The network ready for inference on ``device`` (eval mode, batch norm folded)."""
        model = Checkpoint(Path(f"<{self.digest}>"), self.state_dict, self.meta).build()
        return fuse_for_inference(model).to(device)


@dataclass(eq=False)
class ScanPlan:
    """How a scan is classified: raw through a pipeline for its detector, or from its cache
    where that file exists (a Dask worker on another machine may not have it)."""

    ref: ScanRef
    detector: DetectorSurvey
    cache: str | None = None


def cache_file(ref: ScanRef, settings: PreprocessSettings, cache_dir: str | None = None) -> Path:
    """Where the pattern cache of ``ref`` with ``settings`` lives on this machine."""
    directory = Path(cache_dir) if cache_dir else default_cache_dir()
    identity = load_identity(ref.path, ref.options)
    return directory / f"{cache_key(ref.fingerprint, identity, settings)}.h5"


def plan_scan(ref: ScanRef, settings: PreprocessSettings, cache_dir: str | None = None) -> ScanPlan:
    """The scan's cache when one exists here (and the survey it was built with), else a
    survey of its detector."""
    target = cache_file(ref, settings, cache_dir)
    if target.exists():
        try:
            with PatternCache(target) as cache:
                if cache.scan_shape == tuple(ref.shape[:2]):
                    return ScanPlan(ref, cache.detector(), str(target))
        except (DataError, KeyError):
            pass  # stale or damaged: classify the raw patterns instead
    with ref.open() as scan:
        return ScanPlan(ref, survey(scan, settings))


def row_blocks(ref: ScanRef, task_bytes: int = TASK_BYTES) -> list[tuple[int, int]]:
    """Flat pattern ranges of whole scan rows, about ``task_bytes`` of raw data each."""
    n_rx, n_ry, qx, qy = ref.shape
    row_bytes = n_ry * qx * qy * ref.itemsize
    rows = max(1, min(n_rx, task_bytes // max(1, row_bytes)))
    return [(r * n_ry, min(n_rx, r + rows) * n_ry) for r in range(0, n_rx, rows)]


def classify_range(
    plan: ScanPlan,
    settings: PreprocessSettings,
    model: nn.Module,
    device: torch.device,
    start: int,
    stop: int,
    *,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Probabilities (stop - start, C) for patterns ``start..stop`` of the planned scan.

    The next batch is read while the current one is classified; ``progress`` gets the
    number of patterns done so far.
    """
    if plan.cache is not None and Path(plan.cache).exists():
        with PatternCache(plan.cache) as cache:
            return _stream(cache.read, None, start, stop, CACHE_BATCH, model, device, progress)
    pipeline = PatternPipeline(settings, plan.detector)
    with plan.ref.open() as scan:
        per_pattern = scan.shape[2] * scan.shape[3] * max(4, scan.dtype.itemsize)
        batch = int(max(1, BLOCK_BYTES // per_pattern))

        def read(a: int, b: int) -> np.ndarray:
            raw = scan.read(a, b)
            check_block(scan, a, raw, settings.allow_blank)
            return raw

        return _stream(read, pipeline, start, stop, batch, model, device, progress)


def _stream(
    read: Callable[[int, int], np.ndarray],
    pipeline: PatternPipeline | None,
    start: int,
    stop: int,
    batch: int,
    model: nn.Module,
    device: torch.device,
    progress: Callable[[int], None] | None,
) -> np.ndarray:
    starts = list(range(start, stop, batch))
    out: np.ndarray | None = None
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(read, start, min(start + batch, stop))
        for i, a in enumerate(starts):
            block = pending.result()
            if i + 1 < len(starts):
                nxt = starts[i + 1]
                pending = reader.submit(read, nxt, min(nxt + batch, stop))
            probs = classify_block(model, device, block, pipeline)
            if out is None:
                out = np.empty((stop - start, probs.shape[1]), np.float32)
            out[a - start : a - start + len(block)] = probs
            if progress is not None:
                progress(a - start + len(block))
    assert out is not None, "an empty range of patterns"
    return out
