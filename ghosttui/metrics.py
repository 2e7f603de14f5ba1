"""Agreement and accuracy measures used for held-out estimates and the stopping signal."""

from __future__ import annotations

import math

import numpy as np


def wilson_interval(correct: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sensible for small samples)."""
    if total == 0:
        return 0.0, 1.0
    p = correct / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def cohen_kappa(a: np.ndarray, b: np.ndarray, n_classes: int) -> float:
    """Cohen's kappa between two class maps (1.0 = identical, 0 = chance agreement)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    observed = float(np.mean(a == b))
    pa = np.bincount(a, minlength=n_classes) / a.size
    pb = np.bincount(b, minlength=n_classes) / b.size
    expected = float(np.sum(pa * pb))
    if expected >= 1.0:
        return 1.0 if observed >= 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


def changed_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of positions whose class differs between two maps."""
    return float(np.mean(np.asarray(a) != np.asarray(b)))


def accuracy(predicted: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if mask is not None:
        predicted, truth = predicted[mask], truth[mask]
    return float(np.mean(predicted == truth)) if truth.size else float("nan")


def sign_test_worse(current_hits: np.ndarray, new_hits: np.ndarray) -> float:
    """One-sided exact p-value that ``new`` is worse than ``current``, paired per position.

    Only positions where exactly one of the two is right count (an exact sign test).
    """
    worse = int(np.sum(current_hits & ~new_hits))
    better = int(np.sum(~current_hits & new_hits))
    n = worse + better
    if n == 0 or worse <= better:
        return 1.0
    return sum(math.comb(n, k) for k in range(worse, n + 1)) / 2**n
