"""The schedule applied to a session: refill its queue, remember the schedule's state."""

from __future__ import annotations

import numpy as np

from ghosttui.loop.rounds import missing_classes
from ghosttui.sampling.schedule import Plan, ScheduleState, plan_next
from ghosttui.session.session import Session

STATE_KEY = "schedule"
MESSAGE_KEY = "schedule_message"


class SessionSampler:
    """Asks :func:`plan_next` for the next round and queues it in the session's database."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def state(self) -> ScheduleState:
        return ScheduleState.from_dict(self.session.store.get_meta(STATE_KEY))

    @property
    def message(self) -> str:
        return str(self.session.store.get_meta(MESSAGE_KEY, ""))

    def training_labels(self) -> dict[tuple[int, int], int]:
        classes = self.session.classes
        return {
            pos: classes.index(lab.cls)
            for pos, lab in self.session.store.labels().items()
            if lab.source != "holdout"
        }

    def model_is_current(self) -> bool:
        rounds = self.session.trained_rounds()
        if not rounds:
            return False
        return rounds[-1]["metrics"].get("labels_digest") == self.session.store.training_digest()

    def refill(self, probabilities: np.ndarray | None = None, *, provisional: bool = False) -> Plan:
        """Queue the next round unless queries are still pending; returns the plan.

        ``provisional`` uses ``probabilities`` even though they come from a model
        older than the labels (the app does this while a new model trains).
        """
        store = self.session.store
        if store.pending():
            return Plan(state=self.state, message=self.message)
        if probabilities is None:
            loaded = self.session.load_predictions()
            probabilities = loaded[0] if loaded else None
        labels = self.training_labels()
        plan = plan_next(
            self.session.settings.sampling,
            self.session.scan_shape,
            labels,
            store.queued_positions(),
            self.state,
            probabilities=probabilities,
            model_current=provisional or self.model_is_current(),
            missing_classes=missing_classes(self.session),
            rng=np.random.default_rng([self.session.settings.sampling.seed, self.state.rounds]),
        )
        store.enqueue(
            plan.queries, meta={STATE_KEY: plan.state.to_dict(), MESSAGE_KEY: plan.message}
        )
        return plan
