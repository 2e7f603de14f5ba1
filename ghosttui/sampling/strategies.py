"""Query strategies: pure functions over the scan grid, the labels and the model's output.

Positions are ``(rx, ry)`` tuples; labels are ``{(rx, ry): class_index}``.

* :func:`grid_points` and :func:`grid_step_for_budget`: the paper's coarse
  grid ``p = (i s, j s)``, with the last row and column of the scan added so
  that the edges are covered.
* :func:`boundary_midpoints`: for each labelled point, the closest labelled
  neighbour within the current step (the 8 grid neighbours, and any label
  that lies that close) whose class differs; the midpoint of the pair is queued
  unless it is already labelled or queued. Repeated with the step halved, the
  labels bisect towards each wall; when no pair has a new midpoint the walls
  are resolved to adjacent positions and the refinement ends (the paper's code
  re-queued points and could loop forever here).
* :func:`uncertainty_queries`: margin or entropy of the latest probabilities
  over unlabelled positions, chosen greedily with no two queries closer than a
  radius, so one round does not spend its labels on one blob.
* :func:`random_queries`: the baseline, and the holdout sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

Position = tuple[int, int]


def _axis(n: int, step: int) -> list[int]:
    points = list(range(0, n, step))
    if points[-1] != n - 1:
        points.append(n - 1)
    return points


def grid_points(scan_shape: tuple[int, int], step: int) -> list[Position]:
    """Grid with spacing ``step`` covering the scan, last row and column included."""
    if step < 1:
        raise ValueError("grid step must be at least 1")
    return [(rx, ry) for rx in _axis(scan_shape[0], step) for ry in _axis(scan_shape[1], step)]


def grid_size(scan_shape: tuple[int, int], step: int) -> int:
    return len(_axis(scan_shape[0], step)) * len(_axis(scan_shape[1], step))


def grid_step_for_budget(scan_shape: tuple[int, int], points: int) -> int | None:
    """The finest step whose grid has at most ``points`` points (None if even the corners do not fit)."""
    for step in range(1, max(scan_shape) + 1):
        if grid_size(scan_shape, step) <= points:
            return step
    return None


def next_boundary_step(step: int) -> int:
    """The step of the next bisection pass: half, rounded up (0 after a step-1 pass).

    Rounding up matters: bisecting a gap of 5 leaves gaps of 2 and 3, which a
    step-2 pass would miss and leave the wall unresolved.
    """
    return (step + 1) // 2 if step > 1 else 0


def boundary_midpoints(
    labels: dict[Position, int], step: int, exclude: Iterable[Position] = ()
) -> list[Position]:
    """Midpoints between differently-labelled neighbours at most ``step`` apart.

    Each labelled point contributes at most one midpoint: that of its closest
    differently-labelled neighbour (Chebyshev distance <= step), skipping pairs
    whose midpoint is already labelled, queued (``exclude``) or coincides with
    an end point (the pair is adjacent: that wall is resolved).
    """
    if not labels:
        return []
    taken = set(labels) | set(exclude)
    points = np.array(sorted(labels), dtype=np.int64)
    classes = np.array([labels[tuple(p)] for p in points])
    chosen: list[Position] = []
    seen: set[Position] = set()
    for i, p in enumerate(points):
        delta = points - p
        cheb = np.abs(delta).max(1)
        candidates = np.flatnonzero((cheb > 0) & (cheb <= step) & (classes != classes[i]))
        if candidates.size == 0:
            continue
        distance = np.hypot(delta[candidates, 0], delta[candidates, 1])
        for j in candidates[np.argsort(distance, kind="stable")]:
            q = points[j]
            mid = (int((p[0] + q[0]) // 2), int((p[1] + q[1]) // 2))
            if mid in ((int(p[0]), int(p[1])), (int(q[0]), int(q[1]))):
                continue  # adjacent: nothing between them
            if mid in taken or mid in seen:
                continue
            seen.add(mid)
            chosen.append(mid)
            break
    return chosen


def uncertainty_scores(probabilities: np.ndarray, measure: str = "margin") -> np.ndarray:
    """(Rx, Ry) scores in [0, 1]: 1 is most uncertain."""
    p = np.clip(probabilities, 1e-12, 1.0)
    if measure == "margin":
        top2 = np.sort(p, axis=-1)[..., -2:]
        return 1.0 - (top2[..., 1] - top2[..., 0])
    if measure == "entropy":
        return -(p * np.log(p)).sum(-1) / math.log(p.shape[-1])
    raise ValueError(f"unknown uncertainty measure {measure!r} (margin or entropy)")


def uncertainty_queries(
    probabilities: np.ndarray,
    count: int,
    radius: int,
    exclude: Iterable[Position] = (),
    measure: str = "margin",
) -> list[tuple[int, int, float]]:
    """The ``count`` most uncertain positions, no two within ``radius`` (Chebyshev) of each other."""
    scores = uncertainty_scores(probabilities, measure)
    n_rx, n_ry = scores.shape
    blocked = np.zeros((n_rx, n_ry), bool)
    for rx, ry in exclude:
        blocked[rx, ry] = True
    order = np.argsort(-scores, axis=None, kind="stable")
    picked: list[tuple[int, int, float]] = []
    near = np.zeros_like(blocked)
    for flat in order:
        rx, ry = divmod(int(flat), n_ry)
        if blocked[rx, ry] or near[rx, ry]:
            continue
        picked.append((rx, ry, float(scores[rx, ry])))
        if len(picked) >= count:
            break
        near[max(0, rx - radius) : rx + radius + 1, max(0, ry - radius) : ry + radius + 1] = True
    return picked


def random_queries(
    scan_shape: tuple[int, int],
    count: int,
    rng: np.random.Generator,
    exclude: Iterable[Position] = (),
) -> list[Position]:
    """``count`` distinct random positions not in ``exclude``."""
    excluded = {rx * scan_shape[1] + ry for rx, ry in exclude}
    free = np.setdiff1d(np.arange(scan_shape[0] * scan_shape[1]), np.fromiter(excluded, np.int64))
    pick = rng.choice(free, size=min(count, free.size), replace=False)
    return [divmod(int(i), scan_shape[1]) for i in pick]
