"""The loop's numbers as words: one formatter for the app, ``train``, ``status`` and ``bench``.

A percentage is never shown without its 95% interval and the count it rests on,
so "100%" measured on three labels reads as what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ghosttui.metrics import wilson_interval


def accuracy_text(
    value: float | None, ci95: Sequence[float] | None, n: int, *, what: str = ""
) -> str:
    """``"93.0% (95% CI 84-97%, n=10)"``, or ``"- (no labels)"``."""
    label = f"{what} " if what else ""
    if value is None or n == 0:
        return f"{label}- (no labels)".strip()
    low, high = ci95 if ci95 is not None else wilson_interval(round(value * n), n)
    return f"{label}{value:.1%} (95% CI {low:.0%}-{high:.0%}, n={n})"


def holdout_text(metrics: dict[str, Any]) -> str:
    """The holdout accuracy recorded in a model's metrics."""
    n = int(metrics.get("holdout_n", 0))
    if not n:
        return "- (no holdout labels)"
    correct = int(metrics["holdout_correct"])
    return accuracy_text(correct / n, wilson_interval(correct, n), n)


def learner_text(metrics: dict[str, Any]) -> str:
    """The learner a model was fitted with: ``"logreg, patterns + 3x3 means, blur 1 px"``
    (the two fits blended, on blurred inputs; ``", mirror-symmetric"`` after it on inputs
    averaged with their mirror images), ``"logreg, 3x3 means"``, ``"logreg"``,
    ``"cnn"``, ``""``."""
    learner = metrics.get("learner") or ""
    if learner != "logreg":
        return learner
    k = int(metrics.get("train_average") or 1)
    share = float(metrics.get("mean_share", 1.0) if metrics.get("mean_share") is not None else 1.0)
    blur = float(metrics.get("input_blur") or 0.0)  # models before input_blur: none
    parts = [learner]
    if k > 1 and share > 0:
        parts.append(f"{k}x{k} means" if share >= 1 else f"patterns + {k}x{k} means")
    if blur > 0:
        parts.append(f"blur {blur:g} px")
    if metrics.get("input_symmetry") == "mirror":
        parts.append("mirror-symmetric")
    return ", ".join(parts)


def choice_text(metrics: dict[str, Any]) -> str:
    """Why ``auto`` took its learner, in a line: ``"auto took logreg: cross-validated 90%
    (n=100), the CNN 44% (n=34)"``; ``""`` for a model not chosen by ``auto``. The full
    reason is ``choice_reason`` (``train``, ``status``)."""
    if metrics.get("chosen_by") != "auto":
        return ""
    taken = metrics.get("learner") or "?"
    accuracy = metrics.get("cv_by_learner") or {}
    n = metrics.get("cv_n_by_learner") or {}

    def scored(learner: str) -> str:
        value = accuracy.get(learner)
        if value is None:
            return "-"
        return f"{value:.0%} (n={n[learner]})" if learner in n else f"{value:.0%}"

    other = "cnn" if taken == "logreg" else "logreg"
    name = {"cnn": "the CNN", "logreg": "logreg"}[other]
    if other not in accuracy:
        return (
            f"auto took {taken}: cross-validated {scored(taken)}, "
            "too few errors for the CNN to beat it (not fitted)"
        )
    text = f"auto took {taken}: cross-validated {scored(taken)}, {name} {scored(other)}"
    p = metrics.get("choice_p")
    if taken == "cnn" and p is not None:
        text += f", sign test p={p:.2g}"
    return text


def cv_text(metrics: dict[str, Any]) -> str:
    if metrics.get("cv_accuracy") is None:
        return "-"
    return accuracy_text(metrics["cv_accuracy"], metrics.get("cv_ci95"), int(metrics["cv_n"]))


def mean_text(values: Sequence[float]) -> str:
    """``"98.7% ± 0.2% (3 seeds)"``; one value has no spread: ``"98.7% (1 seed)"``."""
    import numpy as np

    n = len(values)
    if n == 0:
        return "-"
    mean = float(np.mean(values))
    if n == 1:
        return f"{mean:.1%} (1 seed)"
    return f"{mean:.1%} ± {float(np.std(values)):.1%} ({n} seeds)"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 seed``, ``3 seeds``; ``count(2, "strategy", "strategies")``."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def seconds_text(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
