"""Learners: how a model is fitted to a handful of labelled patterns.

Every learner returns a torch ``nn.Module`` that maps model inputs (n, 1, S, S)
to class logits, so checkpoints, whole-scan prediction, the Dask path and the
LiberTEM UDF treat them all alike. They differ in how they are fitted:

``cnn``
    GhostNet trained with AdamW on every label (no validation split), with
    label-preserving augmentation (see :mod:`ghosttui.model.train`).
``logreg``
    multinomial logistic regression on the cached model inputs (every pixel a
    feature, standardised over the scan), L2-regularised, classes balanced. Two
    fits on the same labels are blended: one on each label's own pattern, one on
    its ``[model] train_average`` x ``train_average`` neighbourhood mean (default
    3; 1 is the plain baseline, see :class:`AveragedInputs`), their weights
    averaged with ``[model] mean_share`` (default 0.5) for the means. scikit-learn
    fits them; the blended weights become one linear layer, so predictions stay
    per pattern.
``auto`` (the default)
    both, on the same 3 stratified folds of the session's own labels (the CNN's
    folds train at most ``AUTO_CV_EPOCHS`` epochs); logistic regression is kept
    unless the CNN is significantly better there (paired sign test, 5%), and the
    model records which it took and why (``choice_reason``). When logistic
    regression is wrong on 4 labels or fewer, no result of the CNN could be
    significant, and the CNN is not fitted at all; after each of its folds, once
    even a CNN right on every label still to come could not be significant, its
    other folds are not fitted (the same choice, sooner). Dynamical
    (multislice) patterns carry polarization as a few-percent intensity
    comparison between disks under far larger thickness and tilt changes: the
    linear model reads it, the translation-invariant CNN is near chance. A local
    extra disk (our kinematic simulator) suits the CNN, which wins there when the
    labels show it.

Learners that are cheap to fit also report a cross-validated accuracy on their
own labels (``cv_accuracy`` with its 95% interval), which the loop uses to
compare a new model with the current one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from ghosttui.errors import ModelError
from ghosttui.metrics import sign_test_worse, wilson_interval
from ghosttui.model.network import LinearOnPixels
from ghosttui.session.settings import LEARNERS

SIGNIFICANCE = 0.05

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
    hidden: np.ndarray | None = None,
    representative: np.ndarray | None = None,
) -> Fitted:
    """Fit the session's learner (``spec``: its ``[model]`` settings) to ``patterns`` (n, S, S)
    at ``positions`` (n, 2); ``hidden`` (k, 2): positions whose patterns no training input
    may contain (the holdout); ``representative`` (n,) bool: the labels drawn without
    regard to any model (the coarse grid, random queries), on which choices between
    inputs are scored (default: all)."""
    learner = check_learner(spec.learner)
    n_classes = len(classes)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ModelError("no labels to train on")
    started = time.perf_counter()
    averaged = None
    if learner != "cnn" and spec.train_average > 1 and spec.mean_share > 0:
        averaged = AveragedInputs(cache, positions, labels, spec.train_average, hidden)
    if learner == "logreg":
        fitted = _fit_logreg(
            patterns,
            labels,
            n_classes,
            cache=cache,
            seed=seed,
            mean_share=spec.mean_share,
            blur=spec.input_blur,
            symmetry=spec.input_symmetry,
            averaged=averaged,
            representative=representative,
        )
    elif learner == "auto":
        fitted = _fit_auto(
            spec,
            rotation_pairs(spec, classes),
            patterns,
            labels,
            n_classes,
            averaged=averaged,
            representative=representative,
            cache=cache,
            device=device,
            seed=seed,
            epochs=epochs,
            progress=progress,
            should_stop=should_stop,
        )
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
    if fitted.learner == "logreg":
        fitted.metrics.update(
            train_average=spec.train_average,
            mean_share=spec.mean_share,
            input_blur=spec.input_blur,
        )
    fitted.metrics.update(
        learner=fitted.learner,
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
def blur_patterns(patterns: np.ndarray, sigma: float) -> np.ndarray:
    """Each (S, S) input of ``patterns`` (n, S, S) convolved with a Gaussian of ``sigma``
    input pixels, zero beyond the edges (so the operator is a symmetric matrix, and a
    linear model on blurred inputs is one on the inputs themselves: :meth:`PixelStandardiser.fold`)."""
    from scipy.ndimage import gaussian_filter

    patterns = np.asarray(patterns, np.float32)
    if sigma <= 0:
        return patterns
    return gaussian_filter(patterns, (0, sigma, sigma), mode="constant", truncate=3.0)


def scan_sample(cache: Any, max_patterns: int = 20000, seed: int = 0) -> np.ndarray:
    """The cache's model inputs, all of them or ``max_patterns`` drawn at random (seeded)."""
    n = cache.n_patterns
    if n <= max_patterns:
        return cache.read(0, n)
    index = np.sort(np.random.default_rng(seed).choice(n, max_patterns, replace=False))
    return cache.gather(np.stack(np.divmod(index, cache.scan_shape[1]), 1))


