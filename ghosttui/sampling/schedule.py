"""The labelling schedule: which strategy asks next, and when the model must retrain.

:func:`plan_next` is pure: given the session's sampling settings, the labels
so far, every position ever queued, the latest probabilities and the
schedule's own small state, it returns the next batch of queries (a *round*)
and the new state. The labelling loop (:mod:`ghosttui.loop.controller`) calls
it when a round ends.

Strategies:

``hybrid`` (default)
    coarse grid -> boundary-midpoint passes (step halved each pass) ->
    rounds of uncertainty queries with spatial diversity, retraining before
    each uncertainty round.
``grid-boundary``
    the paper's method: grid, then boundary passes; when every wall is resolved
    and budget is left, a grid of half the step, and boundary passes again.
``random``
    uniform random positions (the baseline).
``uncertainty``
    a small grid to start, then uncertainty rounds only.

Holdout positions (``SamplingSpec.holdout_size``, random) are queued in the
first round, spread through the grid so that they look like any other query;
they are labelled like any other but never trained on: they measure the
model's accuracy on the map without bias.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ghosttui.errors import GhostError
from ghosttui.sampling.strategies import (
    Position,
    boundary_midpoints,
    grid_points,
    grid_size,
    grid_step_for_budget,
    next_boundary_step,
    random_queries,
    uncertainty_queries,
)
from ghosttui.session.settings import STRATEGIES, SamplingSpec

GRID_SHARE = {"hybrid": 0.4, "grid-boundary": 0.5, "uncertainty": 0.2}


@dataclass
class ScheduleState:
    """What the schedule remembers between calls (kept in the session database)."""

    phase: str = "start"
    grid_step: int = 0
    boundary_step: int = 0
    holdout_queued: bool = False
    boundary_done: bool = False
    rounds: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ScheduleState:
        data = data or {}
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass
class Plan:
    queries: list[tuple[int, int, str, float]] = field(default_factory=list)
    state: ScheduleState = field(default_factory=ScheduleState)
    message: str = ""
    train_first: bool = False  # a model trained on the current labels is needed before asking
    done: bool = False  # budget spent or nothing left to ask


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        raise GhostError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})")
    return name


def choose_grid_step(spec: SamplingSpec, scan_shape: tuple[int, int]) -> int:
    """The session's grid step, or the finest that fits its share of the budget.

    A user-given step whose grid exceeds the budget is an error that says
    which step would fit.
    """
    if spec.grid_step:
        needed = grid_size(scan_shape, spec.grid_step)
        if needed > spec.budget:
            fit = grid_step_for_budget(scan_shape, spec.budget)
            hint = f"; step {fit} fits ({grid_size(scan_shape, fit)} points)" if fit else ""
            raise GhostError(
                f"budget {spec.budget} is smaller than the {needed} points of a step-{spec.grid_step} "
                f"grid on the {scan_shape[0]}x{scan_shape[1]} scan{hint}"
            )
        return spec.grid_step
    share = GRID_SHARE.get(spec.strategy, 0.4)
    target = max(4, round(spec.budget * share))
    step = grid_step_for_budget(scan_shape, target)
    if step is None or grid_size(scan_shape, step) > spec.budget:
        corners = grid_size(scan_shape, max(scan_shape))
        raise GhostError(
            f"budget {spec.budget} is too small: even the coarsest grid needs {corners} labels"
        )
    return step


def interleave(
    first: list[tuple[int, int, str, float]], second: list[tuple[int, int, str, float]]
) -> list[tuple[int, int, str, float]]:
    """``second`` spread evenly through ``first`` (the order within each kept)."""
    if not second:
        return list(first)
    total = len(first) + len(second)
    slots = {int((i + 1) * total / (len(second) + 1)) for i in range(len(second))}
    a, b = iter(first), iter(second)
    out = [next(b, None) if i in slots else next(a, None) for i in range(total)]
    leftover = [*a, *b]  # when two slots rounded onto one
    return [item for item in out if item is not None] + leftover


def spread_order(points: list[Position]) -> list[Position]:
    """Farthest-point order: any prefix of the list covers the scan evenly."""
    if len(points) <= 2:
        return list(points)
    pts = np.array(points, dtype=float)
    order = [0]
    distance = np.hypot(*(pts - pts[0]).T)
    for _ in range(len(points) - 1):
        nxt = int(np.argmax(distance))
        order.append(nxt)
        distance = np.minimum(distance, np.hypot(*(pts - pts[nxt]).T))
    return [points[i] for i in order]


def walls_first(points: list[Position], labels: dict[Position, int], radius: int) -> list[Position]:
    """Points with differently-labelled positions within ``radius`` first (order kept within each group).

    When the budget cannot pay for a whole finer grid, it goes to the walls.
    """
    if not labels or not points:
        return points
    known = np.array(list(labels), dtype=np.int64)
    classes = np.array(list(labels.values()))
    near, far = [], []
    for p in points:
        close = np.abs(known - np.array(p)).max(1) <= radius
        (near if len(set(classes[close].tolist())) > 1 else far).append(p)
    return near + far


def _have(names: list[str]) -> str:
    """``"none has"``, ``"vertical, none have"``."""
    return f"{', '.join(names)} {'have' if len(names) > 1 else 'has'}"


def plan_next(
    spec: SamplingSpec,
    scan_shape: tuple[int, int],
    labels: dict[Position, int],
    queued: set[Position],
    state: ScheduleState,
    *,
    probabilities: np.ndarray | None = None,
    model_current: bool = False,
    missing_classes: list[str] | None = None,
    rng: np.random.Generator | None = None,
) -> Plan:
    """The next round of queries.

    ``labels`` are the training labels (holdout excluded); ``queued`` every
    position ever queued (labelled, skipped or pending, holdout included);
    ``probabilities`` the latest whole-scan prediction and ``model_current``
    whether it was trained on exactly the current labels; ``missing_classes``
    the classes without any label (a model trains on the classes that have labels; while
    one lacks labels, half of each uncertainty round goes to random positions, to find it).
    """
    check_strategy(spec.strategy)
    rng = rng or np.random.default_rng(spec.seed + 1000 * state.rounds)
    state = ScheduleState(**state.to_dict())
    taken = set(queued) | set(labels)
    left = spec.budget - len(labels)
    if left <= 0:
        return Plan(state=state, message=f"budget of {spec.budget} labels reached", done=True)

    def queue(points: list[Position], source: str, message: str, priority: float = 0.0) -> Plan:
        state.rounds += 1
        items = [(int(rx), int(ry), source, priority) for rx, ry in points[:left]]
        return Plan(items, state, message)

    if spec.strategy == "random":
        size = min(left, spec.round_length)
        points = random_queries(scan_shape, size, rng, taken)
        if not points:
            return Plan(state=state, message="every position is labelled", done=True)
        plan = queue(points, "random", f"{len(points)} random positions")
        if not state.holdout_queued:
            state.holdout_queued = True
            holdout = random_queries(scan_shape, spec.holdout_size, rng, taken | set(points))
            holdout_items = [(rx, ry, "holdout", 0.0) for rx, ry in holdout]
            plan.queries = interleave(plan.queries, holdout_items)
            if holdout:
                plan.message += f", and {len(holdout)} random holdout positions (never trained on)"
        return plan

    if state.phase == "start":
        state.grid_step = choose_grid_step(spec, scan_shape)
        state.phase = "grid"
        points = [
            p for p in spread_order(grid_points(scan_shape, state.grid_step)) if p not in taken
        ][:left]
        items = [(int(rx), int(ry), "grid", 0.0) for rx, ry in points]
        holdout = random_queries(scan_shape, spec.holdout_size, rng, taken | set(points))
        state.holdout_queued = True
        state.rounds += 1
        message = f"coarse grid, step {state.grid_step}: {len(points)} positions"
        if holdout:
            message += f", and {len(holdout)} random holdout positions (never trained on)"
        holdout_items = [(rx, ry, "holdout", 0.0) for rx, ry in holdout]
        return Plan(interleave(items, holdout_items), state, message)

    if state.phase == "grid":
        state.phase = "boundary" if spec.strategy != "uncertainty" else "uncertainty"
        state.boundary_step = state.grid_step

    if state.phase == "boundary":
        share = spec.boundary_share if spec.strategy == "hybrid" else 1.0
        boundary_budget = round(
            share * max(0, spec.budget - grid_size(scan_shape, state.grid_step))
        )
        spent = sum(1 for p in labels if p not in set(grid_points(scan_shape, state.grid_step)))
        room = min(left, boundary_budget - spent) if spec.strategy == "hybrid" else left
        while state.boundary_step >= 1 and room > 0:
            mids = boundary_midpoints(labels, state.boundary_step, taken)
            step = state.boundary_step
            state.boundary_step = next_boundary_step(step)
            if mids:
                plan = queue(
                    mids[:room],
                    "boundary",
                    f"boundary midpoints, pass at step {step}: {min(room, len(mids))}",
                )
                return plan
        if spec.strategy == "grid-boundary":
            if state.grid_step <= 1:
                return Plan(state=state, message="every position is labelled", done=True)
            state.grid_step = max(1, state.grid_step // 2)
            state.boundary_step = state.grid_step
            points = [
                p for p in spread_order(grid_points(scan_shape, state.grid_step)) if p not in taken
            ]
            points = walls_first(points, labels, 2 * state.grid_step)
            return queue(
                points,
                "grid",
                f"no boundary pair left (walls resolved); finer grid, step {state.grid_step}: "
                f"{min(left, len(points))} positions",
            )
        state.phase = "uncertainty"
        state.boundary_done = True

    # uncertainty rounds (hybrid, uncertainty)
    if missing_classes and len(set(labels.values())) < 2:
        size = min(left, spec.round_length)
        points = random_queries(scan_shape, size, rng, taken)
        return queue(
            points,
            "random",
            f"no model yet: {_have(missing_classes)} no label; {len(points)} random positions",
        )
    if probabilities is None or not model_current:
        return Plan(
            state=state,
            message=("boundary refinement finished; " if state.boundary_done else "")
            + "retrain on the labels so far, then ask where the model is unsure",
            train_first=True,
        )
    size = min(left, spec.round_length)
    searching: list[Position] = []
    if missing_classes:  # the model knows only the labelled classes: half the round looks
        searching = random_queries(scan_shape, (size + 1) // 2, rng, taken)
    picks = uncertainty_queries(
        probabilities, size - len(searching), spec.diversity_radius, taken | set(searching),
        spec.uncertainty,
    )  # fmt: skip
    if not picks and not searching:
        return Plan(state=state, message="no unlabelled position left", done=True)
    state.rounds += 1
    message = (
        f"uncertainty round: the {len(picks)} least certain positions, at least "
        f"{spec.diversity_radius + 1} apart"
    )
    if searching:
        message = (
            f"{_have(missing_classes)} no label yet: {len(searching)} random positions to "
            f"look for one; {message}"
        )
    return Plan(
        interleave(
            [(rx, ry, "uncertainty", score) for rx, ry, score in picks],
            [(rx, ry, "random", 0.0) for rx, ry in searching],
        ),
        state,
        message,
    )
