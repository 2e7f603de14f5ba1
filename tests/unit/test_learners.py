"""Learner choice: cross-validation folds, the paired choice rule, and auto end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ghosttui.model.learners import (
    choose_learner,
    cv_predictions,
    fit_learner,
    stratified_folds,
)
from ghosttui.model.network import GhostNet, LinearOnPixels
from ghosttui.session.settings import ModelSpec


def test_folds_deal_every_class_round_the_folds():
    labels = np.array([0] * 7 + [1] * 5 + [2] * 2)
    fold_of = stratified_folds(labels, 3, seed=0)
    for cls in range(3):
        counts = np.bincount(fold_of[labels == cls], minlength=3)
        assert counts.max() - counts.min() <= 1


def test_cross_validation_never_predicts_a_label_it_trained_on():
    labels = np.array([0, 1] * 6)
    seen: list[tuple[set, set]] = []

    def fit_predict(train, test):
        seen.append((set(train), set(test)))
        return labels[test]  # a perfect model, so every prediction lands where it belongs

    predicted = cv_predictions(fit_predict, labels, stratified_folds(labels, 3, seed=1))
    assert all(not (train & test) for train, test in seen)
    assert set().union(*(test for _, test in seen)) == set(range(len(labels)))
    assert np.array_equal(predicted, labels)


def test_a_fold_without_two_classes_to_train_on_predicts_nothing():
    labels = np.array([0, 1, 0, 0])
    fold_of = np.array([0, 0, 1, 1])  # fold 0 trains on class 0 only
    predicted = cv_predictions(lambda train, test: labels[test], labels, fold_of)
    assert predicted.tolist() == [-1, -1, 0, 0]


def test_the_cnn_is_taken_only_when_it_beats_logreg_significantly():
    labels = np.array([0, 1, 2] * 10)
    cnn = labels.copy()
    logreg = labels.copy()
    logreg[:4] = (labels[:4] + 1) % 3  # four labels apart: p = 1/16, not significant
    close = choose_learner(labels, cnn, logreg)
    assert close.learner == "logreg" and close.p_value == pytest.approx(1 / 16)
    logreg[:12] = (labels[:12] + 1) % 3  # twelve apart, none the other way
    clear = choose_learner(labels, cnn, logreg)
    assert clear.learner == "cnn" and clear.p_value < 0.001
    assert "cnn 30/30, logreg 18/30" in clear.reason
    assert choose_learner(labels, logreg, cnn).learner == "logreg"  # logreg right instead


class ArrayCache:
    """The part of PatternCache a learner reads: the scan's model inputs."""

    def __init__(self, patterns: np.ndarray, scan_shape: tuple[int, int]) -> None:
        self.patterns, self.scan_shape = patterns, scan_shape
        self.n_patterns = len(patterns)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.patterns[start:stop]

    def gather(self, positions: np.ndarray) -> np.ndarray:
        return self.patterns[positions[:, 0] * self.scan_shape[1] + positions[:, 1]]


def comparison_patterns(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Classes told apart by which of two fixed pixels is brighter, under a large common
    brightness change: a position-bound comparison, as polarization is in dynamical patterns."""
    labels = rng.integers(0, 2, n)
    brightness = rng.uniform(0.5, 3.0, n)[:, None, None]
    patterns = brightness * (1 + 0.02 * rng.standard_normal((n, 16, 16)))
    patterns[:, 4, 5] *= np.where(labels == 0, 1.3, 1.0)
    patterns[:, 11, 10] *= np.where(labels == 1, 1.3, 1.0)
    return patterns.astype(np.float32), labels


def test_auto_takes_logreg_on_a_comparison_the_short_trained_cnn_misses_and_says_why():
    rng = np.random.default_rng(0)
    scan, labels = comparison_patterns(400, rng)
    cache = ArrayCache(scan, (20, 20))
    chosen = np.arange(0, 400, 8)
    fitted = fit_learner(
        ModelSpec(learner="auto", epochs=1),
        ["a", "b"],
        scan[chosen],
        labels[chosen],
        cache=cache,
        positions=np.stack(np.divmod(chosen, 20), 1),
        device=torch.device("cpu"),
        seed=0,
    )
    assert isinstance(fitted.network, LinearOnPixels)
    assert fitted.learner == "logreg" and fitted.metrics["learner"] == "logreg"
    assert fitted.metrics["chosen_by"] == "auto"
    assert fitted.metrics["cv_by_learner"]["logreg"] > fitted.metrics["cv_by_learner"]["cnn"]
    assert "logreg is not beaten" in fitted.metrics["choice_reason"]
    with torch.inference_mode():
        predicted = fitted.network(torch.from_numpy(scan).unsqueeze(1)).argmax(1).numpy()
    assert np.mean(predicted == labels) > 0.9


@pytest.mark.slow
def test_auto_takes_the_cnn_where_it_cross_validates_better():
    """A small bright disk anywhere on the pattern: the CNN finds it, pixels do not."""
    rng = np.random.default_rng(1)
    n = 300
    labels = rng.integers(0, 2, n)
    scan = rng.uniform(0.8, 1.2, (n, 16, 16)).astype(np.float32)
    for i in np.flatnonzero(labels == 1):
        y, x = rng.integers(2, 14, 2)
        scan[i, y - 1 : y + 2, x - 1 : x + 2] += 3.0
    chosen = np.arange(0, n, 5)
    fitted = fit_learner(
        ModelSpec(learner="auto", epochs=10, width=8),
        ["a", "b"],
        scan[chosen],
        labels[chosen],
        cache=ArrayCache(scan, (15, 20)),
        positions=np.stack(np.divmod(chosen, 20), 1),
        device=torch.device("cpu"),
        seed=0,
    )
    assert isinstance(fitted.network, GhostNet) and fitted.learner == "cnn"
    assert "the CNN beats logreg" in fitted.metrics["choice_reason"]