class PixelStandardiser:
    """Mean and standard deviation of every input pixel over (a sample of) the scan, after
    the inputs are blurred by ``blur`` input pixels (``[model] input_blur``; 0: not blurred)
    and, with ``symmetry`` "mirror" (``[model] input_symmetry``), averaged with their
    mirror images about the direct beam (:func:`ghosttui.patterns.symmetry.symmetrise`).

    A diffraction disk spans several input pixels and drifts by a fraction of one between
    patterns; blurred, a pixel weight stands for a disk's neighbourhood instead of one noisy
    pixel, which is what few labels can fit (docs/learners.md). Mirror-symmetric inputs
    halve and halve again what the weights can be: a polarization class keeps its axis
    under these mirrors, so the class signal survives (the sign of P, not a class, does
    not), while a fit of a few labels can no longer lean on asymmetries that are not the
    class, such as a tilt's. ``sample``: the scan's inputs to measure on (default: drawn
    from ``cache``).
    """

    def __init__(
        self,
        cache: Any,
        max_patterns: int = 20000,
        seed: int = 0,
        blur: float = 0.0,
        symmetry: str = "none",
        sample: np.ndarray | None = None,
    ) -> None:
        from ghosttui.patterns.symmetry import grid_centre, model_input_centre

        if sample is None:
            sample = scan_sample(cache, max_patterns, seed)
        self.blur = float(blur)
        self.symmetry = symmetry
        self.centre = grid_centre(model_input_centre(cache)) if symmetry == "mirror" else None
        self.shape = tuple(sample.shape[-2:])
        flat = self.transform(sample).reshape(len(sample), -1).astype(np.float64)
        self.mean = flat.mean(0).astype(np.float32)
        self.std = (flat.std(0) + 1e-3).astype(np.float32)

    @property
    def folded(self) -> bool:
        """Whether the fitted weights must be folded back onto the raw inputs (:meth:`fold`)."""
        return self.blur > 0 or self.symmetry != "none"

    def transform(self, patterns: np.ndarray) -> np.ndarray:
        """The inputs blurred, then symmetrised (a symmetric matrix each, applied in turn)."""
        from ghosttui.patterns.symmetry import symmetrise

        blurred = blur_patterns(patterns, self.blur)
        return blurred if self.centre is None else symmetrise(blurred, self.centre)

    def apply(self, patterns: np.ndarray) -> np.ndarray:
        transformed = self.transform(patterns)
        return (transformed.reshape(len(transformed), -1) - self.mean) / self.std

    def fold(self, weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights (C, S*S) and biases (C,) on the standardised transformed inputs -> the same
        logits as weights and biases on the raw inputs: ``w . (M G x - m) / s`` is
        ``(G M (w / s)) . x - (w / s) . m`` for the symmetric blur G and symmetriser M."""
        from ghosttui.patterns.symmetry import symmetrise

        scaled = weight / self.std
        images = scaled.reshape(len(scaled), *self.shape)
        if self.centre is not None:
            images = symmetrise(images, self.centre)
        raw = blur_patterns(images, self.blur)
        offset = bias - scaled @ self.mean
        return raw.reshape(len(raw), -1), offset.astype(np.float32)


def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) of every label, each class dealt round the folds in random order."""
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), int)
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        fold_of[members] = np.arange(len(members)) % folds
    return fold_of


