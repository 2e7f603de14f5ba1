"""Agreement measures and the stopping signal."""

from __future__ import annotations

import numpy as np
import pytest

from ghosttui.metrics import accuracy, changed_fraction, cohen_kappa, wilson_interval
from ghosttui.sampling.stopping import MAX_CHANGED, MIN_KAPPA, RULE, stability


# -- Wilson interval ----------------------------------------------------------------------------
def test_wilson_interval_known_values():
    assert wilson_interval(0, 0) == (0.0, 1.0)  # nothing known
    low, high = wilson_interval(10, 10)
    assert high == 1.0
    assert low == pytest.approx(0.7225, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(81, 100)
    assert (low, high) == (pytest.approx(0.7222, abs=1e-4), pytest.approx(0.8749, abs=1e-4))


@pytest.mark.parametrize(("k", "n"), [(1, 3), (7, 9), (50, 100), (999, 1000), (3, 40)])
def test_wilson_interval_contains_the_estimate_and_narrows_with_n(k, n):
    low, high = wilson_interval(k, n)
    assert 0.0 <= low < k / n < high <= 1.0
    low10, high10 = wilson_interval(10 * k, 10 * n)
    assert high10 - low10 < high - low


# -- kappa and change ------------------------------------------------------------------------
def test_kappa_of_identical_maps_is_one():
    a = np.random.default_rng(0).integers(0, 3, (30, 20))
    assert cohen_kappa(a, a.copy(), 3) == pytest.approx(1.0)
    constant = np.zeros((4, 4), int)
    assert cohen_kappa(constant, constant, 3) == 1.0


def test_kappa_of_independent_maps_is_near_zero():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, 200_000)
    b = rng.integers(0, 3, 200_000)
    assert abs(cohen_kappa(a, b, 3)) < 0.01


def test_kappa_known_value():
    # 2x2 table: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> po 0.7, pe 0.5, kappa 0.4
    a = np.array([1] * 20 + [1] * 5 + [0] * 10 + [0] * 15)
    b = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15)
    assert cohen_kappa(a, b, 2) == pytest.approx(0.4)
    # complete disagreement on a balanced map is worse than chance
    assert cohen_kappa(np.array([0, 1] * 10), np.array([1, 0] * 10), 2) == pytest.approx(-1.0)


def test_changed_fraction_and_accuracy():
    a = np.zeros((10, 10), int)
    b = a.copy()
    assert changed_fraction(a, b) == 0.0
    b[0, :3] = 2
    assert changed_fraction(a, b) == pytest.approx(0.03)
    assert accuracy(b, a) == pytest.approx(0.97)
    mask = np.zeros_like(a, bool)
    mask[0, :4] = True
    assert accuracy(b, a, mask) == pytest.approx(0.25)
    assert np.isnan(accuracy(np.array([]), np.array([])))


# -- the stopping rule ---------------------------------------------------------------------------
NARROW = (0.80, 1.0)  # a holdout interval 20 points wide


def change(changed=None, kappa=None):
    return {} if changed is None else {"changed_fraction": changed, "kappa_previous": kappa}


def test_stability_needs_two_models():
    assert stability([], NARROW).verdict == "not yet"
    first = stability([change()], NARROW)
    assert first.verdict == "not yet" and not first.stable


@pytest.mark.parametrize(
    ("history", "verdict"),
    [
        ([(0.30, 0.50)], "changing"),
        ([(0.005, 0.99)], "settling"),  # one settled change is not enough
        ([(0.005, 0.99), (0.004, 0.995)], "stable"),
        ([(0.2, 0.6), (0.005, 0.99), (0.004, 0.995)], "stable"),
        ([(0.005, 0.99), (0.004, 0.995), (0.05, 0.9)], "changing"),  # moved again
        ([(0.005, 0.99), (0.02, 0.99)], "changing"),  # too much changed
        ([(0.005, 0.99), (0.005, 0.95)], "changing"),  # kappa too low
        ([(0.05, 0.9), (0.005, 0.99)], "settling"),
        ([(MAX_CHANGED, MIN_KAPPA), (MAX_CHANGED, MIN_KAPPA)], "stable"),  # limits included
    ],
)
def test_stability_verdicts(history, verdict):
    changes = [change()] + [change(c, k) for c, k in history]
    result = stability(changes, NARROW)
    assert result.verdict == verdict, result
    assert result.stable == (verdict == "stable")
    changed, kappa = history[-1]
    assert (result.changed, result.kappa) == (changed, kappa)
    assert f"{changed:.2%}" in result.reason


def test_a_settled_map_is_not_stable_while_the_holdout_interval_is_wide():
    changes = [change(), change(0.001, 0.999), change(0.001, 0.999)]
    assert stability(changes, (0.55, 0.98)).verdict == "settling"  # 43 points wide
    assert stability(changes, None).verdict == "settling"  # no holdout at all
    assert "no holdout" in stability(changes, None).reason
    assert stability(changes, (0.72, 1.0)).verdict == "stable"  # 10 of 10 right: 28 points
    assert stability(changes, (0.72, 1.0), max_ci_width=0.2).verdict == "settling"


def test_stability_patience_and_limits_are_parameters():
    changes = [change(), change(0.03, 0.9), change(0.02, 0.92)]
    assert stability(changes, NARROW).verdict == "changing"
    assert stability(changes, NARROW, max_changed=0.05, min_kappa=0.85).verdict == "stable"
    loose = stability(changes, NARROW, max_changed=0.05, min_kappa=0.85, patience=3)
    assert loose.verdict == "settling"


def test_the_rule_is_stated_with_its_numbers():
    assert f"{MAX_CHANGED:.1%}" in RULE and str(MIN_KAPPA) in RULE and "30%" in RULE
