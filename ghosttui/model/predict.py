"""Classifying patterns: the per-batch function every engine calls, and whole-cache prediction.

:func:`classify_block` is the one per-batch classification: the single-process
series path, the Dask tasks (:mod:`ghosttui.inference`) and the LiberTEM UDF all
call it, so they give the same probabilities for the same patterns.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ghosttui.model.device import autocast_dtype
from ghosttui.patterns.cache import PatternCache, stored_precision
from ghosttui.patterns.preprocess import PatternPipeline


def fuse_for_inference(model: nn.Module) -> nn.Module:
    """A copy in eval mode with every Conv2d -> BatchNorm2d pair folded into one conv."""
    model = copy.deepcopy(model).eval()

    def fold(module: nn.Module) -> None:
        children = list(module.named_children())
        for (name_a, a), (name_b, b) in itertools.pairwise(children):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                setattr(module, name_a, fuse_conv_bn_eval(a, b))
                setattr(module, name_b, nn.Identity())
        for _, child in module.named_children():
            fold(child)

    fold(model)
    return model


def predict_patterns(model: nn.Module, patterns: np.ndarray, device: torch.device) -> np.ndarray:
    """Softmax probabilities (n, C) for model inputs (n, S, S)."""
    amp = autocast_dtype(device)
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
        x = torch.from_numpy(np.ascontiguousarray(patterns, np.float32)).unsqueeze(1).to(device)
        return torch.softmax(model(x).float(), dim=1).cpu().numpy()


def classify_block(
    model: nn.Module,
    device: torch.device,
    block: np.ndarray,
    pipeline: PatternPipeline | None = None,
) -> np.ndarray:
    """Probabilities (n, C) for one batch of patterns.

    With a ``pipeline``, ``block`` holds raw patterns (n, Qx, Qy): they become model
    inputs through it, rounded exactly as the pattern cache stores them, so a scan gives
    the same probabilities whether it is classified from its raw file or from its cache.
    Without one, ``block`` already holds model inputs (n, S, S) read from a cache.
    ``model`` is ready for inference on ``device`` (see :func:`fuse_for_inference`).
    """
    if pipeline is not None:
        inputs = pipeline.model_input(pipeline.to_tensor(block)).numpy()
        block = stored_precision(inputs, pipeline.settings)
    return predict_patterns(model, block, device)


def predict_cache(
    model: nn.Module,
    cache: PatternCache,
    device: torch.device,
    *,
    batch: int = 1024,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray | None:
    """Probabilities (Rx, Ry, C) for every pattern; ``None`` if stopped early.

    The next batch is read from the cache while the current one is classified.
    """
    model = fuse_for_inference(model).to(device)
    n = cache.n_patterns
    out: np.ndarray | None = None
    starts = list(range(0, n, batch))
    with ThreadPoolExecutor(1) as reader:
        pending = reader.submit(cache.read, 0, min(batch, n))
        for i, start in enumerate(starts):
            block = pending.result()
            if i + 1 < len(starts):
                pending = reader.submit(cache.read, starts[i + 1], min(starts[i + 1] + batch, n))
            if should_stop is not None and should_stop():
                return None
            probs = classify_block(model, device, block)
            if out is None:
                out = np.empty((n, probs.shape[1]), np.float32)
            out[start : start + len(block)] = probs
            if progress is not None:
                progress(start + len(block), n)
    assert out is not None
    return out.reshape(*cache.scan_shape, -1)