def cv_predictions(
    fit_predict: Callable[[np.ndarray, np.ndarray], np.ndarray],
    labels: np.ndarray,
    fold_of: np.ndarray,
    stop: Callable[[np.ndarray, np.ndarray], bool] | None = None,
) -> np.ndarray:
    """Every label's class as predicted by a model fitted without its fold (-1: not predicted).

    ``fit_predict(train_index, test_index)`` returns predicted classes for ``test_index``.
    A fold whose training part holds a single class predicts nothing. ``stop(predicted,
    done)``, asked after each fold (``done``: the labels whose fold has been dealt with),
    ends the cross-validation early when it returns true; the other folds stay -1.
    """
    predicted = np.full(len(labels), -1, np.int64)
    done = np.zeros(len(labels), bool)
    for k in np.unique(fold_of):
        test = np.flatnonzero(fold_of == k)
        train = np.flatnonzero(fold_of != k)
        if len(test) and len(np.unique(labels[train])) >= 2:
            predicted[test] = fit_predict(train, test)
        done[test] = True
        if stop is not None and not done.all() and stop(predicted, done):
            break
    return predicted


def cv_metrics(predicted: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Cross-validated accuracy with its 95% Wilson interval (unpredicted labels count wrong)."""
    correct = int(np.sum(predicted == labels))
    low, high = wilson_interval(correct, len(labels))
    return {"cv_accuracy": correct / len(labels), "cv_ci95": [low, high], "cv_n": len(labels)}


class AveragedInputs:
    """The linear learner's training inputs: each labelled pattern as the mean of the
    ``size`` x ``size`` probe positions around it (``[model] train_average``).

    Domains are contiguous, so a labelled position's neighbours are, nearly always, more
    patterns of its class, and their mean is that class's pattern with about ``size``
    times less shot noise: fitted on them, the linear model learns the polar signal
    instead of the noise. It predicts single patterns, though, and a few labels whose
    means mislead (thin domains) can send an adaptive loop astray, so the learner
    blends this fit with one on the patterns themselves (``[model] mean_share``;
    docs/learners.md). Predictions stay per pattern. Left out of a label's mean: positions ``hidden`` (the
    holdout, and in cross-validation the held-out fold: no pattern that measures a model
    is inside its training data) and positions labelled with another class.
    """

    def __init__(
        self,
        cache: Any,
        positions: np.ndarray,
        labels: np.ndarray,
        size: int,
        hidden: np.ndarray | None = None,
    ) -> None:
        from ghosttui.patterns.neighbourhood import Neighbourhoods

        self.labels = labels
        self.positions = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
        self.blocks = Neighbourhoods(cache, self.positions, size)
        self._labelled = np.full(self.blocks.scan_shape, -1, np.int64)
        self._labelled[self.positions[:, 0], self.positions[:, 1]] = labels
        self._hidden = np.zeros(self.blocks.scan_shape, bool)
        if hidden is not None and len(hidden):
            hidden = np.asarray(hidden, dtype=np.int64).reshape(-1, 2)
            self._hidden[hidden[:, 0], hidden[:, 1]] = True

    def means(self, index: np.ndarray, held_out: np.ndarray | None = None) -> np.ndarray:
        """Inputs for the labels ``index``; ``held_out``: label indices hidden as well."""
        index = np.asarray(index, dtype=np.int64)
        hidden = self._hidden.copy()
        if held_out is not None and len(held_out):
            at = self.positions[held_out]
            hidden[at[:, 0], at[:, 1]] = True
        out = np.empty((len(index), *self.blocks.means(index[:1]).shape[1:]), np.float32)
        for cls in np.unique(self.labels[index]):
            mine = self.labels[index] == cls
            other = (self._labelled >= 0) & (self._labelled != cls)
            out[mine] = self.blocks.means(index[mine], hidden | other)
        return out


def _logreg(c: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, class_weight="balanced", max_iter=2000)


def linear_weights(z: np.ndarray, labels: np.ndarray, n_classes: int) -> tuple:
    """Weights (n_classes, F) and biases (n_classes,) of logistic regression fitted to the
    standardised inputs ``z`` (n, F): one row per class, a class without labels never
    predicted, a single class always."""
    present = np.unique(labels)
    weight = np.zeros((n_classes, z.shape[1]), np.float32)
    bias = np.full(n_classes, -1e4, np.float32)  # a class without labels is never predicted
    if len(present) < 2:
        bias[present] = 0.0
        return weight, bias
    fitted = _logreg().fit(z, labels)
    coef, intercept = fitted.coef_, fitted.intercept_
    if len(present) == 2:  # scikit-learn keeps one row for two classes
        coef = np.concatenate([-coef, coef]) / 2
        intercept = np.array([-intercept[0], intercept[0]]) / 2
    weight[present], bias[present] = coef, intercept
    return weight, bias


def blended_weights(
    inputs: list[tuple[np.ndarray, float]], labels: np.ndarray, n_classes: int
) -> tuple:
    """Logistic regression fitted to each of ``inputs`` (the same labels' standardised
    training inputs, with the share each fit gets), weights and biases averaged by share:
    still one linear layer, whose logits are the share-weighted mean of the fits' logits."""
    weight = bias = None
    for z, share in inputs:
        w, b = linear_weights(z, labels, n_classes)
        weight = share * w if weight is None else weight + share * w
        bias = share * b if bias is None else bias + share * b
    return weight, bias


