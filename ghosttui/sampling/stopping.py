"""When to stop labelling: the map has settled.

Between successive rounds, the fraction of positions whose predicted class
changed and Cohen's kappa between the two maps; plus the holdout accuracy
when holdout labels exist. The session is *stable* when the map changed by at
most ``max_changed`` with kappa at least ``min_kappa`` in each of the last
``patience`` comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_CHANGED = 0.01
MIN_KAPPA = 0.97
PATIENCE = 2


@dataclass(frozen=True)
class Stability:
    verdict: str  # "stable", "settling", "changing" or "not yet"
    reason: str
    changed: float | None = None
    kappa: float | None = None
    holdout: float | None = None

    @property
    def stable(self) -> bool:
        return self.verdict == "stable"


def stability(
    rounds: list[dict[str, Any]],
    max_changed: float = MAX_CHANGED,
    min_kappa: float = MIN_KAPPA,
    patience: int = PATIENCE,
) -> Stability:
    """Judge the trained rounds (each with a ``metrics`` dict) of a session."""
    metrics = [r.get("metrics", {}) for r in rounds]
    compared = [m for m in metrics if "changed_fraction" in m and "kappa_previous" in m]
    holdout = metrics[-1].get("holdout_accuracy") if metrics else None
    if not compared:
        return Stability("not yet", "needs two trained rounds to compare", holdout=holdout)
    last = compared[-1]
    changed, kappa = float(last["changed_fraction"]), float(last["kappa_previous"])
    settled = [
        m["changed_fraction"] <= max_changed and m["kappa_previous"] >= min_kappa for m in compared
    ]
    text = f"last round changed {changed:.2%} of the map, kappa {kappa:.3f}"
    if holdout is not None:
        text += f", holdout accuracy {holdout:.1%}"
    if len(settled) >= patience and all(settled[-patience:]):
        return Stability("stable", text, changed, kappa, holdout)
    if settled[-1]:
        return Stability("settling", text, changed, kappa, holdout)
    return Stability("changing", text, changed, kappa, holdout)
