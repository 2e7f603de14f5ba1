"""Learners: how a model is fitted to a handful of labelled patterns.

Every learner returns a torch ``nn.Module`` that maps model inputs (n, 1, S, S)
to class logits, so checkpoints, whole-scan prediction, the Dask path and the
LiberTEM UDF treat them all alike. They differ in how they are fitted:

``cnn``
    GhostNet trained with AdamW on every label (no validation split), with
    label-preserving augmentation (see :mod:`ghosttui.model.train`).
``logreg``
    the baseline: multinomial logistic regression on the cached model inputs
    (every pixel a feature, standardised over the scan), L2-regularised,
    classes balanced. scikit-learn fits it; the weights become a linear layer.

Learners that are cheap to fit also report a cross-validated accuracy on their
own labels (``cv_accuracy`` with its 95% interval), which the loop uses to
compare a new model with the current one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ghosttui.errors import ModelError
from ghosttui.metrics import wilson_interval
from ghosttui.model.network import LinearOnPixels
from ghosttui.session.settings import LEARNERS

Progress = Callable[[int, int, str], None]


@dataclass
class Fitted:
    network: nn.Module
    arch: str
    arch_config: dict[str, Any]
    learner: str
    metrics: dict[str, Any] = field(default_factory=dict)


def check_learner(name: str) -> str:
    if name not in LEARNERS:
        raise ModelError(f"unknown learner {name!r} (known: {', '.join(LEARNERS)})")
    return name


def rotation_pairs(spec: Any, classes: list[str]) -> list[tuple[int, int]]:
    """The session's ``rotation_swap`` class-name pairs as class indices."""
    pairs = []
    for a, b in spec.rotation_swap:
        for name in (a, b):
            if name not in classes:
                raise ModelError(
                    f"[model] rotation_swap names unknown class {name!r} (classes: {', '.join(classes)})"
                )
        pairs.append((classes.index(a), classes.index(b)))
    return pairs


def fit_learner(
    spec: Any,
    classes: list[str],
    patterns: np.ndarray,
    labels: np.ndarray,
    *,
    cache: Any,
    positions: np.ndarray,
    device: torch.device,
    seed: int,
    epochs: int | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Fitted:
    """Fit the session's learner (``spec``: its ``[model]`` settings) to ``patterns`` (n, S, S)."""
    learner = check_learner(spec.learner)
    n_classes = len(classes)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ModelError("no labels to train on")
    started = time.perf_counter()
    if learner == "logreg":
        fitted = _fit_logreg(patterns, labels, n_classes, cache=cache, seed=seed)
    else:
        fitted = _fit_cnn(
            spec,
            rotation_pairs(spec, classes),
            patterns,
            labels,
            n_classes,
            device,
            seed,
            epochs,
            progress,
            should_stop,
        )
    network = fitted.network.eval()
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(patterns, np.float32)).unsqueeze(1).to(device)
        fit_accuracy = float((network.to(device)(x).argmax(1).cpu().numpy() == labels).mean())
    fitted.metrics.update(
        learner=learner,
        fit_accuracy=fit_accuracy,
        device=str(device),
        seconds=round(time.perf_counter() - started, 3),
    )
    return fitted


# -- cnn ----------------------------------------------------------------------------------
def _fit_cnn(
    spec: Any,
    rotation_swap: list[tuple[int, int]],
    patterns: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    device: torch.device,
    seed: int,
    epochs: int | None,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
) -> Fitted:
    from ghosttui.model.network import build_network
    from ghosttui.model.train import TrainConfig, TrainingCancelled, train

    config = TrainConfig(
        arch=spec.arch,
        width=spec.width,
        epochs=epochs or spec.epochs,
        seed=seed,
        device=str(device),
        val_fraction=0.0,
        rotation_swap=rotation_swap,
    )

    def on_epoch(p: Any) -> None:
        if progress is not None:
            progress(p.epoch, p.epochs, f"epoch {p.epoch}/{p.epochs} loss {p.train_loss:.3f}")

    try:
        result = train(
            patterns, labels, n_classes, config, progress=on_epoch, should_stop=should_stop
        )
    except TrainingCancelled:
        from ghosttui.loop.rounds import TrainingCancelled as JobCancelled

        raise JobCancelled() from None
    network = build_network(result.arch, n_classes, result.input_size, **result.arch_config)
    network.load_state_dict(result.state_dict)
    return Fitted(
        network,
        result.arch,
        result.arch_config,
        "cnn",
        {"epochs_run": result.epochs_run, "n_train": result.n_train, "device": result.device},
    )


