"""When to stop labelling: the stopping rule, stated once and applied everywhere.

The session is **stable** when

* each of the last ``PATIENCE`` (2) changes of the model in use changed at most
  ``MAX_CHANGED`` (0.5%) of the map's positions, with Cohen's kappa between the
  two maps at least ``MIN_KAPPA`` (0.99), and
* the current model's holdout accuracy is known to within ``MAX_CI_WIDTH``:
  its 95% Wilson interval is at most 30 points wide (for example 10 of 10
  holdout labels right gives 72%-100%, 28 points).

The app shows this rule and whether it is met; ``ghosttui status`` (``--json``:
``stable``) says the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_CHANGED = 0.005
MIN_KAPPA = 0.99
PATIENCE = 2
MAX_CI_WIDTH = 0.30
RULE = (
    f"stable when the last {PATIENCE} model changes each moved < {MAX_CHANGED:.1%} of the map "
    f"(kappa >= {MIN_KAPPA}) and the holdout 95% interval is <= {MAX_CI_WIDTH:.0%} wide"
)


@dataclass(frozen=True)
class Stability:
    verdict: str  # "stable", "settling", "changing" or "not yet"
    reason: str
    changed: float | None = None
    kappa: float | None = None

    @property
    def stable(self) -> bool:
        return self.verdict == "stable"


def stability(
    changes: list[dict[str, Any]],
    holdout_ci: tuple[float, float] | None,
    *,
    max_changed: float = MAX_CHANGED,
    min_kappa: float = MIN_KAPPA,
    patience: int = PATIENCE,
    max_ci_width: float = MAX_CI_WIDTH,
) -> Stability:
    """Judge the session from its model changes (oldest first: each a dict with
    ``changed_fraction`` and ``kappa_previous``) and the current holdout interval."""
    compared = [m for m in changes if "changed_fraction" in m and "kappa_previous" in m]
    if not compared:
        return Stability("not yet", "needs two models to compare")
    last = compared[-1]
    changed, kappa = float(last["changed_fraction"]), float(last["kappa_previous"])
    settled = [
        m["changed_fraction"] <= max_changed and m["kappa_previous"] >= min_kappa for m in compared
    ]
    text = f"last change moved {changed:.2%} of the map, kappa {kappa:.3f}"
    if holdout_ci is None:
        narrow, text = False, text + "; no holdout labels yet"
    else:
        width = holdout_ci[1] - holdout_ci[0]
        narrow = width <= max_ci_width
        text += f"; holdout interval {width:.0%} wide"
    map_settled = len(settled) >= patience and all(settled[-patience:])
    if map_settled and narrow:
        return Stability("stable", text, changed, kappa)
    if settled[-1]:
        return Stability("settling", text, changed, kappa)
    return Stability("changing", text, changed, kappa)
