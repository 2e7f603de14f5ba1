"""The query strategies, the schedule and the bench."""

from __future__ import annotations

import numpy as np
import pytest

from ghosttui.errors import GhostError
from ghosttui.sampling.schedule import (
    ScheduleState,
    choose_grid_step,
    plan_next,
    spread_order,
    walls_first,
)
from ghosttui.sampling.strategies import (
    boundary_midpoints,
    grid_points,
    grid_size,
    grid_step_for_budget,
    next_boundary_step,
    random_queries,
    uncertainty_queries,
    uncertainty_scores,
)
from ghosttui.session.settings import SamplingSpec


# -- grid --------------------------------------------------------------------------------------
def test_grid_follows_the_paper_and_covers_the_edges():
    points = grid_points((206, 34), 30)
    rows = sorted({rx for rx, _ in points})
    cols = sorted({ry for _, ry in points})
    assert rows == [0, 30, 60, 90, 120, 150, 180, 205]  # i*s, plus the last row
    assert cols == [0, 30, 33]
    assert len(points) == grid_size((206, 34), 30) == 24
    assert (205, 33) in points and (0, 0) in points


def test_grid_step_for_budget_is_the_finest_that_fits():
    step = grid_step_for_budget((206, 34), 50)
    assert grid_size((206, 34), step) <= 50 < grid_size((206, 34), step - 1)
    assert grid_step_for_budget((10, 10), 3) is None  # even the 4 corners do not fit


def test_a_budget_smaller_than_the_grid_says_which_step_fits():
    spec = SamplingSpec(budget=50, grid_step=10)
    with pytest.raises(GhostError) as error:
        choose_grid_step(spec, (206, 34))
    message = str(error.value)
    assert "budget 50" in message and "step-10 grid" in message and "fits" in message
    fit = int(message.split("step ")[-1].split(" fits")[0])
    assert grid_size((206, 34), fit) <= 50


def test_spread_order_covers_the_scan_early():
    points = grid_points((100, 100), 10)
    ordered = spread_order(points)
    assert sorted(ordered) == sorted(points)
    first = np.array(ordered[:4])
    assert np.ptp(first[:, 0]) >= 80 and np.ptp(first[:, 1]) >= 80  # the corners come first


# -- boundary midpoints ------------------------------------------------------------------------
def wall_labels(step: int, shape=(41, 21), wall=20.5) -> dict[tuple[int, int], int]:
    """Grid labels of a horizontal wall: class 0 above ``wall``, class 1 below."""
    return {(rx, ry): int(rx > wall) for rx, ry in grid_points(shape, step)}


def test_midpoints_between_differently_labelled_neighbours_only():
    labels = wall_labels(10)
    mids = boundary_midpoints(labels, 10)
    assert mids and all(rx == 25 for rx, _ in mids)  # halfway between rows 20 and 30
    assert boundary_midpoints({p: 0 for p in labels}, 10) == []  # no wall, no query


def test_closest_differing_neighbour_wins():
    labels = {(0, 0): 0, (0, 4): 1, (4, 4): 1}
    # (0, 0) asks for the midpoint towards its closest differing neighbour (0, 4), not the
    # diagonal; (0, 4) would ask for the same point, so only (4, 4), whose sole differing
    # neighbour is (0, 0), adds the diagonal midpoint.
    assert boundary_midpoints(labels, 4) == [(0, 2), (2, 2)]
    assert boundary_midpoints({(0, 0): 0, (0, 4): 1}, 4) == [(0, 2)]


def test_midpoints_already_labelled_or_queued_are_never_queued_again():
    labels = wall_labels(10)
    first = boundary_midpoints(labels, 10)
    assert boundary_midpoints(labels, 10, exclude=first) == []
    labels.update({p: 1 for p in first})
    again = boundary_midpoints(labels, 10)
    assert not set(again) & set(first)


def test_bisection_steps_round_up_and_end():
    assert [next_boundary_step(s) for s in (10, 5, 3, 2, 1)] == [5, 3, 2, 1, 0]