def blend_inputs(z: np.ndarray, means: np.ndarray | None, mean_share: float) -> list:
    """The (inputs, share) pairs the linear learner fits: the patterns ``z`` alone, the
    neighbourhood ``means`` alone (share 1), or both."""
    if means is None or mean_share <= 0:
        return [(z, 1.0)]
    if mean_share >= 1:
        return [(means, 1.0)]
    return [(means, mean_share), (z, 1.0 - mean_share)]


def logreg_fit_predict(
    z: np.ndarray,
    labels: np.ndarray,
    train_inputs: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    mean_share: float = 1.0,
) -> Callable:
    """Fit on the labels ``train``, predict ``z[test]`` (the standardised patterns).

    ``train_inputs(train, test)``: the standardised neighbourhood means of the labels
    ``train`` (default: none, fit ``z[train]``); ``mean_share``: their share against the
    fit on the patterns themselves (1: the means alone)."""
    n_classes = int(labels.max()) + 1

    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        means = None if train_inputs is None else train_inputs(train, test)
        inputs = blend_inputs(z[train], means, mean_share)
        weight, bias = blended_weights(inputs, labels[train], n_classes)
        return np.argmax(z[test] @ weight.T + bias, axis=1)

    return fit_predict


def _averaged_fit_predict(
    z: np.ndarray,
    labels: np.ndarray,
    standard: PixelStandardiser,
    averaged: AveragedInputs | None,
    mean_share: float,
) -> Callable:
    if averaged is None or mean_share <= 0:
        return logreg_fit_predict(z, labels)
    return logreg_fit_predict(
        z,
        labels,
        lambda train, test: standard.apply(averaged.means(train, held_out=test)),
        mean_share,
    )


# -- the linear learner's inputs: as they are, or mirror-symmetric -----------------------
@dataclass(frozen=True)
class SymmetryChoice:
    symmetry: str
    reason: str
    cv: dict[str, dict[str, Any]]
    confidence: dict[str, float] = field(default_factory=dict)
    weights: tuple[np.ndarray, np.ndarray] | None = None  # the chosen inputs' fit on every label


MIN_REPRESENTATIVE = 10  # fewer grid and random labels than this: the cross-validation scores all
MAP_WINDOW = 16384  # positions: the block of the scan on which the two fits are compared


