"""The scan's own variation in a view, and the part of it the labels say is not the classes.

On real physics the largest differences between the patterns of one scan are often not
the classes: specimen thickness and tilt change every disk of a multislice pattern by
more than a weak polarization does (BaTiO3: a polar signal of about 1% of the
pattern). In a difference view they are the same few patterns of change everywhere,
so they are found without labels, as the principal components of the view's values
over a sample of the scan (:func:`scan_variation`). Removing them all would remove
the classes too wherever the classes are the largest variation (PbTiO3), so the labels
decide (:func:`removable`): a component is removed only when the labelled positions
give no sign that it tells any two classes apart, neither where they lie along it nor
how widely they spread (every pair of classes with at least :data:`MIN_LABELS` labels,
Mann-Whitney p >= :data:`KEEP_P` for both; a component is kept at the first hint that
it separates, since keeping costs only noise). With fewer than two
such classes nothing is removed.

Measured in ``benchmarks/views_visibility.py`` and ``benchmarks/views_bound.py``
(docs/views.md). Pure numpy and scipy; the pattern pane (:mod:`ghosttui.render.pane`)
applies it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMPONENTS = 8  # principal components looked at
SAMPLE = 2048  # positions of the scan they are computed from (evenly spread)
MIN_LABELS = 5  # a class takes part in the test with at least this many labels
KEEP_P = 0.3  # a component that separates two classes at this p or below is kept


@dataclass(frozen=True)
class ScanVariation:
    """The largest components of a view's values over the scan."""

    centre: np.ndarray  # (P,) float32, the mean of the sampled values
    components: np.ndarray  # (n, P) float32, orthonormal rows, largest first
    spread: np.ndarray  # (n,) float32, the standard deviation of each component's scores

    def scores(self, values: np.ndarray) -> np.ndarray:
        """(m, n) each of ``values`` (m, P) along every component."""
        flat = np.asarray(values, np.float32).reshape(len(values), -1)
        return (flat - self.centre) @ self.components.T

    def remove(self, values: np.ndarray, which: tuple[int, ...]) -> np.ndarray:
        """``values`` (any shape whose size is P, or (m, P)) without the components ``which``."""
        if not which:
            return values
        basis = self.components[list(which)]
        flat = np.asarray(values, np.float32).reshape(-1, basis.shape[1])
        out = flat - ((flat - self.centre) @ basis.T) @ basis
        return out.reshape(np.shape(values)).astype(np.float32)


def scan_variation(values: np.ndarray, n: int = COMPONENTS) -> ScanVariation:
    """The ``n`` principal components of ``values`` (N, ...), one sampled position each."""
    flat = np.asarray(values, np.float64).reshape(len(values), -1)
    centre = flat.mean(0)
    centred = flat - centre
    if n < min(centred.shape) - 1:  # the few largest only (ARPACK, a fixed start: repeatable)
        from scipy.sparse.linalg import svds

        _, singular, vt = svds(centred, k=n, v0=np.ones(min(centred.shape)))
        order = np.argsort(singular)[::-1]
        singular, vt = singular[order], vt[order]
    else:
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    n = min(n, len(vt))
    spread = singular[:n] / np.sqrt(max(1, len(flat) - 1))
    return ScanVariation(
        centre.astype(np.float32), vt[:n].astype(np.float32), spread.astype(np.float32)
    )


def removable(
    scores: np.ndarray,
    classes: np.ndarray,
    min_labels: int = MIN_LABELS,
    keep_p: float = KEEP_P,
) -> tuple[int, ...]:
    """The components (columns of ``scores``, (m, n) at m labelled positions whose class
    indices are ``classes``) that no pair of well-labelled classes tells apart."""
    from scipy.stats import mannwhitneyu

    scores = np.asarray(scores, np.float64)
    classes = np.asarray(classes, np.int64)
    counted = [c for c in np.unique(classes) if (classes == c).sum() >= min_labels]
    if len(counted) < 2 or scores.ndim != 2:
        return ()
    separates = np.zeros(scores.shape[1], bool)
    for i, a in enumerate(counted):
        for b in counted[i + 1 :]:
            sa, sb = scores[classes == a], scores[classes == b]
            # where the classes lie along the component, and how widely they spread about
            # their common median (a class holding both signs of a polar signal has its
            # mean at zero in a view that flips with the sign, but not its spread)
            middle = np.median(np.concatenate([sa, sb]), axis=0)
            x = np.hstack([sa, np.abs(sa - middle)])  # both tests in one call
            y = np.hstack([sb, np.abs(sb - middle)])
            p = np.asarray(mannwhitneyu(x, y, axis=0).pvalue).reshape(2, -1)
            separates |= (p < keep_p).any(0)
    return tuple(int(i) for i in np.flatnonzero(~separates))