def test_bisection_ends_when_every_wall_is_resolved():
    """Label the truth at each pass: the loop halves the step, converges on the wall and stops."""
    truth = lambda rx, ry: int(rx > 17)  # noqa: E731
    labels = {p: truth(*p) for p in grid_points((41, 21), 10)}
    asked = set(labels)
    step, passes = 10, 0
    while step >= 1:
        mids = boundary_midpoints(labels, step, asked)
        asked |= set(mids)
        labels.update({p: truth(*p) for p in mids})
        step = next_boundary_step(step)
        passes += 1
    assert passes <= 5
    rows_either_side = {rx for rx, _ in labels if 16 <= rx <= 19}
    assert {17, 18} <= rows_either_side  # the wall is pinned between adjacent rows
    assert boundary_midpoints(labels, 1, asked) == []


# -- uncertainty, random ----------------------------------------------------------------------
def test_uncertainty_measures():
    p = np.array([[[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]]])
    margin = uncertainty_scores(p, "margin")[0]
    entropy = uncertainty_scores(p, "entropy")[0]
    assert margin[0] == pytest.approx(0.0) and margin[1] == pytest.approx(1.0)
    assert entropy[0] == pytest.approx(0.0, abs=1e-6) and entropy[2] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        uncertainty_scores(p, "variance")


def test_uncertainty_queries_are_spread_out_and_skip_labelled_positions():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1, 1, 1], size=(40, 40))
    probs[10:14, 10:14] = 1 / 3  # one blob, as uncertain as can be
    picks = uncertainty_queries(probs, 10, radius=3, exclude=[(10, 10)])
    positions = [(rx, ry) for rx, ry, _ in picks]
    assert len(picks) == 10 and (10, 10) not in positions
    in_blob = [p for p in positions if 10 <= p[0] < 14 and 10 <= p[1] < 14]
    assert 1 <= len(in_blob) <= 2  # the blob gets one or two queries, not ten
    for i, a in enumerate(positions):
        for b in positions[i + 1 :]:
            assert max(abs(a[0] - b[0]), abs(a[1] - b[1])) > 3
    scores = [s for _, _, s in picks]
    assert scores[0] == max(scores)


def test_random_queries_are_distinct_and_avoid_excluded():
    rng = np.random.default_rng(1)
    exclude = [(0, i) for i in range(10)]
    picks = random_queries((10, 10), 90, rng, exclude)
    assert len(set(picks)) == 90 and not set(picks) & set(exclude)
    assert random_queries((10, 10), 50, rng, picks + exclude) == []


def test_walls_first_puts_points_near_a_wall_ahead():
    labels = {(0, 0): 0, (0, 8): 1, (20, 20): 0}
    ordered = walls_first([(20, 22), (0, 4), (19, 20)], labels, radius=4)
    assert ordered[0] == (0, 4)


# -- the schedule ------------------------------------------------------------------------------
def drive(spec: SamplingSpec, truth: np.ndarray, probabilities=None, rounds=50):
    """Answer every plan from the truth until a model is needed or the budget is spent."""
    labels, queued, state, plans = {}, set(), ScheduleState(), []
    for _ in range(rounds):
        plan = plan_next(
            spec,
            truth.shape,
            labels,
            queued,
            state,
            probabilities=probabilities,
            model_current=probabilities is not None,
        )
        plans.append(plan)
        state = plan.state
        if plan.done or plan.train_first:
            break
        for rx, ry, source, _ in plan.queries:
            queued.add((rx, ry))
            if source != "holdout":
                labels[(rx, ry)] = int(truth[rx, ry])
    return labels, plans


def band_truth(shape=(60, 20)) -> np.ndarray:
    rx = np.arange(shape[0])[:, None].repeat(shape[1], 1)
    return np.where(rx < 28, 1, np.where(rx > 31, 0, 2))