def linear_fit(
    patterns: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    standard: PixelStandardiser,
    averaged: AveragedInputs | None,
    mean_share: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The linear learner fitted to every label: weights (C, S*S) and biases (C,) on the
    standardised transformed inputs (the blend of the patterns and their neighbourhood means)."""
    z = standard.apply(patterns)
    means = None
    if averaged is not None and mean_share > 0:
        means = standard.apply(averaged.means(np.arange(len(labels))))
    return blended_weights(blend_inputs(z, means, mean_share), labels, n_classes)


def map_window(cache: Any) -> tuple[slice, slice]:
    """The block of the scan, ``MAP_WINDOW`` positions at most (whole rows, from the middle),
    on which fits are compared."""
    rx, ry = cache.scan_shape
    cols = min(ry, MAP_WINDOW)
    rows = min(rx, max(1, MAP_WINDOW // cols))
    top, left = (rx - rows) // 2, (ry - cols) // 2
    return slice(top, top + rows), slice(left, left + cols)


def window_confidence(
    cache: Any,
    window: tuple[slice, slice],
    fits: dict[str, tuple[np.ndarray, np.ndarray]],
    batch_rows: int = 32,
) -> dict[str, float]:
    """The mean over ``window`` of each of ``fits``' top class probability (weights and
    biases on the raw inputs, folded), the window read once, a few rows at a time."""
    rows, cols = window
    fits = {
        k: (np.asarray(w, np.float32).T, np.asarray(b, np.float32)) for k, (w, b) in fits.items()
    }
    totals = dict.fromkeys(fits, 0.0)
    n = 0
    for top in range(rows.start, rows.stop, batch_rows):
        block = cache.window(slice(top, min(top + batch_rows, rows.stop)), cols)
        x = block.reshape(len(block), -1).astype(np.float32)
        n += len(x)
        for name, (weight_t, bias) in fits.items():
            logits = x @ weight_t + bias
            logits -= logits.max(1, keepdims=True)
            top_p = 1.0 / np.exp(logits).sum(1)  # the largest logit is 0 after the shift
            totals[name] += float(top_p.sum())
    return {name: total / max(n, 1) for name, total in totals.items()}


def choose_symmetry(
    labels: np.ndarray,
    predicted: dict[str, np.ndarray],
    confidence: dict[str, float],
    representative: np.ndarray | None = None,
) -> SymmetryChoice:
    """``[model] input_symmetry = "auto"``: which inputs the linear learner fits, from each
    one's fit to every label, applied to the scan (``confidence``: "none" and "mirror" ->
    the mean top class probability over a block of the scan), and from their predictions
    on the same cross-validation folds (``predicted``: each label's class).

    The inputs whose fit is more confident over the scan's own patterns are taken (a tie:
    the mirror-symmetric ones): the scan's thousands of unlabelled patterns say which
    inputs separate them into classes, where a few dozen labels cannot (measured, per
    round, hybrid, 15-100 labels, docs/learners.md: the more confident fit mapped better
    wherever the two differed by more than 0.25 points, on PbTiO3 and BaTiO3, walls and
    stripes, and on layouts nothing was tuned on; cross-validation on the grid labels was
    decided by one label and took the worse one on 1 of 3 seeds).

    Unless the other inputs cross-validate significantly better (paired sign test, 5%)
    on the ``representative`` labels (drawn without regard to any model: the coarse grid,
    random queries; every label when there are fewer than ``MIN_REPRESENTATIVE``): an
    adaptive loop's other labels crowd round walls and doubtful patterns, where what wins
    is not what wins over the map.
    """
    scored = np.ones(len(labels), bool)
    which = "labels"
    if representative is not None and int(np.sum(representative)) >= MIN_REPRESENTATIVE:
        scored, which = np.asarray(representative, bool), "grid and random labels"
    n = int(scored.sum())
    right = {name: (p == labels)[scored] for name, p in predicted.items()}
    hits = {name: int(r.sum()) for name, r in right.items()}
    cv = {name: cv_metrics(p[scored], labels[scored]) for name, p in predicted.items()}
    names = {"none": "inputs as they are", "mirror": "mirror-symmetric inputs"}
    surer = "mirror" if confidence["mirror"] >= confidence["none"] else "none"
    other = "none" if surer == "mirror" else "mirror"
    scores = (
        f"mean top class probability over the scan {confidence[surer]:.3f} against "
        f"{confidence[other]:.3f}; cross-validated on {n} {which}: as they are "
        f"{hits['none']}/{n}, mirror-symmetric {hits['mirror']}/{n}"
    )
    p = sign_test_worse(right[other], right[surer])
    if p < SIGNIFICANCE:
        why = f"{names[other]} (they cross-validate significantly better, p = {p:.3f}; {scores})"
        return SymmetryChoice(other, why, cv, dict(confidence))
    return SymmetryChoice(
        surer, f"{names[surer]} (surer over the scan: {scores})", cv, dict(confidence)
    )


def cross_validate_linear(
    patterns: np.ndarray,
    labels: np.ndarray,
    fold_of: np.ndarray,
    *,
    cache: Any,
    seed: int,
    blur: float,
    symmetry: str,
    averaged: AveragedInputs | None,
    mean_share: float,
    representative: np.ndarray | None = None,
    n_classes: int | None = None,
) -> tuple[PixelStandardiser, np.ndarray, SymmetryChoice | None]:
    """The linear learner cross-validated on the folds ``fold_of``: its standardiser, every
    label's predicted class, and, for ``symmetry`` "auto", which inputs it took and why
    (both cross-validated on the same folds and fitted to every label, their maps compared
    on the scan: :func:`choose_symmetry`)."""
    candidates = ("none", "mirror") if symmetry == "auto" else (symmetry,)
    sample = scan_sample(cache, seed=seed)
    results = {}
    for name in candidates:
        standard = PixelStandardiser(cache, seed=seed, blur=blur, symmetry=name, sample=sample)
        fit_predict = _averaged_fit_predict(
            standard.apply(patterns), labels, standard, averaged, mean_share
        )
        results[name] = (standard, cv_predictions(fit_predict, labels, fold_of))
    if len(candidates) == 1:
        return (*results[candidates[0]], None)
    n_classes = n_classes or int(labels.max()) + 1
    fits = {
        name: linear_fit(patterns, labels, n_classes, standard, averaged, mean_share)
        for name, (standard, _) in results.items()
    }
    folded = {name: results[name][0].fold(*fit) for name, fit in fits.items()}
    confidence = window_confidence(cache, map_window(cache), folded)
    predicted = {name: r[1] for name, r in results.items()}
    choice = choose_symmetry(labels, predicted, confidence, representative)
    choice = replace(choice, weights=fits[choice.symmetry])
    return (*results[choice.symmetry], choice)


def _fit_logreg(
    patterns: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    cache: Any,
    seed: int,
    mean_share: float = 1.0,
    blur: float = 0.0,
    symmetry: str = "none",
    standard: PixelStandardiser | None = None,
    averaged: AveragedInputs | None = None,
    metrics: dict[str, Any] | None = None,
    symmetry_choice: SymmetryChoice | None = None,
    representative: np.ndarray | None = None,
) -> Fitted:
    """``averaged``: fit on neighbourhood means as well, with ``mean_share`` of the weights
    (1: instead of the patterns themselves); ``blur`` and ``symmetry``: the inputs'
    Gaussian blur in input pixels and their symmetry (``"auto"``: chosen here by
    cross-validation); ``standard``, ``metrics`` and ``symmetry_choice``: a
    cross-validation already run on these labels (else 5-fold CV here)."""
    size = patterns.shape[-1]
    if metrics is None or standard is None:
        fold_of = stratified_folds(labels, 5, seed)
        standard, predicted, symmetry_choice = cross_validate_linear(
            patterns,
            labels,
            fold_of,
            cache=cache,
            seed=seed,
            blur=blur,
            symmetry=symmetry,
            averaged=averaged,
            mean_share=mean_share,
            representative=representative,
            n_classes=n_classes,
        )
        metrics = cv_metrics(predicted, labels)
    if symmetry_choice is not None and symmetry_choice.weights is not None:
        weight, bias = symmetry_choice.weights
    else:
        weight, bias = linear_fit(patterns, labels, n_classes, standard, averaged, mean_share)
    network = LinearOnPixels(n_classes, size)
    with torch.no_grad():
        if standard.folded:  # blur and symmetry folded into the weights: one linear layer
            weight, bias = standard.fold(weight, bias)
        else:
            network.mean.copy_(torch.from_numpy(standard.mean))
            network.scale.copy_(torch.from_numpy(standard.std))
        network.linear.weight.copy_(torch.from_numpy(weight))
        network.linear.bias.copy_(torch.from_numpy(bias))
    metrics = dict(metrics, input_symmetry=standard.symmetry)
    if symmetry_choice is not None:
        metrics.update(
            symmetry_reason=symmetry_choice.reason,
            cv_by_symmetry={k: v["cv_accuracy"] for k, v in symmetry_choice.cv.items()},
            confidence_by_symmetry=symmetry_choice.confidence,
        )
    return Fitted(network, "linear", {}, "logreg", metrics)


# -- auto: the linear model unless the CNN beats it on the session's own labels ----------
AUTO_FOLDS = 3
AUTO_CV_EPOCHS = 10  # the CNN's folds train this many epochs at most (the final fit: all);
# 20 made a 100-label multislice round 42 s on 2 idle cores (docs/learners.md, "Training time")


@dataclass(frozen=True)
class LearnerChoice:
    learner: str
    reason: str
    p_value: float
    cv: dict[str, dict[str, Any]]


def choose_learner(labels: np.ndarray, cnn: np.ndarray, logreg: np.ndarray) -> LearnerChoice:
    """Pick the learner from paired cross-validated predictions of both on the same folds.

    Logistic regression is kept unless the CNN is significantly better on these
    labels: a one-sided exact sign test over the labels exactly one of the two gets
    right, at the 5% level. Measured (docs/learners.md): on multislice patterns the
    linear model is right and the CNN near chance; on kinematic ones the two
    cross-validate within a few labels of each other. A CNN taken on a coin flip
    wastes a round's uncertainty queries on a near-chance map, so the burden of
    proof is on the CNN (and it costs more).
    """
    cnn_hits, logreg_hits = cnn == labels, logreg == labels
    p = sign_test_worse(cnn_hits, logreg_hits)  # p that logreg is worse than the CNN
    cv = {"cnn": cv_metrics(cnn, labels), "logreg": cv_metrics(logreg, labels)}
    n = len(labels)
    scores = (
        f"cross-validated on {n} labels: cnn {int(cnn_hits.sum())}/{n}, "
        f"logreg {int(logreg_hits.sum())}/{n}, sign test p={p:.2g}"
    )
    if p < SIGNIFICANCE:
        return LearnerChoice("cnn", f"the CNN beats logreg ({scores})", p, cv)
    return LearnerChoice("logreg", f"logreg is not beaten ({scores})", p, cv)


def cnn_can_win(logreg_errors: int) -> bool:
    """Whether the CNN could beat logistic regression significantly at all: at best it is
    right on every label logistic regression gets wrong and on no other, a sign test's
    smallest p-value, 0.5 ** errors (so with 4 errors or fewer the CNN cannot be taken
    and is not fitted)."""
    return 0.5**logreg_errors < SIGNIFICANCE


def cnn_best_p(labels: np.ndarray, cnn: np.ndarray, done: np.ndarray, logreg: np.ndarray) -> float:
    """The smallest sign-test p-value the CNN could still reach against logistic regression
    when its cross-validated predictions ``cnn`` are known on ``done`` only: right on every
    label not yet predicted (the best case; any other outcome can only raise p)."""
    best = np.where(done, cnn == labels, True)
    return sign_test_worse(best, logreg == labels)


def out_of_reach(
    labels: np.ndarray, cnn: np.ndarray, done: np.ndarray, logreg: np.ndarray
) -> LearnerChoice:
    """The choice when the CNN's first folds leave it no chance of a significant win: the
    folds not yet fitted are not (the same choice as after all folds, sooner)."""
    n, m = len(labels), int(done.sum())
    cnn_hits = int(np.sum((cnn == labels) & done))
    logreg_hits = int(np.sum((logreg == labels) & done))
    p = cnn_best_p(labels, cnn, done, logreg)
    reason = (
        f"logreg is not beaten (cross-validated on {n} labels: logreg "
        f"{int(np.sum(logreg == labels))}/{n}; on the {m} labels of the CNN's first folds "
        f"cnn {cnn_hits}/{m}, logreg {logreg_hits}/{m}: even right on all the other labels "
        f"the CNN could not beat logreg at the {SIGNIFICANCE:.0%} level (its best case: "
        f"p={p:.2g}), so its other folds were not fitted)"
    )
    cv = {"cnn": cv_metrics(cnn[done], labels[done]), "logreg": cv_metrics(logreg, labels)}
    return LearnerChoice("logreg", reason, p, cv)


def unbeatable_logreg(labels: np.ndarray, logreg: np.ndarray) -> LearnerChoice:
    """The choice when logistic regression's cross-validation leaves the CNN no chance."""
    errors, n = int(np.sum(logreg != labels)), len(labels)
    reason = (
        f"logreg is not beaten (cross-validated on {n} labels: logreg {n - errors}/{n}, "
        f"too few wrong for the CNN to beat it at the {SIGNIFICANCE:.0%} level, "
        "so the CNN was not fitted)"
    )
    return LearnerChoice("logreg", reason, 1.0, {"logreg": cv_metrics(logreg, labels)})


