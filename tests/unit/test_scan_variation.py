"""The scan's own variation: found without labels, removed where the labels allow."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ghosttui.errors import GhostError
from ghosttui.patterns.variation import MIN_LABELS, removable, scan_variation
from ghosttui.render.pane import PaneState, PatternPane
from tests.unit.test_views import ArraySource, disk


def test_the_largest_variation_comes_first_and_is_removed_exactly():
    rng = np.random.default_rng(0)
    u = np.zeros(50)
    u[:10] = 1 / np.sqrt(10)
    v = np.zeros(50)
    v[20:25] = 1 / np.sqrt(5)
    values = 3.0 * rng.normal(size=(400, 1)) * u + 0.5 * rng.normal(size=(400, 1)) * v
    values += 0.01 * rng.normal(size=(400, 50)) + 7.0
    variation = scan_variation(values, n=4)
    assert abs(variation.components[0] @ u) > 0.999
    assert abs(variation.components[1] @ v) > 0.99
    assert list(variation.spread) == sorted(variation.spread, reverse=True)
    np.testing.assert_allclose(variation.spread[0], 3.0, rtol=0.15)
    cleaned = variation.remove(values, (0,))
    assert np.abs(variation.scores(cleaned)[:, 0]).max() < 1e-4  # nothing left along it
    np.testing.assert_allclose(
        variation.scores(cleaned)[:, 1], variation.scores(values)[:, 1], atol=1e-5
    )
    assert variation.remove(values, ()) is values


def test_a_component_is_removed_only_when_no_labelled_classes_differ_along_it():
    rng = np.random.default_rng(1)
    classes = np.repeat([0, 1, 2], [8, 8, 3])
    same = rng.normal(size=(8, 3))  # each class the same spread of scores, shuffled
    scores = np.concatenate([same, same[::-1], rng.normal(size=(3, 3))])
    scores[classes == 1, 0] += 4.0  # component 0 tells class 0 from class 1
    assert removable(scores, classes) == (1, 2)
    # class 2 has too few labels to count: a difference there is not looked at
    scores[classes == 2, 1] += 9.0
    assert removable(scores, classes) == (1, 2)
    # fewer than two classes with enough labels: nothing is removed
    assert removable(scores[:10], classes[:10]) == ()
    assert removable(scores[8:16], classes[8:16]) == ()
    assert MIN_LABELS == 5


@pytest.fixture
def tilted_scan():
    """A 12x10 scan of 32x32 patterns: a beam; a faint disk right (class 0, rows 0-5) or
    below (class 1, rows 6-11); and, everywhere, a pair of disks (right and left) whose
    brightness varies from position to position ten times more than the class disks
    differ, as thickness and tilt do."""
    rng = np.random.default_rng(2)
    shape = (32, 32)
    right, below, left = disk(shape, (16, 24), 2), disk(shape, (24, 16), 2), disk(shape, (16, 8), 2)
    data = np.empty((12, 10, *shape), np.float32)
    truth = np.zeros((12, 10), int)
    truth[6:] = 1
    for rx in range(12):
        for ry in range(10):
            nuisance = rng.normal(0, 0.2)
            data[rx, ry] = disk(shape, (16, 16), 2.5) + 0.3 + nuisance * (right + left)
            data[rx, ry] += 0.02 * (right if truth[rx, ry] == 0 else below)
            data[rx, ry] += rng.normal(0, 0.002, shape)
    return data, truth


def separation(pane: PatternPane, truth: np.ndarray) -> float:
    """d' of the two classes at the class disk's centre pixel, right of the beam."""
    values = {c: [] for c in (0, 1)}
    for rx in range(truth.shape[0]):
        for ry in range(truth.shape[1]):
            drawn, _, _ = pane.query_values(rx, ry)
            values[truth[rx, ry]].append(pane.without_variation(pane.finish(drawn))[16, 24])
    a, b = np.array(values[0]), np.array(values[1])
    return abs(a.mean() - b.mean()) / np.sqrt((a.var() + b.var()) / 2)


def test_the_pane_removes_what_the_labels_do_not_tie_to_a_class(tilted_scan):
    data, truth = tilted_scan
    state = PaneState(view="transpose", average=1, smooth=False, references="off")
    pane = PatternPane(ArraySource(data, (15.5, 15.5)), ["right", "below"], ["#00f", "#0f0"], state)
    before = separation(pane, truth)
    assert pane.removed_components() is None  # no labels: nothing to decide with
    assert "scan variation" not in pane.draw(1, 1, 64, 64).caption[0]

    labels = {(rx, ry): int(truth[rx, ry]) for rx in (1, 4, 7, 10) for ry in (1, 4, 7)}
    pane.set_labels(labels)  # six of each class
    assert pane.pending() == ["scan variation"]  # the descan fit was made above
    early = pane.draw(1, 1, 64, 64, wait=False)  # the stand-in: one centre, variation kept
    assert "preparing scan variation…" in early.caption[0]
    pane.prepare(pane.state)
    assert pane.pending() == []
    variation, which = pane.removed_components()
    assert 0 in which  # the brightness of the disk pair: the largest, and no class's
    assert abs(variation.components[0] @ variation.components[0]) == pytest.approx(1, abs=1e-5)
    after = separation(pane, truth)
    assert after > 5 * before, (before, after)
    drawing = pane.draw(1, 1, 64, 64, wait=False)
    title = f"pattern − its transpose − scan variation {len(which)}/{len(variation.components)}"
    assert drawing.caption[0].startswith(title + " · 1 position")

    kept = replace(pane.state, variation="kept")
    pane.state = kept
    assert pane.removed_components() is None
    assert separation(pane, truth) == pytest.approx(before)
    assert "scan variation" not in pane.draw(1, 1, 64, 64).caption[0]


def test_references_lose_the_same_variation_as_the_query(tilted_scan):
    data, truth = tilted_scan
    state = PaneState(view="transpose", average=1, smooth=False, references="labels")
    pane = PatternPane(ArraySource(data, (15.5, 15.5)), ["right", "below"], ["#00f", "#0f0"], state)
    labels = {(rx, ry): int(truth[rx, ry]) for rx in (1, 4, 7, 10) for ry in (1, 4, 7)}
    pane.set_labels(labels)
    removed = [values for _, values, _ in pane.reference_values()]
    pane.state = replace(state, variation="kept")
    kept = [values for _, values, _ in pane.reference_values()]
    variation, which = pane.removed_components() or (None, None)
    assert variation is None  # kept: nothing removed
    pane.state = state
    variation, which = pane.removed_components()
    for with_it, without in zip(kept, removed, strict=True):
        np.testing.assert_allclose(without, variation.remove(with_it, which), atol=1e-5)


def test_the_raw_view_the_sign_views_and_the_native_zoom_keep_everything(tilted_scan):
    data, truth = tilted_scan
    pane = PatternPane(ArraySource(data, (15.5, 15.5)), ["right", "below"], ["#00f", "#0f0"])
    pane.set_labels({(rx, ry): int(truth[rx, ry]) for rx in (1, 4, 7, 10) for ry in (1, 4, 7)})
    for state in (PaneState(view="raw"), PaneState(view="transpose", zoom="native")):
        assert not pane.wants_variation(state)
    # the views that flip with the sign of a polarization keep it too
    for view in ("inversion", "mirror-lr", "mirror-ud"):
        assert not pane.wants_variation(PaneState(view=view))
    for view in ("mean", "local", "transpose"):
        assert pane.wants_variation(PaneState(view=view))


def test_the_setting_is_checked_cycled_and_remembered():
    assert PaneState().variation == "removed"
    assert PaneState().cycled("variation").variation == "kept"
    assert PaneState.from_dict({"variation": "kept"}).variation == "kept"
    assert PaneState.from_dict({"variation": "sideways"}).variation == "removed"
    with pytest.raises(GhostError, match="unknown variation"):
        PaneState(variation="sideways")


def test_a_class_holding_both_signs_keeps_the_component_it_spreads_along():
    rng = np.random.default_rng(3)
    classes = np.repeat([0, 1], 12)
    same = rng.normal(0, 0.1, size=(12, 2))
    scores = np.concatenate([same, same[::-1]])  # the same scores in both classes
    # class 0 is +P or -P along component 0 (its mean stays at zero), class 1 has none
    scores[:12, 0] += np.where(np.arange(12) % 2 == 0, 3.0, -3.0)
    assert removable(scores, classes) == (1,)
