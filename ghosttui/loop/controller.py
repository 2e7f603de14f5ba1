"""The labelling loop: what the labeller sees next, when a model trains, which model is used.

One controller, driven alike by the terminal app (a person answers, training
runs in a worker thread), by ``ghosttui train`` (training on request) and by
``ghosttui bench`` (a simulated labeller answers, training runs inline). It
keeps no state that the session database does not hold, so a restarted app
resumes exactly where the last one stopped.

**Rounds.** The schedule (:func:`ghosttui.sampling.schedule.plan_next`) plans
one *round* of queries at a time: the coarse grid (with the random holdout
spread through it), a boundary-midpoint pass, a batch of uncertainty or random
queries. A round ends when its last query is answered (labelled or skipped).
Then, and only then (or when the user asks), a model trains: on the labels as
they stood at the event that ended the round. The next round is planned at
once when it does not need that model (grid, boundary, random rounds); an
uncertainty round waits for it, so its queries always come from the model of
the labels just given, whoever answers and however fast.

**Stale models.** While a model trains the labeller keeps going. Undoing or
changing a label that the model trained on makes it *stale*: the host is told
to cancel it (:meth:`running_job_is_stale`), and it is retrained on the labels
that stand (or, when the undo reopened its round, when the round ends again).
A stale model that finishes anyway is kept as a candidate, never used.

**Which model is used** is decided by :func:`ghosttui.loop.promotion.judge`.

**Manual mode**: moving the cursor on the map shows the pattern under it; a
class key labels it (source ``manual``) without touching the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ghosttui.errors import SessionError
from ghosttui.loop.promotion import HoldoutScore, Verdict, absent_classes, holdout_hits, judge
from ghosttui.loop.rounds import (
    TrainedModel,
    TrainingJob,
    check_trainable,
    missing_classes,
    trainable,
    training_labels,
)
from ghosttui.metrics import changed_fraction, cohen_kappa
from ghosttui.sampling.schedule import Plan, ScheduleState, plan_next
from ghosttui.sampling.stopping import RULE, Stability, stability
from ghosttui.session.session import Session
from ghosttui.session.store import Event, Label, ModelRecord

CURSOR_KEY = "cursor"


@dataclass(frozen=True)
class Current:
    """The pattern on screen and where it came from."""

    rx: int
    ry: int
    source: str
    queue_item: int | None
    label: str | None  # its current label, if it has one

    @property
    def manual(self) -> bool:
        return self.queue_item is None


@dataclass(frozen=True)
class Estimate:
    """Honest accuracy of the model in use."""

    holdout: HoldoutScore
    cv_accuracy: float | None = None
    cv_ci95: tuple[float, float] | None = None
    cv_n: int = 0


class LabellingController:
    """The loop over one session. ``resume=False`` only reads (for ``ghosttui status``)."""

    def __init__(self, session: Session, *, resume: bool = True) -> None:
        self.session = session
        self.store = session.store
        self.classes = session.classes
        saved = self.store.get_meta(CURSOR_KEY)
        self.cursor: tuple[int, int] | None = tuple(saved) if saved else None
        self._labels = self.store.labels()
        self.model: ModelRecord | None = self.store.current_model()
        self.probabilities: np.ndarray | None = session.load_predictions(self.model)
        self.message = ""
        self.done = False
        self._wanted: TrainingJob | None = None
        self._running: TrainingJob | None = None
        self._running_labels: dict[tuple[int, int], str] = {}
        self.failure: str | None = None
        if resume:
            self._resume()
        else:
            plan = self.store.round_plan(self.store.round)
            self.message = plan.message if plan else ""

    # -- what is shown --------------------------------------------------------------------
    def current(self) -> Current | None:
        if self.cursor is not None:
            rx, ry = self.cursor
            return Current(rx, ry, "manual", None, self._label_at(rx, ry))
        item = self.store.next_query()
        if item is None:
            return None
        return Current(item.rx, item.ry, item.source, item.id, self._label_at(item.rx, item.ry))

    def _label_at(self, rx: int, ry: int) -> str | None:
        label = self._labels.get((rx, ry))
        return label.cls if label else None

    @property
    def labels(self) -> dict[tuple[int, int], Label]:
        return self._labels

    @property
    def round(self) -> int:
        return self.store.round

    @property
    def waiting(self) -> bool:
        """The next round needs a model that is not trained yet."""
        return not self.done and self.store.next_query() is None and self._round_is_ended()

    # -- keys ---------------------------------------------------------------------------
    def label(self, cls: str) -> Event | None:
        """Label the current pattern (durable before returning); then the next one is current."""
        current = self.current()
        if current is None:
            return None
        event = self.store.label(
            current.rx, current.ry, cls, current.source, queue_item=current.queue_item
        )
        self._labels = self.store.labels()
        if not current.manual:
            self._check_round_end()
        return event

    def skip(self) -> Event | None:
        current = self.current()
        if current is None or current.manual:
            return None  # nothing to skip in manual mode: move the cursor instead
        event = self.store.skip(
            current.rx, current.ry, current.source, queue_item=current.queue_item
        )
        self._check_round_end()
        return event

    def undo(self) -> Event | None:
        """Take back the last event; its pattern becomes current again.

        Undoing the answer that ended a round reopens that round: rounds planned after it
        (none of whose queries can still be answered, as undo goes back one event at a
        time) are forgotten, and its model, if one is training, becomes stale.
        """
        event = self.store.undo()
        if event is None:
            return None
        self._labels = self.store.labels()
        if event.queue_item is not None:
            round = self.store.queue_item(event.queue_item).round
            plan = self.store.round_plan(round)
            if round < self.store.round or (plan is not None and plan.ended):
                self.store.reopen_round(round)
                self.done = False
                if self._wanted is not None and self._wanted.round >= round:
                    self._wanted = None
                self.message = f"round {round} reopened: answer its last query again"
        self._set_cursor((event.rx, event.ry) if event.source == "manual" else None)
        return event

    def move_cursor(self, drx: int, dry: int) -> tuple[int, int]:
        """Move the map cursor (entering manual mode at the current position)."""
        current = self.current()
        start = (current.rx, current.ry) if current else (0, 0)
        return self.goto(start[0] + drx, start[1] + dry)

    def goto(self, rx: int, ry: int) -> tuple[int, int]:
        """Put the map cursor at (rx, ry), clamped to the scan (manual mode)."""
        n_rx, n_ry = self.session.scan_shape
        target = (min(max(int(rx), 0), n_rx - 1), min(max(int(ry), 0), n_ry - 1))
        self._set_cursor(target)
        return target

    def leave_manual(self) -> None:
        self._set_cursor(None)

    def _set_cursor(self, cursor: tuple[int, int] | None) -> None:
        self.cursor = cursor
        self.store.set_meta(CURSOR_KEY, list(cursor) if cursor else None)

    def extend_budget(self) -> int:
        spec = self.session.settings.sampling
        spec.budget += spec.round_length
        self.session.save_settings()
        if self._round_is_ended() and self.store.next_query() is None:
            self.done = False
            self._plan_after(self.store.round)
        return spec.budget

    # -- rounds -------------------------------------------------------------------------
    def _resume(self) -> None:
        """Bring the loop to where the database says it is (also after a crash)."""
        if not self.store.round_plans():
            self._plan_round(1, model_current=False)
            return
        if self._check_round_end():
            return
        round = self.store.round
        plan = self.store.round_plan(round)
        if plan is not None and plan.ended:  # ended before the last app stopped
            self._round_ended(round, plan.ended_event)
        else:
            self.message = plan.message if plan else ""

    def _round_is_ended(self) -> bool:
        plan = self.store.round_plan(self.store.round)
        return plan is not None and plan.ended

    def _check_round_end(self) -> bool:
        """End the open round if its last query was just answered. True if it ended."""
        round = self.store.round
        plan = self.store.round_plan(round)
        if plan is None or plan.ended or self.store.pending_in_round(round) > 0:
            return False
        event = self.store.last_answer_in_round(round) or self.store.last_event_id()
        self.store.end_round(round, event)
        self._round_ended(round, event)
        return True

    def _round_ended(self, round: int, event: int) -> None:
        snapshot = self.store.labels_at(event)
        digest = self.store.training_digest(snapshot)
        if not self._model_for(digest) and trainable(self.session, snapshot):
            self._wanted = TrainingJob(round, event, f"round {round} ended")
        self._plan_after(round)

    def _model_for(self, digest: str) -> ModelRecord | None:
        return next((m for m in self.store.models() if m.labels_digest == digest), None)

    def _plan_after(self, round: int) -> None:
        """Plan round ``round + 1`` if it can be planned now."""
        plan = self.store.round_plan(round)
        ended = plan.ended_event if plan is not None and plan.ended else self.store.last_event_id()
        digest = self.store.training_digest(self.store.labels_at(ended))
        self._plan_round(round + 1, model_current=self._model_for(digest) is not None)

    def _schedule_state(self) -> ScheduleState:
        plans = self.store.round_plans()
        return ScheduleState.from_dict(plans[-1].schedule if plans else None)

    def _plan_round(self, round: int, *, model_current: bool) -> Plan:
        spec = self.session.settings.sampling
        state = self._schedule_state()
        labels = {
            pos: self.classes.index(lab.cls) for pos, lab in training_labels(self._labels).items()
        }
        plan = plan_next(
            spec,
            self.session.scan_shape,
            labels,
            self.store.queued_positions(),
            state,
            probabilities=self.probabilities,
            model_current=model_current,
            missing_classes=missing_classes(self.session, self._labels),
            rng=np.random.default_rng([spec.seed, state.rounds]),
        )
        self.message = plan.message
        self.done = plan.done
        if plan.queries:
            self.store.plan_round(round, plan.queries, plan.message, plan.state.to_dict())
        elif plan.train_first:
            self.message = f"round {round - 1} ended; {plan.message} (training)"
        return plan

    # -- training -----------------------------------------------------------------------
    def next_training(self) -> TrainingJob | None:
        """The job the host should run now (None while one runs or none is due)."""
        return None if self._running is not None else self._wanted

    def request_training(
        self, *, epochs: int | None = None, device: str | None = None, seed: int | None = None
    ) -> TrainingJob:
        """The user asks for a model on the labels as they stand now."""
        check_trainable(self.session, self._labels)
        job = TrainingJob(
            self.store.round, self.store.last_event_id(), "asked", epochs, device, seed
        )
        self._wanted = job
        return job

    def training_started(self, job: TrainingJob) -> None:
        self._running = job
        self._running_labels = _training_classes(self.store.labels_at(job.up_to_event))
        if self._wanted == job:
            self._wanted = None
        self.failure = None

    def running_job_is_stale(self) -> bool:
        """A label the running job trains on was undone or changed: cancel it."""
        return self._running is not None and self._is_stale(self._running_labels)

    def _is_stale(self, trained_on: dict[tuple[int, int], str]) -> bool:
        now = _training_classes(self._labels)
        return any(now.get(pos) != cls for pos, cls in trained_on.items())

    def training_cancelled(self, job: TrainingJob) -> None:
        """The host stopped ``job``; a stale job is retrained on the labels that stand."""
        stale = self._is_stale(self._running_labels)
        self._running = None
        if stale:
            self._want_retrain(job)

    def training_failed(self, job: TrainingJob, error: str) -> None:
        self._running = None
        self.failure = error
        self.message = f"training failed: {error}"

    def _want_retrain(self, job: TrainingJob) -> None:
        plan = self.store.round_plan(job.round)
        if job.reason == "asked" or (plan is not None and plan.ended):
            self._wanted = replace(
                job, up_to_event=self.store.last_event_id(), reason="retrain: labels changed"
            )

    def training_finished(self, trained: TrainedModel) -> Verdict:
        """Record a trained model; it becomes the model in use if :func:`judge` says so."""
        job = trained.job
        stale = self._is_stale(_training_classes(self.store.labels_at(job.up_to_event)))
        self._running = None
        positions, holdout = self.holdout_arrays()
        new_map = trained.probabilities.argmax(-1)
        new_hits = holdout_hits(new_map, positions, holdout)
        current_hits = (
            holdout_hits(self.probabilities.argmax(-1), positions, holdout)
            if self.probabilities is not None
            else None
        )
        verdict = judge(
            stale=stale,
            new_hits=new_hits,
            current_hits=current_hits,
            new_metrics=trained.metrics,
            current_metrics=self.model.metrics if self.model is not None else None,
        )
        metrics = dict(trained.metrics)
        score = HoldoutScore(int(new_hits.sum()), len(new_hits))
        metrics.update(holdout_correct=score.correct, holdout_n=score.total)
        if verdict.take and self.probabilities is not None:
            before = self.probabilities.argmax(-1)
            metrics["changed_fraction"] = changed_fraction(before, new_map)
            metrics["kappa_previous"] = cohen_kappa(before, new_map, len(self.classes))
        record = self.store.add_model(
            round=job.round,
            up_to_event=job.up_to_event,
            labels_digest=trained.labels_digest,
            checkpoint=str(trained.checkpoint.relative_to(self.session.dir)),
            predictions=str(trained.predictions.relative_to(self.session.dir)),
            state="current" if verdict.take else "candidate",
            reason=f"{job.reason}; {verdict.reason}",
            metrics=metrics,
        )
        if verdict.take:
            self.model, self.probabilities = record, trained.probabilities
        if stale:
            self._want_retrain(job)
        if self._round_is_ended() and self.store.next_query() is None and not self.done:
            self._plan_after(self.store.round)
        return verdict

    def promote(self, model_id: int | None = None) -> ModelRecord:
        """Use a candidate model anyway (default: the newest candidate)."""
        candidates = [m for m in self.store.models() if m.state == "candidate"]
        chosen = (
            next((m for m in candidates if m.id == model_id), None)
            if model_id is not None
            else (candidates[-1] if candidates else None)
        )
        if chosen is None:
            raise SessionError("no candidate model to promote")
        probabilities = self.session.load_predictions(chosen)
        if probabilities is None:
            raise SessionError(f"model {chosen.id}: its prediction file is missing")
        self.store.set_model_state(chosen.id, "current", "promoted by hand")
        self.model = self.store.model(chosen.id)
        self.probabilities = probabilities
        return self.model

    # -- honest numbers -----------------------------------------------------------------
    def holdout_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        held = [lab for lab in self._labels.values() if lab.source == "holdout"]
        positions = np.array([(lab.rx, lab.ry) for lab in held], np.int64).reshape(-1, 2)
        labels = np.array([self.classes.index(lab.cls) for lab in held], np.int64)
        return positions, labels

    def estimate(self) -> Estimate:
        positions, labels = self.holdout_arrays()
        if self.probabilities is None:
            return Estimate(HoldoutScore(0, 0))
        hits = holdout_hits(self.probabilities.argmax(-1), positions, labels)
        metrics = self.model.metrics if self.model is not None else {}
        ci = metrics.get("cv_ci95")
        return Estimate(
            HoldoutScore(int(hits.sum()), len(hits)),
            metrics.get("cv_accuracy"),
            tuple(ci) if ci else None,
            int(metrics.get("cv_n", 0)),
        )

    def stability(self) -> Stability:
        changes = [m.metrics for m in self.store.models() if m.state in ("current", "retired")]
        return stability(changes, self.estimate().holdout.ci95)

    stopping_rule = RULE

    def candidates(self) -> list[ModelRecord]:
        return [m for m in self.store.models() if m.state == "candidate"]

    def model_is_stale(self) -> bool:
        """The model in use trained on a label that was undone or changed since."""
        if self.model is None:
            return False
        return self._is_stale(_training_classes(self.store.labels_at(self.model.up_to_event)))

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.classes, 0)
        for lab in self._labels.values():
            counts[lab.cls] = counts.get(lab.cls, 0) + 1
        return counts

    def summary(self) -> dict[str, Any]:
        """The numbers ``ghosttui status --json`` prints (and the app shows)."""
        return loop_summary(self)


def _training_classes(labels: dict[tuple[int, int], Label]) -> dict[tuple[int, int], str]:
    return {pos: lab.cls for pos, lab in training_labels(labels).items()}


def loop_summary(controller: LabellingController) -> dict[str, Any]:
    estimate = controller.estimate()
    verdict = controller.stability()
    model = controller.model
    score = estimate.holdout
    plans = controller.store.round_plans()
    return {
        "labels": len(controller.labels),
        "training_labels": len(training_labels(controller.labels)),
        "holdout_labels": score.total,
        "label_counts": controller.counts(),
        "round": controller.round,
        "rounds": sum(1 for p in plans if p.ended),
        "model_round": model.round if model is not None else None,
        "model_id": model.id if model is not None else None,
        "model_learner": model.metrics.get("learner") if model is not None else None,
        "model_train_average": model.metrics.get("train_average") if model is not None else None,
        "model_mean_share": model.metrics.get("mean_share") if model is not None else None,
        "model_input_blur": model.metrics.get("input_blur") if model is not None else None,
        "model_input_symmetry": model.metrics.get("input_symmetry") if model is not None else None,
        "model_symmetry_reason": model.metrics.get("symmetry_reason")
        if model is not None
        else None,
        "model_learner_reason": model.metrics.get("choice_reason") if model is not None else None,
        "model_absent_classes": absent_classes(model.metrics) if model is not None else [],
        "classes_without_labels": missing_classes(controller.session, controller.labels),
        "model_stale": controller.model_is_stale(),
        "candidates": [
            {"id": m.id, "round": m.round, "reason": m.reason} for m in controller.candidates()
        ],
        "accuracy_estimate": {
            "value": score.accuracy,
            "ci95": list(score.ci95) if score.ci95 else None,
            "n": score.total,
            "source": "holdout",
        },
        "cv_accuracy": {
            "value": estimate.cv_accuracy,
            "ci95": list(estimate.cv_ci95) if estimate.cv_ci95 else None,
            "n": estimate.cv_n,
        },
        "stable": verdict.stable,
        "stability": verdict.verdict,
        "stability_reason": verdict.reason,
        "stopping_rule": RULE,
        "budget": controller.session.settings.sampling.budget,
        "pending": len(controller.store.pending()),
        "message": controller.message,
        "done": controller.done,
    }
