"""Class references: the mean centred pattern of each class, kept up to date cheaply.

The labelled references follow the label set: :meth:`ClassMeans.sync` reads
only the patterns whose class changed since the last call (one per keystroke).
The model references average confidently predicted positions of each class.
"""

from __future__ import annotations

import numpy as np

from ghosttui.patterns.sources import PatternSource

CONFIDENT = 0.9  # a prediction this sure counts towards its class's model reference
MODEL_MEMBERS = 64  # positions averaged per class for a model reference


class ClassMeans:
    """Running per-class sums of centred patterns from one source."""

    def __init__(self, source: PatternSource, n_classes: int, centring: str) -> None:
        self.source = source
        self.centring = centring
        self.members: dict[tuple[int, int], int] = {}
        self._sums = np.zeros((n_classes, *source.shape), np.float64)
        self._counts = np.zeros(n_classes, np.int64)

    def sync(self, members: dict[tuple[int, int], int]) -> None:
        """Make the sums those of ``members`` (position -> class index)."""
        removed = [(p, c) for p, c in self.members.items() if members.get(p) != c]
        added = [(p, c) for p, c in members.items() if self.members.get(p) != c]
        if len(removed) > len(members) // 2:  # mostly new: start again
            self._sums[:] = 0
            self._counts[:] = 0
            removed, added = [], list(members.items())
        for sign, changes in ((-1.0, removed), (1.0, added)):
            if not changes:
                continue
            positions = np.array([p for p, _ in changes], np.int64)
            classes = np.array([c for _, c in changes], np.int64)
            patterns = self.source.centred_gather(positions, self.centring)
            np.add.at(self._sums, classes, sign * patterns.astype(np.float64))
            np.add.at(self._counts, classes, int(sign))
        self.members = dict(members)

    def means(self) -> list[tuple[np.ndarray | None, int]]:
        """(mean pattern or None, count) per class."""
        return [
            ((self._sums[i] / n).astype(np.float32) if n > 0 else None, int(n))
            for i, n in enumerate(self._counts)
        ]


def confident_members(
    probabilities: np.ndarray, per_class: int = MODEL_MEMBERS, threshold: float = CONFIDENT
) -> dict[tuple[int, int], int]:
    """Up to ``per_class`` positions per class predicted with at least ``threshold``,
    spread evenly over the scan order (deterministic)."""
    confidence = probabilities.max(-1)
    predicted = probabilities.argmax(-1)
    members: dict[tuple[int, int], int] = {}
    n_ry = probabilities.shape[1]
    for cls in range(probabilities.shape[-1]):
        flat = np.flatnonzero(((predicted == cls) & (confidence >= threshold)).ravel())
        if len(flat) > per_class:
            flat = flat[np.linspace(0, len(flat) - 1, per_class).round().astype(int)]
        for index in flat.tolist():
            members[divmod(index, n_ry)] = cls
    return members
