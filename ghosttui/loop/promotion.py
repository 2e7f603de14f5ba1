"""Which model is in use, and the honest numbers about it.

A newly trained model replaces the current one only when

1. it was trained on labels that still stand (no label of its training set was
   undone or changed since), and
2. it was trained on a class the current model had no label of (a model trains
   on the classes that have labels; one that knows more classes replaces one that
   knows fewer), or else it is not measurably worse than the current model:
   * on the random holdout (labels neither model trained on), a one-sided
     exact sign test on the positions where exactly one of the two is right
     does not say "worse" at the 5% level, and
   * when both models carry a cross-validated accuracy, the new model's 95%
     interval does not lie wholly below the current model's.

Otherwise it is kept as a *candidate*: ``ghosttui status`` and the app say so,
and ``ghosttui train --promote`` (or the app's promote key) takes it anyway.

The accuracy estimate shown for the current model is its accuracy on the
holdout with a 95% Wilson interval (and, where the learner reports one, its
cross-validated accuracy on its training labels, which leans pessimistic when
the labels were chosen at domain walls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ghosttui.metrics import sign_test_worse, wilson_interval

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class Verdict:
    take: bool
    reason: str


@dataclass(frozen=True)
class HoldoutScore:
    correct: int
    total: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.total if self.total else None

    @property
    def ci95(self) -> tuple[float, float] | None:
        return wilson_interval(self.correct, self.total) if self.total else None


def absent_classes(metrics: dict[str, Any]) -> list[str]:
    """The classes a model was trained without a single label of."""
    if "absent_classes" in metrics:
        return list(metrics["absent_classes"])
    return [c for c, n in metrics.get("label_counts", {}).items() if n == 0]


def holdout_hits(predicted: np.ndarray, positions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per holdout position, whether the class map ``predicted`` (Rx, Ry) is right."""
    if len(positions) == 0:
        return np.zeros(0, bool)
    return predicted[positions[:, 0], positions[:, 1]] == labels


def judge(
    *,
    stale: bool,
    new_hits: np.ndarray,
    current_hits: np.ndarray | None,
    new_metrics: dict[str, Any],
    current_metrics: dict[str, Any] | None,
) -> Verdict:
    """Whether a new model replaces the current one (see the module docstring)."""
    if stale:
        return Verdict(False, "labels it trained on were undone or changed since")
    if current_hits is None or current_metrics is None:
        return Verdict(True, "first model")
    gained = [c for c in absent_classes(current_metrics) if c not in absent_classes(new_metrics)]
    if gained:
        return Verdict(
            True,
            f"trained on {', '.join(gained)}, which the model it replaces had no label of",
        )
    p = sign_test_worse(current_hits, new_hits)
    if p < SIGNIFICANCE:
        return Verdict(
            False,
            f"worse on the holdout ({int(new_hits.sum())}/{len(new_hits)} right against "
            f"{int(current_hits.sum())}/{len(current_hits)}, sign test p={p:.3f})",
        )
    new_ci, current_ci = new_metrics.get("cv_ci95"), (current_metrics or {}).get("cv_ci95")
    if new_ci and current_ci and new_ci[1] < current_ci[0]:
        return Verdict(
            False,
            f"worse in cross-validation ({new_metrics['cv_accuracy']:.1%}, 95% CI "
            f"{new_ci[0]:.1%}-{new_ci[1]:.1%}, against {current_metrics['cv_accuracy']:.1%}, "
            f"{current_ci[0]:.1%}-{current_ci[1]:.1%})",
        )
    return Verdict(True, "not measurably worse than the model it replaces")