def test_hybrid_runs_grid_then_boundary_then_asks_for_a_model():
    truth = band_truth()
    labels, plans = drive(SamplingSpec(strategy="hybrid", budget=60), truth)
    sources = [p.queries[0][2] for p in plans if p.queries]
    assert sources[0] == "grid" and "boundary" in sources
    assert plans[-1].train_first and not plans[-1].done
    assert len(labels) <= 60
    assert sum(1 for v in labels.values() if v == 2) >= 2  # the band was found


def test_hybrid_uncertainty_round_with_a_model():
    truth = band_truth()
    probabilities = np.full((*truth.shape, 3), 0.02)
    probabilities[..., 0] = 0.96
    probabilities[27:33, :] = [0.4, 0.35, 0.25]
    spec = SamplingSpec(strategy="hybrid", budget=60, round_size=6)
    labels, plans = drive(spec, truth)
    plan = plan_next(
        spec,
        truth.shape,
        labels,
        set(labels),
        plans[-1].state,
        probabilities=probabilities,
        model_current=True,
    )
    assert [q[2] for q in plan.queries] == ["uncertainty"] * 6
    assert all(27 <= rx < 33 for rx, _, _, _ in plan.queries[:2])


def test_grid_boundary_spends_the_whole_budget_and_ends():
    truth = band_truth()
    labels, plans = drive(SamplingSpec(strategy="grid-boundary", budget=120), truth)
    assert len(labels) == 120 and plans[-1].done
    assert any("no boundary pair left" in p.message for p in plans)


def test_random_and_holdout():
    truth = band_truth()
    labels, plans = drive(SamplingSpec(strategy="random", budget=40), truth)
    assert len(labels) == 40 and plans[-1].done
    spec = SamplingSpec(strategy="hybrid", budget=30, holdout=7)
    _, plans = drive(spec, truth)
    holdout = [q for p in plans for q in p.queries if q[2] == "holdout"]
    assert len(holdout) == 7


def test_missing_class_gets_random_queries_instead_of_a_model():
    spec = SamplingSpec(strategy="uncertainty", budget=40)
    plan = plan_next(
        spec,
        (20, 20),
        {(0, 0): 0},
        {(0, 0)},
        ScheduleState(phase="uncertainty"),
        missing_classes=["none"],
    )
    assert plan.queries and {q[2] for q in plan.queries} == {"random"}
    assert "none" in plan.message


def test_a_class_without_labels_leaves_half_of_each_uncertainty_round_to_random_positions():
    spec = SamplingSpec(strategy="uncertainty", budget=40, round_size=10, diversity_radius=0)
    labels = {(0, 0): 0, (19, 19): 1}
    state = ScheduleState(phase="uncertainty")
    waits = plan_next(spec, (20, 20), labels, set(labels), state, missing_classes=["none"])
    assert waits.train_first and not waits.queries  # two classes: a model comes first
    probabilities = np.full((20, 20, 3), [0.9, 0.05, 0.05], np.float32)
    probabilities[5:8, 5:8] = [0.5, 0.45, 0.05]  # the model is unsure here only
    plan = plan_next(
        spec, (20, 20), labels, set(labels), state,
        probabilities=probabilities, model_current=True, missing_classes=["none"],
    )  # fmt: skip
    sources = [q[2] for q in plan.queries]
    assert sources.count("random") == 5 and sources.count("uncertainty") == 5
    assert sources[:2] != ["random", "random"]  # interleaved, not one block then the other
    assert all(5 <= q[0] < 8 and 5 <= q[1] < 8 for q in plan.queries if q[2] == "uncertainty")
    assert len({q[:2] for q in plan.queries}) == 10
    assert "none has no label yet: 5 random positions to look for one" in plan.message
    full = plan_next(
        spec, (20, 20), labels, set(labels), state, probabilities=probabilities,
        model_current=True,
    )  # fmt: skip
    assert {q[2] for q in full.queries} == {"uncertainty"}


def test_unknown_strategy():
    with pytest.raises(GhostError, match="strategy must be one of"):  # refused where it enters
        plan_next(SamplingSpec(strategy="magic"), (10, 10), {}, set(), ScheduleState())


