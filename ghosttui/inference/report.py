"""What a series run tells its user, whatever the engine: the CLI draws it, tests record it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ghosttui.inference.series import ScanRef


@dataclass(eq=False)
class ScanOutcome:
    """One finished scan: its probabilities (predict) or its cache (preprocess)."""

    ref: ScanRef
    probabilities: np.ndarray | None
    seconds: float
    cache: str | None = None
    reused: bool = False

    def class_shares(self) -> np.ndarray:
        """Fraction of positions given to each class."""
        assert self.probabilities is not None
        n_classes = self.probabilities.shape[-1]
        counts = np.bincount(self.probabilities.argmax(-1).ravel(), minlength=n_classes)
        return counts / counts.sum()


class Reporter:
    """Receives a run's progress. This base class ignores everything."""

    def start(self, total_patterns: int, n_scans: int, skipped: list[ScanRef]) -> None:
        """The run begins: ``total_patterns`` over the whole series; ``skipped`` are done."""

    def advance(self, patterns: int) -> None:
        """``patterns`` more patterns are done."""

    def found_done(self, patterns: int) -> None:
        """``patterns`` more patterns needed no work (a cache that already existed)."""
        self.advance(patterns)

    def scan_done(self, outcome: ScanOutcome) -> None:
        """A scan is finished and written."""

    def note(self, text: str) -> None:
        """Something worth a line: the cluster used, its dashboard."""