def _fit_auto(
    spec: Any,
    rotation_swap: list[tuple[int, int]],
    patterns: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    averaged: AveragedInputs | None,
    representative: np.ndarray | None,
    cache: Any,
    device: torch.device,
    seed: int,
    epochs: int | None,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
) -> Fitted:
    from ghosttui.model.predict import predict_patterns

    fold_of = stratified_folds(labels, AUTO_FOLDS, seed)
    standard, logreg, symmetry_choice = cross_validate_linear(
        patterns,
        labels,
        fold_of,
        cache=cache,
        seed=seed,
        blur=spec.input_blur,
        symmetry=spec.input_symmetry,
        averaged=averaged,
        mean_share=spec.mean_share,
        representative=representative,
        n_classes=n_classes,
    )
    fold_counter = iter(range(1, AUTO_FOLDS + 1))

    def fit_cnn(index: np.ndarray, cnn_epochs: int | None, report: Progress | None) -> Fitted:
        return _fit_cnn(
            spec,
            rotation_swap,
            patterns[index],
            labels[index],
            n_classes,
            device,
            seed,
            cnn_epochs,
            report,
            should_stop,
        )

    def cnn_fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        fold = next(fold_counter)

        def fold_progress(done: int, total: int, text: str) -> None:
            if progress is not None:
                progress(done, total, f"cross-validating the CNN, fold {fold}/{AUTO_FOLDS}: {text}")

        fitted = fit_cnn(train, min(epochs or spec.epochs, AUTO_CV_EPOCHS), fold_progress)
        return predict_patterns(fitted.network.eval(), patterns[test], device).argmax(1)

    errors = int(np.sum(logreg != labels))
    if not cnn_can_win(errors):
        choice = unbeatable_logreg(labels, logreg)
    else:
        stopped: dict[str, np.ndarray] = {}

        def hopeless(cnn: np.ndarray, done: np.ndarray) -> bool:
            if cnn_best_p(labels, cnn, done, logreg) < SIGNIFICANCE:
                return False
            stopped["done"] = done.copy()
            return True

        cnn = cv_predictions(cnn_fit_predict, labels, fold_of, stop=hopeless)
        if "done" in stopped:
            choice = out_of_reach(labels, cnn, stopped["done"], logreg)
        else:
            choice = choose_learner(labels, cnn, logreg)
    if choice.learner == "logreg":
        fitted = _fit_logreg(
            patterns,
            labels,
            n_classes,
            cache=cache,
            seed=seed,
            mean_share=spec.mean_share,
            standard=standard,
            averaged=averaged,
            metrics=choice.cv["logreg"],
            symmetry_choice=symmetry_choice,
        )
    else:
        fitted = fit_cnn(np.arange(len(labels)), epochs, progress)
        fitted.metrics.update(choice.cv["cnn"])
    fitted.metrics.update(
        chosen_by="auto",
        choice_reason=choice.reason,
        choice_p=choice.p_value,
        cv_by_learner={k: v["cv_accuracy"] for k, v in choice.cv.items()},
        cv_n_by_learner={k: v["cv_n"] for k, v in choice.cv.items()},
    )
    return fitted