def test_plan_next_leaves_the_callers_state_alone_and_is_deterministic():
    state = ScheduleState()
    before = state.to_dict()
    first = plan_next(SamplingSpec(), (20, 20), {}, set(), state)
    again = plan_next(SamplingSpec(), (20, 20), {}, set(), state)
    assert state.to_dict() == before  # the plan carries a new state; the given one is unchanged
    assert first.state is not state
    assert (first.state.phase, first.state.rounds) == ("grid", 1)
    assert first.queries and first.queries == again.queries
    assert {source for _, _, source, _ in first.queries} == {"grid", "holdout"}


def test_loop_wording_counts_and_spreads():
    from ghosttui.loop.report import accuracy_text, count, mean_text

    assert count(1, "seed") == "1 seed"
    assert count(3, "seed") == "3 seeds"
    assert count(2, "strategy", "strategies") == "2 strategies"
    assert mean_text([0.9871, 0.9871]) == "98.7% ± 0.0% (2 seeds)"
    assert mean_text([0.9871]) == "98.7% (1 seed)"
    assert accuracy_text(0.9, (0.6, 0.98), 10) == "90.0% (95% CI 60%-98%, n=10)"
    assert accuracy_text(None, None, 0, what="holdout") == "holdout - (no labels)"


def test_why_auto_took_its_learner_fits_in_a_line():
    from ghosttui.loop.report import choice_text

    stopped = {
        "chosen_by": "auto",
        "learner": "logreg",
        "cv_by_learner": {"cnn": 15 / 34, "logreg": 0.9},
        "cv_n_by_learner": {"cnn": 34, "logreg": 100},
        "choice_p": 1.0,
    }
    assert choice_text(stopped) == (
        "auto took logreg: cross-validated 90% (n=100), the CNN 44% (n=34)"
    )
    unfitted = {"chosen_by": "auto", "learner": "logreg", "cv_by_learner": {"logreg": 0.98}}
    assert choice_text(unfitted) == (
        "auto took logreg: cross-validated 98%, too few errors for the CNN to beat it (not fitted)"
    )
    cnn = {
        "chosen_by": "auto",
        "learner": "cnn",
        "cv_by_learner": {"cnn": 0.95, "logreg": 0.8},
        "choice_p": 0.012,
    }
    assert choice_text(cnn) == "auto took cnn: cross-validated 95%, logreg 80%, sign test p=0.012"
    assert choice_text({"learner": "logreg", "cv_by_learner": {"logreg": 0.9}}) == ""


def test_the_learner_is_named_with_its_neighbourhood():
    from ghosttui.loop.report import learner_text

    blend = {"learner": "logreg", "train_average": 3, "mean_share": 0.5}
    assert learner_text(blend) == "logreg, patterns + 3x3 means"
    assert learner_text({**blend, "mean_share": 1.0}) == "logreg, 3x3 means"
    assert learner_text({**blend, "mean_share": 0.0}) == "logreg"
    # models fitted before mean_share fitted the means alone
    assert learner_text({"learner": "logreg", "train_average": 3}) == "logreg, 3x3 means"
    assert learner_text({"learner": "logreg", "train_average": 1}) == "logreg"
    assert learner_text({"learner": "logreg"}) == "logreg"  # models fitted before the setting
    assert learner_text({"learner": "cnn", "train_average": None}) == "cnn"  # status --json
    assert learner_text({"learner": "cnn"}) == "cnn"
    assert learner_text({**blend, "input_blur": 1.0}) == "logreg, patterns + 3x3 means, blur 1 px"
    assert learner_text({**blend, "input_blur": 1.0, "input_symmetry": "mirror"}) == (
        "logreg, patterns + 3x3 means, blur 1 px, mirror-symmetric"
    )
    assert learner_text({**blend, "input_symmetry": "none"}) == "logreg, patterns + 3x3 means"
    assert learner_text({"learner": "logreg", "train_average": 1, "input_blur": 0.5}) == (
        "logreg, blur 0.5 px"
    )
    assert learner_text({"learner": "cnn", "input_blur": 1.0}) == "cnn"  # the CNN: no blur
    assert learner_text({}) == ""
