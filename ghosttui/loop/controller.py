"""What the labeller sees next and what each key does, independent of any UI.

The terminal app is a thin layer over :class:`LabellingController`; tests
drive the controller directly. It keeps two modes:

* **query mode**: the current pattern is the head of the session's queue (a
  grid, boundary, uncertainty, random or holdout query); a class key labels it
  and the next query appears;
* **manual mode**: the user moved the cursor on the map; the current pattern is
  the one under the cursor, a class key labels it with source ``manual`` and
  the cursor stays, so one can sweep an area. Leaving manual mode returns to
  the queue.

The cursor and mode are saved in the session database on every change, so a
restarted app resumes exactly where the last one stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ghosttui.sampling.sampler import SessionSampler
from ghosttui.sampling.schedule import Plan
from ghosttui.sampling.stopping import Stability, stability
from ghosttui.session.session import Session
from ghosttui.session.store import Event

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


class LabellingController:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.store = session.store
        self.sampler = SessionSampler(session)
        self.classes = session.classes
        saved = self.store.get_meta(CURSOR_KEY)
        self.cursor: tuple[int, int] | None = tuple(saved) if saved else None
        self.probabilities: np.ndarray | None = None
        self.prediction_round: int | None = None
        loaded = session.load_predictions()
        if loaded is not None:
            self.probabilities, self.prediction_round = loaded
        self.plan: Plan | None = None
        self._labels = self.store.labels()

    # -- what is shown --------------------------------------------------------------
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
    def labels(self) -> dict[tuple[int, int], Any]:
        return self._labels

    # -- keys -------------------------------------------------------------------------
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
            self.ensure_queue()
        return event

    def skip(self) -> Event | None:
        current = self.current()
        if current is None:
            return None
        if current.manual:
            return None  # nothing to skip: move the cursor instead
        event = self.store.skip(
            current.rx, current.ry, current.source, queue_item=current.queue_item
        )
        self.ensure_queue()
        return event

    def undo(self) -> Event | None:
        """Take back the last event; its pattern becomes current again."""
        event = self.store.undo()
        if event is None:
            return None
        self._labels = self.store.labels()
        if event.source == "manual":
            self._set_cursor((event.rx, event.ry))
        else:
            self._set_cursor(None)
        return event

    def move_cursor(self, drx: int, dry: int) -> tuple[int, int]:
        """Move the map cursor (entering manual mode at the current position)."""
        current = self.current()
        start = (current.rx, current.ry) if current else (0, 0)
        n_rx, n_ry = self.session.scan_shape
        target = (min(max(start[0] + drx, 0), n_rx - 1), min(max(start[1] + dry, 0), n_ry - 1))
        self._set_cursor(target)
        return target

    def leave_manual(self) -> None:
        self._set_cursor(None)
        self.ensure_queue()

    def _set_cursor(self, cursor: tuple[int, int] | None) -> None:
        self.cursor = cursor
        self.store.set_meta(CURSOR_KEY, list(cursor) if cursor else None)

    # -- rounds -----------------------------------------------------------------------
    def ensure_queue(self) -> Plan | None:
        """Queue the next round when the queue ran dry. Returns the new plan, if any."""
        if self.store.next_query() is not None:
            return None
        plan = self.sampler.refill(self.probabilities)
        if plan.train_first and self.probabilities is not None:
            # keep the labeller busy: uncertainty from the previous model until the new one lands
            plan = self.sampler.refill(self.probabilities, provisional=True)
        self.plan = plan
        return plan

    def model_is_current(self) -> bool:
        return self.sampler.model_is_current()

    def can_train(self) -> list[str]:
        """Classes still without a label ([] when a model can be trained)."""
        from ghosttui.loop.rounds import missing_classes

        return missing_classes(self.session)

    def should_train(self) -> bool:
        """Worth training now: the labels changed since the last model and every class has one."""
        if self.model_is_current() or self.can_train():
            return False
        return sum(1 for lab in self._labels.values() if lab.source != "holdout") >= 6

    def on_trained(self, probabilities: np.ndarray, round: int) -> None:
        """A new model landed: refresh the map, replace provisional uncertainty queries."""
        self.probabilities = probabilities
        self.prediction_round = round
        if self.cursor is None or self.store.pending():
            dropped = self.store.drop_pending(["uncertainty"])
            if dropped or self.store.next_query() is None:
                self.plan = self.sampler.refill(self.probabilities)

    def extend_budget(self) -> int:
        spec = self.session.settings.sampling
        spec.budget += spec.round_length
        self.session.save_settings()
        self.ensure_queue()
        return spec.budget

    # -- status -----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.classes, 0)
        for lab in self._labels.values():
            counts[lab.cls] = counts.get(lab.cls, 0) + 1
        return counts

    def stability(self) -> Stability:
        return stability(self.session.trained_rounds())

    def latest_metrics(self) -> dict[str, Any]:
        rounds = self.session.trained_rounds()
        return rounds[-1]["metrics"] if rounds else {}
