"""The labelling loop's protocol: rounds, training jobs, stale models, promotion, resume.

Training is replaced by a fake that returns chosen probabilities instantly, so these
tests check the controller's decisions, not a network.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import fake_model, one_hot, sim_truth

from ghosttui.errors import GhostError
from ghosttui.loop.controller import LabellingController
from ghosttui.loop.promotion import judge
from ghosttui.loop.rounds import TrainingJob
from ghosttui.metrics import sign_test_worse
from ghosttui.sampling.schedule import interleave
from ghosttui.session.settings import SamplingSpec

CLASSES = ["horizontal", "vertical", "none"]


def answer(loop: LabellingController, truth: np.ndarray) -> None:
    current = loop.current()
    loop.label(CLASSES[int(truth[current.rx, current.ry])])


@pytest.fixture
def truth(sim_file) -> np.ndarray:
    return sim_truth(sim_file)


def test_labels_inside_a_round_start_no_training_and_its_end_starts_one(make_session, truth):
    session = make_session("r", sampling=SamplingSpec(budget=40, grid_step=5))
    loop = LabellingController(session)
    assert loop.round == 1 and session.store.pending_in_round(1) > 5
    while session.store.pending_in_round(1) > 1:
        answer(loop, truth)
        assert loop.next_training() is None
    answer(loop, truth)  # the last query of round 1
    job = loop.next_training()
    assert job is not None and job.round == 1 and job.reason == "round 1 ended"
    assert job.up_to_event == session.store.round_plan(1).ended_event
    assert loop.round == 2  # boundary midpoints need no model: queued at once
    loop.training_started(job)
    assert loop.next_training() is None  # one job at a time
    verdict = loop.training_finished(fake_model(session, job, one_hot(truth)))
    assert verdict.take and loop.model.round == 1 and loop.model.state == "current"


def test_an_uncertainty_round_waits_for_the_model_of_the_labels_just_given(make_session, truth):
    session = make_session(
        "u", sampling=SamplingSpec(strategy="uncertainty", budget=40, grid_step=5)
    )
    loop = LabellingController(session)
    while session.store.pending_in_round(1):
        answer(loop, truth)
    # round 1 (a small grid) ended: the uncertainty round needs round 1's model
    assert loop.current() is None and loop.waiting and not loop.done
    assert session.store.round_plan(2) is None
    job = loop.next_training()
    loop.training_started(job)
    probabilities = one_hot(truth)
    unsure = next(
        (rx, ry)
        for rx in range(truth.shape[0])
        for ry in range(truth.shape[1])
        if (rx, ry) not in session.store.queued_positions()
    )
    probabilities[unsure] = [0.34, 0.33, 0.33]  # the least certain position
    loop.training_finished(fake_model(session, job, probabilities))
    current = loop.current()
    assert current.source == "uncertainty" and (current.rx, current.ry) == unsure
    assert loop.round == 2 and not loop.waiting


def test_undoing_the_answer_that_ended_a_round_reopens_it(make_session, truth):
    session = make_session("undo", sampling=SamplingSpec(budget=40, grid_step=5))
    loop = LabellingController(session)
    while loop.round == 1:
        answer(loop, truth)
    job = loop.next_training()
    loop.training_started(job)
    assert session.store.pending_in_round(2) > 0
    undone = loop.undo()
    assert loop.round == 1 and session.store.pending() != []
    assert (loop.current().rx, loop.current().ry) == (undone.rx, undone.ry)
    assert session.store.round_plan(2) is None  # round 2 is forgotten
    assert loop.running_job_is_stale()  # the job trained on the undone label
    loop.training_cancelled(job)
    assert loop.next_training() is None  # the round is open again: no retrain yet
    answer(loop, truth)  # answering it again ends round 1 again
    again = loop.next_training()
    assert again is not None and again.round == 1 and again.up_to_event > job.up_to_event


def test_a_label_changed_under_a_running_job_makes_it_stale(make_session, truth):
    session = make_session("stale", sampling=SamplingSpec(budget=40, grid_step=5))
    loop = LabellingController(session)
    while loop.round == 1:
        answer(loop, truth)
    job = loop.next_training()
    loop.training_started(job)
    labelled = next(lab for lab in loop.labels.values() if lab.source == "grid")
    other = CLASSES[(CLASSES.index(labelled.cls) + 1) % 3]
    loop.goto(labelled.rx, labelled.ry)
    loop.label(other)  # a manual relabel of a position the job trains on
    assert loop.running_job_is_stale()
    # the host did not cancel in time: the stale model lands, and is not used
    verdict = loop.training_finished(fake_model(session, job, one_hot(truth)))
    assert not verdict.take and "undone or changed" in verdict.reason
    assert session.store.models()[-1].state == "candidate" and loop.model is None
    retrain = loop.next_training()
    assert retrain.reason == "retrain: labels changed"
    assert retrain.up_to_event == session.store.last_event_id()


def test_a_measurably_worse_model_is_a_candidate_until_promoted(make_session, truth):
    session = make_session("worse", sampling=SamplingSpec(budget=40, holdout=12, grid_step=5))
    loop = LabellingController(session)
    while loop.round == 1:
        answer(loop, truth)
    job = loop.next_training()
    loop.training_started(job)
    assert loop.training_finished(fake_model(session, job, one_hot(truth))).take
    good = loop.model
    job = loop.request_training(epochs=1)
    loop.training_started(job)
    verdict = loop.training_finished(fake_model(session, job, one_hot(truth, wrong=0.9)))
    assert not verdict.take and "worse on the holdout" in verdict.reason
    assert loop.model.id == good.id and len(loop.candidates()) == 1
    assert loop.summary()["candidates"][0]["reason"].startswith("asked; worse on the holdout")
    promoted = loop.promote()
    assert promoted.state == "current" and loop.model.id != good.id
    assert session.store.model(good.id).state == "retired"
    with pytest.raises(GhostError, match="no candidate"):
        loop.promote()


def test_training_needs_labels_of_two_classes(make_session):
    session = make_session("missing")
    loop = LabellingController(session)
    loop.label("horizontal")
    loop.label("horizontal")
    with pytest.raises(GhostError, match=r"only horizontal has labels.*vertical or none"):
        loop.request_training()
    loop.label("vertical")
    assert loop.request_training().reason == "asked"  # 'none' has no label: it trains anyway


def test_a_round_ending_without_a_class_trains_on_the_classes_it_has(make_session, truth):
    """A class no label has met yet does not hold training back: round 1's model trains on
    the two labelled classes, says which it lacks, and the first model that has the third
    replaces it whatever the holdout says."""
    session = make_session("absent", sampling=SamplingSpec(budget=40, grid_step=5))
    loop = LabellingController(session)
    while session.store.pending_in_round(1):
        current = loop.current()
        cls = CLASSES[int(truth[current.rx, current.ry])]
        loop.label("vertical" if cls == "none" else cls)  # never 'none'
    assert loop.summary()["classes_without_labels"] == ["none"]
    job = loop.next_training()
    assert job is not None and job.reason == "round 1 ended"
    loop.training_started(job)
    loop.training_finished(
        fake_model(
            session, job, one_hot(truth), label_counts={"horizontal": 9, "vertical": 9, "none": 0}
        )
    )
    assert loop.summary()["model_absent_classes"] == ["none"]
    loop.label("none")
    later = loop.request_training()
    loop.training_started(later)
    verdict = loop.training_finished(
        fake_model(session, later, one_hot(truth, wrong=0.9), absent_classes=[], label_counts={})
    )  # far worse on the holdout, but it knows 'none'
    assert verdict.take and "trained on none" in verdict.reason, verdict.reason
    assert loop.summary()["model_absent_classes"] == []


def test_a_model_without_a_class_is_judged_like_any_other_once_both_lack_it():
    hits = np.ones(20, bool)
    worse = hits.copy()
    worse[:10] = False
    lacking = {"absent_classes": ["none"]}
    verdict = judge(
        stale=False, new_hits=worse, current_hits=hits, new_metrics=lacking, current_metrics=lacking
    )
    assert not verdict.take and "worse on the holdout" in verdict.reason
    gained = judge(
        stale=False,
        new_hits=worse,
        current_hits=hits,
        new_metrics={"label_counts": {"horizontal": 3, "none": 1}},
        current_metrics={"label_counts": {"horizontal": 3, "none": 0}},
    )  # models from before absent_classes was recorded: read from their label counts
    assert gained.take


def test_a_restarted_loop_resumes_the_unfinished_training_and_the_wait(make_session, truth):
    session = make_session(
        "resume", sampling=SamplingSpec(strategy="uncertainty", budget=40, grid_step=5)
    )
    loop = LabellingController(session)
    while session.store.pending_in_round(1):
        answer(loop, truth)
    job = loop.next_training()
    loop.training_started(job)  # ... and the app is killed before it finishes
    again = LabellingController(session)
    assert again.next_training() == job  # the same snapshot, rebuilt from the database
    assert again.waiting and again.current() is None


def test_status_reads_without_writing(make_session, truth):
    session = make_session("ro")
    LabellingController(session)  # plans round 1
    before = (session.store.last_event_id(), len(session.store.round_plans()))
    summary = LabellingController(session, resume=False).summary()
    assert (session.store.last_event_id(), len(session.store.round_plans())) == before
    assert summary["round"] == 1 and summary["model_id"] is None and summary["stable"] is False
    assert summary["accuracy_estimate"] == {
        "value": None,
        "ci95": None,
        "n": 0,
        "source": "holdout",
    }


# -- the promotion rule --------------------------------------------------------------------------
def test_sign_test_counts_only_the_positions_where_the_models_disagree():
    both = np.ones(20, bool)
    assert sign_test_worse(both, both) == 1.0
    current = np.array([True] * 5 + [False] * 0)
    new = np.array([False] * 5)
    assert sign_test_worse(current, new) == pytest.approx(1 / 32)  # 5 of 5 against
    four = np.array([True] * 4)
    assert sign_test_worse(four, ~four) == pytest.approx(1 / 16)  # not below 5%


def test_judge_uses_the_holdout_and_the_cross_validation_intervals():
    hits = np.ones(10, bool)
    first = judge(
        stale=False, new_hits=hits, current_hits=None, new_metrics={}, current_metrics=None
    )
    assert first.take and first.reason == "first model"
    cv_good = {"cv_accuracy": 0.95, "cv_ci95": [0.88, 0.98]}
    cv_bad = {"cv_accuracy": 0.56, "cv_ci95": [0.46, 0.66]}
    worse = judge(
        stale=False, new_hits=hits, current_hits=hits, new_metrics=cv_bad, current_metrics=cv_good
    )
    assert not worse.take and "cross-validation" in worse.reason
    overlap = judge(
        stale=False,
        new_hits=hits,
        current_hits=hits,
        new_metrics={"cv_accuracy": 0.9, "cv_ci95": [0.8, 0.95]},
        current_metrics=cv_good,
    )
    assert overlap.take


def test_interleave_spreads_the_second_list_through_the_first():
    grid = [(i, 0, "grid", 0.0) for i in range(12)]
    holdout = [(i, 1, "holdout", 0.0) for i in range(3)]
    merged = interleave(grid, holdout)
    assert sorted(merged) == sorted(grid + holdout)
    sources = [item[2] for item in merged]
    assert sources[0] == "grid" and sources[-1] == "grid"
    where = [i for i, s in enumerate(sources) if s == "holdout"]
    assert where == [3, 7, 11]
    assert [m for m in merged if m[2] == "grid"] == grid  # each order kept
    assert interleave(grid, []) == grid and interleave([], holdout) == holdout


def test_fake_model_files_live_in_the_session(make_session, truth):
    session = make_session("files")
    job = TrainingJob(1, 0, "test")
    trained = fake_model(session, job, one_hot(truth))
    assert Path(trained.predictions).is_file() and trained.checkpoint.is_file()