# -- logistic regression ------------------------------------------------------------------
class PixelStandardiser:
    """Mean and standard deviation of every input pixel over (a sample of) the scan."""

    def __init__(self, cache: Any, max_patterns: int = 20000, seed: int = 0) -> None:
        n = cache.n_patterns
        if n <= max_patterns:
            sample = cache.read(0, n)
        else:
            index = np.sort(np.random.default_rng(seed).choice(n, max_patterns, replace=False))
            sample = cache.gather(np.stack(np.divmod(index, cache.scan_shape[1]), 1))
        flat = sample.reshape(len(sample), -1).astype(np.float64)
        self.mean = flat.mean(0).astype(np.float32)
        self.std = (flat.std(0) + 1e-3).astype(np.float32)


def cv_accuracy(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    labels: np.ndarray,
    folds: int = 5,
    seed: int = 0,
) -> dict[str, Any]:
    """Stratified k-fold accuracy of a fitting procedure, with a 95% Wilson interval.

    ``fit_predict(train_index, test_index)`` returns predicted classes for ``test_index``.
    Classes with fewer members than folds are still split (some folds lack them).
    """
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), int)
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        fold_of[members] = np.arange(len(members)) % folds
    correct = 0
    for k in range(folds):
        test = np.flatnonzero(fold_of == k)
        train = np.flatnonzero(fold_of != k)
        if len(test) == 0 or len(np.unique(labels[train])) < 2:
            continue
        correct += int(np.sum(fit_predict(train, test) == labels[test]))
    low, high = wilson_interval(correct, len(labels))
    return {"cv_accuracy": correct / len(labels), "cv_ci95": [low, high], "cv_n": len(labels)}


def _fit_logreg(
    patterns: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    cache: Any,
    seed: int,
    c: float = 1.0,
) -> Fitted:
    from sklearn.linear_model import LogisticRegression

    size = patterns.shape[-1]
    standard = PixelStandardiser(cache, seed=seed)
    z = (patterns.reshape(len(patterns), -1) - standard.mean) / standard.std

    def model() -> LogisticRegression:
        return LogisticRegression(C=c, class_weight="balanced", max_iter=2000)

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        if len(np.unique(labels[train])) < 2:
            return np.full(len(test), labels[train][0])
        return model().fit(z[train], labels[train]).predict(z[test])

    metrics = cv_accuracy(fit_predict, labels, seed=seed)
    network = LinearOnPixels(n_classes, size)
    present = np.unique(labels)
    weight = np.zeros((n_classes, z.shape[1]), np.float32)
    bias = np.full(n_classes, -1e4, np.float32)  # a class without labels is never predicted
    if len(present) >= 2:
        fitted = model().fit(z, labels)
        coef, intercept = fitted.coef_, fitted.intercept_
        if len(present) == 2:  # scikit-learn keeps one row for two classes
            coef = np.concatenate([-coef, coef]) / 2
            intercept = np.array([-intercept[0], intercept[0]]) / 2
        weight[present], bias[present] = coef, intercept
    else:
        bias[present] = 0.0
    with torch.no_grad():
        network.mean.copy_(torch.from_numpy(standard.mean))
        network.scale.copy_(torch.from_numpy(standard.std))
        network.linear.weight.copy_(torch.from_numpy(weight))
        network.linear.bias.copy_(torch.from_numpy(bias))
    return Fitted(network, "linear", {}, "logreg", metrics)
