"""Messages the labelling app's background workers post to it."""

from __future__ import annotations

from typing import Any

import numpy as np
from textual.message import Message


class TrainingProgress(Message):
    def __init__(self, stage: str, done: int, total: int, text: str) -> None:
        super().__init__()
        self.stage, self.done, self.total, self.text = stage, done, total, text


class TrainingFinished(Message):
    def __init__(self, round: int, probabilities: np.ndarray, metrics: dict[str, Any]) -> None:
        super().__init__()
        self.round, self.probabilities, self.metrics = round, probabilities, metrics


class TrainingFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class PanePrepared(Message):
    """The pattern pane's slow inputs (descan fit, scan mean) are ready; ``error`` if not."""

    def __init__(self, error: str | None = None) -> None:
        super().__init__()
        self.error = error
