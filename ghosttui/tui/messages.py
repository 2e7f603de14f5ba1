"""Messages the labelling app's background workers post to it."""

from __future__ import annotations

from textual.message import Message

from ghosttui.loop.rounds import TrainedModel, TrainingJob


class TrainingProgress(Message):
    def __init__(self, stage: str, done: int, total: int, text: str) -> None:
        super().__init__()
        self.stage, self.done, self.total, self.text = stage, done, total, text


class TrainingFinished(Message):
    def __init__(self, trained: TrainedModel) -> None:
        super().__init__()
        self.trained = trained


class TrainingStopped(Message):
    """The job was cancelled (stale, or the app quits) or failed (``error``)."""

    def __init__(self, job: TrainingJob, error: str | None = None) -> None:
        super().__init__()
        self.job, self.error = job, error


class PanePrepared(Message):
    """The pattern pane's slow inputs (descan fit, scan mean) are ready; ``error`` if not."""

    def __init__(self, error: str | None = None) -> None:
        super().__init__()
        self.error = error
