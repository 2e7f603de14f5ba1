"""Learner choice: cross-validation folds, the paired choice rule, and auto end to end."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from ghosttui.model.learners import (
    AveragedInputs,
    PixelStandardiser,
    blur_patterns,
    choose_learner,
    cnn_best_p,
    cnn_can_win,
    cv_predictions,
    fit_learner,
    stratified_folds,
)
from ghosttui.model.network import GhostNet, LinearOnPixels
from ghosttui.session.settings import ModelSpec


def test_folds_deal_every_class_round_the_folds():
    labels = np.array([0] * 7 + [1] * 5 + [2] * 2)
    fold_of = stratified_folds(labels, 3, seed=0)
    for cls in range(3):
        counts = np.bincount(fold_of[labels == cls], minlength=3)
        assert counts.max() - counts.min() <= 1


def test_cross_validation_never_predicts_a_label_it_trained_on():
    labels = np.array([0, 1] * 6)
    seen: list[tuple[set, set]] = []

    def fit_predict(train, test):
        seen.append((set(train), set(test)))
        return labels[test]  # a perfect model, so every prediction lands where it belongs

    predicted = cv_predictions(fit_predict, labels, stratified_folds(labels, 3, seed=1))
    assert all(not (train & test) for train, test in seen)
    assert set().union(*(test for _, test in seen)) == set(range(len(labels)))
    assert np.array_equal(predicted, labels)


def test_a_fold_without_two_classes_to_train_on_predicts_nothing():
    labels = np.array([0, 1, 0, 0])
    fold_of = np.array([0, 0, 1, 1])  # fold 0 trains on class 0 only
    predicted = cv_predictions(lambda train, test: labels[test], labels, fold_of)
    assert predicted.tolist() == [-1, -1, 0, 0]


def test_cross_validation_stops_when_asked_and_leaves_the_other_folds_unpredicted():
    labels = np.array([0, 1] * 9)
    fold_of = stratified_folds(labels, 3, seed=0)
    fitted: list[int] = []
    asked: list[int] = []

    def fit_predict(train, test):
        fitted.append(len(test))
        return labels[test]

    def stop(predicted, done):
        asked.append(int(done.sum()))
        assert np.all(predicted[done] == labels[done]) and np.all(predicted[~done] == -1)
        return True

    predicted = cv_predictions(fit_predict, labels, fold_of, stop=stop)
    assert fitted == [6] and asked == [6]
    assert np.sum(predicted >= 0) == 6
    never = cv_predictions(fit_predict, labels, fold_of, stop=lambda p, d: False)
    assert np.array_equal(never, labels) and asked == [6]  # not asked after the last fold


def test_a_cnn_given_up_after_some_folds_could_not_have_been_taken_after_all():
    # exhaustive over every outcome of the labels still to come: the best case is the
    # smallest p any completion reaches, so when it is out of reach no completion takes the CNN
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(9, 16))
        labels = rng.integers(0, 2, n)
        logreg = np.where(rng.random(n) < 0.7, labels, 1 - labels)
        cnn = np.where(rng.random(n) < rng.random(), labels, 1 - labels)
        done = rng.random(n) < 0.4
        best = cnn_best_p(labels, cnn, done, logreg)
        choices = []
        for right in itertools.product([True, False], repeat=int((~done).sum())):
            completed = cnn.copy()
            completed[~done] = np.where(right, labels[~done], 1 - labels[~done])
            choices.append(choose_learner(labels, completed, logreg))
        assert min(c.p_value for c in choices) == pytest.approx(best)
        if best >= 0.05:
            assert all(c.learner == "logreg" for c in choices)


def test_the_cnn_is_taken_only_when_it_beats_logreg_significantly():
    labels = np.array([0, 1, 2] * 10)
    cnn = labels.copy()
    logreg = labels.copy()
    logreg[:4] = (labels[:4] + 1) % 3  # four labels apart: p = 1/16, not significant
    close = choose_learner(labels, cnn, logreg)
    assert close.learner == "logreg" and close.p_value == pytest.approx(1 / 16)
    logreg[:12] = (labels[:12] + 1) % 3  # twelve apart, none the other way
    clear = choose_learner(labels, cnn, logreg)
    assert clear.learner == "cnn" and clear.p_value < 0.001
    assert "cnn 30/30, logreg 18/30" in clear.reason
    assert choose_learner(labels, logreg, cnn).learner == "logreg"  # logreg right instead


class ArrayCache:
    """The part of PatternCache a learner reads: the scan's model inputs."""

    def __init__(
        self,
        patterns: np.ndarray,
        scan_shape: tuple[int, int],
        beam_centre: tuple[float, float] | None = None,
    ) -> None:
        self.patterns, self.scan_shape = patterns, scan_shape
        self.n_patterns = len(patterns)
        self.size = patterns.shape[-1]  # model inputs as large as the detector
        self.detector_shape = patterns.shape[-2:]
        middle = (self.size - 1) / 2
        self.beam_centre = beam_centre or (middle, middle)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.patterns[start:stop]

    def gather(self, positions: np.ndarray) -> np.ndarray:
        return self.patterns[positions[:, 0] * self.scan_shape[1] + positions[:, 1]]

    def window(self, rows: slice, cols: slice) -> np.ndarray:
        grid = self.patterns.reshape(*self.scan_shape, *self.patterns.shape[1:])
        return grid[rows, cols].reshape(-1, *self.patterns.shape[1:])


def comparison_patterns(
    n: int, rng: np.random.Generator, signal: float = 1.3, noise: float = 0.02
) -> tuple[np.ndarray, np.ndarray]:
    """Classes told apart by which of two fixed 3x3-pixel disks is brighter, under a large
    common brightness change: a position-bound comparison, as polarization is in dynamical
    patterns."""
    labels = rng.integers(0, 2, n)
    brightness = rng.uniform(0.5, 3.0, n)[:, None, None]
    patterns = brightness * (1 + noise * rng.standard_normal((n, 16, 16)))
    patterns[:, 3:6, 4:7] *= np.where(labels == 0, signal, 1.0)[:, None, None]
    patterns[:, 10:13, 9:12] *= np.where(labels == 1, signal, 1.0)[:, None, None]
    return patterns.astype(np.float32), labels


def fit_auto_on_comparison(signal: float, noise: float) -> tuple[object, np.ndarray, np.ndarray]:
    """auto fitted on every 8th of 400 comparison patterns (classes drawn per pattern, so
    nothing to average: train_average 1)."""
    rng = np.random.default_rng(0)
    scan, labels = comparison_patterns(400, rng, signal, noise)
    chosen = np.arange(0, 400, 8)
    fitted = fit_learner(
        ModelSpec(learner="auto", epochs=1, train_average=1),
        ["a", "b"],
        scan[chosen],
        labels[chosen],
        cache=ArrayCache(scan, (20, 20)),
        positions=np.stack(np.divmod(chosen, 20), 1),
        device=torch.device("cpu"),
        seed=0,
    )
    with torch.inference_mode():
        predicted = fitted.network(torch.from_numpy(scan).unsqueeze(1)).argmax(1).numpy()
    return fitted, predicted, labels


def test_auto_takes_logreg_on_a_comparison_the_short_trained_cnn_misses_and_says_why():
    fitted, predicted, labels = fit_auto_on_comparison(signal=1.08, noise=0.05)
    assert isinstance(fitted.network, LinearOnPixels)
    assert fitted.learner == "logreg" and fitted.metrics["learner"] == "logreg"
    assert fitted.metrics["chosen_by"] == "auto"
    cv = fitted.metrics["cv_by_learner"]
    assert cv["logreg"] > cv["cnn"] + 0.1  # the CNN was fitted, and lost
    assert "logreg is not beaten" in fitted.metrics["choice_reason"]
    assert np.mean(predicted == labels) > 0.75


def test_auto_stops_cross_validating_a_cnn_that_can_no_longer_win(monkeypatch):
    import ghosttui.model.learners as learners

    folds: list[int] = []
    fit_cnn = learners._fit_cnn

    def counting(*args, **kwargs):
        folds.append(len(args[3]))
        return fit_cnn(*args, **kwargs)

    monkeypatch.setattr(learners, "_fit_cnn", counting)
    fitted, _, _ = fit_auto_on_comparison(signal=1.08, noise=0.05)
    assert fitted.learner == "logreg"
    assert len(folds) < learners.AUTO_FOLDS  # a fold or more left out, none for a final fit
    assert "its other folds were not fitted" in fitted.metrics["choice_reason"]
    assert fitted.metrics["choice_p"] >= 0.05


def test_auto_does_not_fit_the_cnn_when_too_few_logreg_errors_leave_it_no_chance():
    fitted, predicted, labels = fit_auto_on_comparison(signal=1.3, noise=0.02)
    assert fitted.learner == "logreg" and isinstance(fitted.network, LinearOnPixels)
    assert "cnn" not in fitted.metrics["cv_by_learner"]
    assert "the CNN was not fitted" in fitted.metrics["choice_reason"]
    assert np.mean(predicted == labels) > 0.9


def test_the_cnn_can_win_only_against_five_or_more_logreg_errors():
    # the best the CNN can do: right on every label logreg gets wrong, and on no other
    for errors in range(8):
        labels = np.zeros(20, np.int64)
        logreg = labels.copy()
        logreg[:errors] = 1
        best_p = choose_learner(labels, labels.copy(), logreg).p_value if errors else 1.0
        assert cnn_can_win(errors) == (best_p < 0.05), errors


@pytest.mark.slow
def test_auto_takes_the_cnn_where_it_cross_validates_better():
    """A small bright disk anywhere on the pattern: the CNN finds it, pixels do not (on
    the inputs as they are: mirror-symmetric ones pool each pixel with its mirror images,
    and logistic regression on them is right on 60 of 60 here)."""
    rng = np.random.default_rng(1)
    n = 300
    labels = rng.integers(0, 2, n)
    scan = rng.uniform(0.8, 1.2, (n, 16, 16)).astype(np.float32)
    for i in np.flatnonzero(labels == 1):
        y, x = rng.integers(2, 14, 2)
        scan[i, y - 1 : y + 2, x - 1 : x + 2] += 3.0
    chosen = np.arange(0, n, 5)
    fitted = fit_learner(
        ModelSpec(learner="auto", epochs=10, width=8, train_average=1, input_symmetry="none"),
        ["a", "b"],
        scan[chosen],
        labels[chosen],
        cache=ArrayCache(scan, (15, 20)),
        positions=np.stack(np.divmod(chosen, 20), 1),
        device=torch.device("cpu"),
        seed=0,
    )
    assert isinstance(fitted.network, GhostNet) and fitted.learner == "cnn"
    assert "the CNN beats logreg" in fitted.metrics["choice_reason"]


# -- neighbourhood-averaged training inputs ---------------------------------------------
def domain_scan(
    rng: np.random.Generator, shape: tuple[int, int] = (24, 24), noise: float = 0.6
) -> tuple[np.ndarray, np.ndarray]:
    """Two contiguous domains (left / right of a wall) told apart by which of two fixed
    pixels is brighter, buried in pixel noise larger than the signal. The two pixels are
    each other's image under inversion about the beam (the middle, 5.5, 5.5): only weights
    that are not mirror-symmetric read this signal."""
    n = shape[0] * shape[1]
    truth = (np.arange(n) % shape[1] >= shape[1] // 2).astype(np.int64)
    patterns = 1 + noise * rng.standard_normal((n, 12, 12))
    patterns[:, 3, 4] += np.where(truth == 0, 0.5, 0.0)
    patterns[:, 8, 7] += np.where(truth == 1, 0.5, 0.0)
    return patterns.astype(np.float32), truth


def index_grid(n_rx: int, n_ry: int) -> np.ndarray:
    """Every pattern's value is its flat index: means show which positions went in."""
    values = np.arange(n_rx * n_ry, dtype=np.float32)
    return np.broadcast_to(values[:, None, None], (n_rx * n_ry, 2, 2)).copy()


def test_averaged_inputs_leave_out_hidden_positions_other_classes_and_the_held_out_fold():
    cache = ArrayCache(index_grid(5, 5), (5, 5))
    at = lambda rx, ry: 5 * rx + ry  # noqa: E731
    positions = np.array([[2, 2], [2, 3], [0, 0], [1, 1]])
    labels = np.array([0, 1, 0, 0])
    averaged = AveragedInputs(cache, positions, labels, 3, hidden=np.array([[1, 2]]))
    means = averaged.means(np.arange(4))[:, 0, 0]
    # (2, 2): its 3x3 block without (1, 2) (hidden) and (2, 3) (labelled the other class)
    block = [at(r, c) for r in (1, 2, 3) for c in (1, 2, 3) if (r, c) not in ((1, 2), (2, 3))]
    assert means[0] == pytest.approx(np.mean(block))
    # (2, 3) is class 1: (2, 2) and (1, 1) are labelled class 0, (1, 2) is hidden
    block = [at(r, c) for r in (1, 2, 3) for c in (2, 3, 4) if (r, c) not in ((1, 2), (2, 2))]
    assert means[1] == pytest.approx(np.mean(block))
    # (0, 0): the block is cut at the scan's corner, four positions, (1, 1) its own class
    assert means[2] == pytest.approx(np.mean([at(0, 0), at(0, 1), at(1, 0), at(1, 1)]))
    # cross-validation: label 3 held out, so (1, 1) leaves (0, 0)'s mean
    fold = averaged.means(np.array([2]), held_out=np.array([3]))[:, 0, 0]
    assert fold[0] == pytest.approx(np.mean([at(0, 0), at(0, 1), at(1, 0)]))


def test_a_hidden_position_is_kept_in_its_own_mean():
    cache = ArrayCache(index_grid(3, 3), (3, 3))
    averaged = AveragedInputs(cache, np.array([[1, 1]]), np.array([0]), 3, np.array([[1, 1]]))
    assert averaged.means(np.array([0]))[0, 0, 0] == pytest.approx(np.arange(9).mean())


@pytest.mark.parametrize("learner", ["logreg", "auto"])
def test_fitting_on_neighbourhood_means_beats_single_patterns_on_a_noisy_domain_scan(learner):
    rng = np.random.default_rng(3)
    shape = (24, 24)
    scan, truth = domain_scan(rng, shape)
    cache = ArrayCache(scan, shape)
    chosen = np.sort(rng.choice(scan.shape[0], 30, replace=False))
    positions = np.stack(np.divmod(chosen, shape[1]), 1)
    accuracy = {}
    for size in (1, 3):
        fitted = fit_learner(
            ModelSpec(
                learner=learner,
                epochs=2,
                width=4,
                train_average=size,
                mean_share=1.0,
                input_symmetry="none",
            ),
            ["left", "right"],
            scan[chosen],
            truth[chosen],
            cache=cache,
            positions=positions,
            device=torch.device("cpu"),
            seed=0,
        )
        assert isinstance(fitted.network, LinearOnPixels)
        assert fitted.metrics["train_average"] == size
        with torch.inference_mode():  # predictions stay per pattern
            predicted = fitted.network(torch.from_numpy(scan).unsqueeze(1)).argmax(1).numpy()
        accuracy[size] = np.mean(predicted == truth)
    assert accuracy[3] > accuracy[1] + 0.05, accuracy


def test_train_average_must_be_odd():
    from ghosttui.errors import GhostError

    with pytest.raises(GhostError, match="train_average must be odd"):
        ModelSpec(train_average=2)


def fit_linear(scan, truth, chosen, positions, cache, **settings):
    """The linear learner on a :func:`domain_scan` (its signal is antisymmetric: the inputs
    as they are unless ``settings`` say otherwise)."""
    return fit_learner(
        ModelSpec(learner="logreg", **{"input_symmetry": "none", **settings}),
        ["left", "right"],
        scan[chosen],
        truth[chosen],
        cache=cache,
        positions=positions,
        device=torch.device("cpu"),
        seed=0,
    ).network


def labelled_domain_scan(seed: int, shape: tuple[int, int], n: int, **scan_options):
    """A :func:`domain_scan`, its cache, and ``n`` labelled positions drawn from it."""
    rng = np.random.default_rng(seed)
    scan, truth = domain_scan(rng, shape, **scan_options)
    chosen = np.sort(rng.choice(scan.shape[0], n, replace=False))
    positions = np.stack(np.divmod(chosen, shape[1]), 1)
    return scan, truth, ArrayCache(scan, shape), chosen, positions


def logits(network, scan):
    with torch.inference_mode():
        return network(torch.from_numpy(scan).unsqueeze(1)).numpy()


def test_the_blend_is_one_linear_layer_whose_logits_mix_the_two_fits_by_share():
    scan, truth, cache, chosen, positions = labelled_domain_scan(5, (20, 20), 24)
    fit = lambda **s: fit_linear(scan, truth, chosen, positions, cache, **s)  # noqa: E731
    means, patterns = fit(train_average=3, mean_share=1.0), fit(train_average=1)
    blend = fit(train_average=3, mean_share=0.25)
    assert isinstance(blend, LinearOnPixels)
    expected = 0.25 * logits(means, scan) + 0.75 * logits(patterns, scan)
    np.testing.assert_allclose(logits(blend, scan), expected, rtol=1e-4, atol=1e-4)
    # the ends of the range are the two fits themselves
    np.testing.assert_allclose(
        logits(fit(train_average=3, mean_share=0.0), scan), logits(patterns, scan), atol=1e-5
    )
    assert not np.allclose(logits(means, scan), logits(patterns, scan), atol=1e-2)


def test_the_blend_cross_validates_the_procedure_it_fits():
    """The learner's cross-validated accuracy (what promotion compares) is that of the blend
    itself: a share that fits worse cross-validates worse."""
    scan, truth, cache, chosen, positions = labelled_domain_scan(7, (24, 24), 40, noise=0.9)
    cv = {}
    for share in (0.0, 0.5, 1.0):
        fitted = fit_learner(
            ModelSpec(learner="logreg", train_average=3, mean_share=share, input_symmetry="none"),
            ["left", "right"],
            scan[chosen],
            truth[chosen],
            cache=cache,
            positions=positions,
            device=torch.device("cpu"),
            seed=0,
        )
        assert fitted.metrics["mean_share"] == share
        cv[share] = fitted.metrics["cv_accuracy"]
    assert len(set(cv.values())) > 1, cv  # the share changes what is cross-validated


@pytest.mark.parametrize("share", [-0.1, 1.5, float("nan"), "half", True])
def test_mean_share_must_be_a_number_from_0_to_1(share):
    from ghosttui.errors import GhostError

    with pytest.raises(GhostError, match=r"\[model\] mean_share"):
        ModelSpec(mean_share=share)


def test_the_input_blur_folds_into_one_linear_layer_on_the_raw_inputs():
    """Weights fitted on standardised blurred inputs give the same logits as the folded
    weights on the inputs themselves (the blur is a symmetric matrix), at the edges too."""
    rng = np.random.default_rng(3)
    scan = rng.gamma(2.0, 1.0, (60, 12, 12)).astype(np.float32)
    standard = PixelStandardiser(ArrayCache(scan, (6, 10)), blur=1.5)
    weight = rng.standard_normal((3, 144)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    raw_weight, raw_bias = standard.fold(weight, bias)
    expected = standard.apply(scan) @ weight.T + bias
    np.testing.assert_allclose(scan.reshape(60, -1) @ raw_weight.T + raw_bias, expected, atol=2e-3)
    # the blur itself: a symmetric operator that keeps a flat interior flat
    a, b = rng.standard_normal((2, 1, 12, 12))
    assert np.sum(blur_patterns(a, 1.5) * b) == pytest.approx(np.sum(a * blur_patterns(b, 1.5)))
    assert blur_patterns(np.ones((1, 12, 12)), 1.0)[0, 6, 6] == pytest.approx(1.0, abs=1e-3)
    assert np.array_equal(blur_patterns(a, 0.0), a.astype(np.float32))


def test_the_fitted_linear_model_predicts_what_it_fitted_on_blurred_inputs():
    scan, truth, cache, chosen, positions = labelled_domain_scan(5, (20, 20), 24)
    blurred = fit_linear(scan, truth, chosen, positions, cache, train_average=1, input_blur=1.0)
    plain = fit_linear(scan, truth, chosen, positions, cache, train_average=1, input_blur=0.0)
    # by hand: logistic regression on the standardised blurred inputs
    from ghosttui.model.learners import linear_weights

    standard = PixelStandardiser(cache, blur=1.0)
    weight, bias = linear_weights(standard.apply(scan[chosen]), truth[chosen], 2)
    by_hand = standard.apply(scan) @ weight.T + bias
    np.testing.assert_allclose(logits(blurred, scan), by_hand, rtol=1e-3, atol=1e-3)
    assert not np.allclose(logits(blurred, scan), logits(plain, scan), atol=1e-2)
    assert torch.all(plain.scale != 1)  # unblurred: the standardisation stays in the layer


@pytest.mark.parametrize("blur", [-0.5, 9.0, float("nan"), "one", True])
def test_input_blur_must_be_a_number_from_0_to_8(blur):
    from ghosttui.errors import GhostError

    with pytest.raises(GhostError, match=r"\[model\] input_blur"):
        ModelSpec(input_blur=blur)


# -- mirror-symmetric inputs ([model] input_symmetry) -------------------------------------
def test_mirror_symmetric_inputs_fold_into_one_linear_layer_on_the_raw_inputs():
    """Blur and symmetriser are both symmetric matrices: weights fitted on the standardised
    transformed inputs give the same logits, folded, on the inputs themselves, with the
    beam off the middle (partners fall off the image) too."""
    rng = np.random.default_rng(4)
    scan = rng.gamma(2.0, 1.0, (60, 12, 12)).astype(np.float32)
    cache = ArrayCache(scan, (6, 10), beam_centre=(4.6, 6.2))
    standard = PixelStandardiser(cache, blur=1.5, symmetry="mirror")
    assert standard.folded and standard.centre == (4.5, 6.5)
    weight = rng.standard_normal((3, 144)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    raw_weight, raw_bias = standard.fold(weight, bias)
    expected = standard.apply(scan) @ weight.T + bias
    np.testing.assert_allclose(scan.reshape(60, -1) @ raw_weight.T + raw_bias, expected, atol=2e-3)


def axis_scan(rng: np.random.Generator, n: int = 400, tilt: float = 0.6):
    """Two classes told apart by the axis of a feature (bright pixels at the four mirror
    images of (2, 3), or of (3, 2): horizontal against vertical), under a random tilt that
    brightens one side of each pattern far more than the feature does: the class is
    mirror-symmetric, the nuisance is not."""
    labels = rng.integers(0, 2, n)
    cols = (np.arange(12) - 5.5) / 5.5
    slope = rng.uniform(-tilt, tilt, n)[:, None, None]
    patterns = 1 + slope * cols[None, None, :] + 0.05 * rng.standard_normal((n, 12, 12))
    for r, c in ((2, 3), (2, 8), (9, 3), (9, 8)):
        patterns[labels == 0, r, c] += 0.15
        patterns[labels == 1, c, r] += 0.15
    return patterns.astype(np.float32), labels


def fit_axis(scan, labels, chosen, symmetry):
    return fit_learner(
        ModelSpec(learner="logreg", train_average=1, input_blur=0.0, input_symmetry=symmetry),
        ["horizontal", "vertical"],
        scan[chosen],
        labels[chosen],
        cache=ArrayCache(scan, (20, 20)),
        positions=np.stack(np.divmod(chosen, 20), 1),
        device=torch.device("cpu"),
        seed=0,
    )


def test_auto_takes_mirror_symmetric_inputs_where_the_class_is_symmetric_and_says_why():
    rng = np.random.default_rng(2)
    scan, labels = axis_scan(rng)
    chosen = np.sort(rng.choice(len(labels), 24, replace=False))
    fitted = {s: fit_axis(scan, labels, chosen, s) for s in ("auto", "none", "mirror")}
    auto = fitted["auto"].metrics
    assert auto["input_symmetry"] == "mirror", auto["symmetry_reason"]
    assert auto["symmetry_reason"].startswith("mirror-symmetric inputs (surer over the scan:")
    assert "cross-validated on 24 labels" in auto["symmetry_reason"]
    assert auto["confidence_by_symmetry"]["mirror"] > auto["confidence_by_symmetry"]["none"]
    assert auto["cv_by_symmetry"]["mirror"] > auto["cv_by_symmetry"]["none"]
    accuracy = {s: np.mean(logits(f.network, scan).argmax(1) == labels) for s, f in fitted.items()}
    assert accuracy["auto"] == accuracy["mirror"] > accuracy["none"] + 0.1, accuracy
    assert fitted["none"].metrics["input_symmetry"] == "none"
    assert "symmetry_reason" not in fitted["none"].metrics  # set, not chosen


def test_auto_keeps_the_inputs_as_they_are_where_the_class_is_a_friedel_asymmetry():
    """The domain scan's classes differ by which of two inversion partners is brighter:
    symmetrised, nothing of the class is left, and cross-validation says so."""
    scan, truth, cache, chosen, positions = labelled_domain_scan(5, (20, 20), 60, noise=0.1)
    fitted = fit_learner(
        ModelSpec(learner="auto", train_average=1, input_blur=0.0, input_symmetry="auto"),
        ["left", "right"],
        scan[chosen],
        truth[chosen],
        cache=cache,
        positions=positions,
        device=torch.device("cpu"),
        seed=0,
    )
    assert fitted.learner == "logreg"
    assert fitted.metrics["input_symmetry"] == "none", fitted.metrics["symmetry_reason"]
    assert fitted.metrics["cv_by_symmetry"]["mirror"] < 0.75 < fitted.metrics["cv_accuracy"], (
        fitted.metrics["cv_by_symmetry"]
    )


@pytest.mark.parametrize("symmetry", ["mirrors", "", None, 1])
def test_input_symmetry_must_be_a_known_name(symmetry):
    from ghosttui.errors import GhostError

    with pytest.raises(GhostError, match=r"\[model\] input_symmetry must be one of auto, none"):
        ModelSpec(input_symmetry=symmetry)


def test_the_inputs_whose_fit_is_surer_over_the_scan_are_taken():
    """The scan's own patterns decide: the fit with the higher mean top class probability
    over the scan is taken, though the other cross-validates a little better on the few
    labels; a tie takes the mirror-symmetric inputs."""
    from ghosttui.model.learners import choose_symmetry

    labels = np.zeros(20, np.int64)
    none = labels.copy()
    none[:2] = 1  # wrong on 2 labels: not significantly worse
    predicted = {"none": none, "mirror": labels.copy()}
    choice = choose_symmetry(labels, predicted, {"none": 0.97, "mirror": 0.93})
    assert choice.symmetry == "none"
    assert choice.reason.startswith(
        "inputs as they are (surer over the scan: mean top class probability over the scan "
        "0.970 against 0.930; cross-validated on 20 labels: as they are 18/20, "
        "mirror-symmetric 20/20)"
    )
    assert choice.confidence == {"none": 0.97, "mirror": 0.93}
    assert choose_symmetry(labels, predicted, {"none": 0.93, "mirror": 0.97}).symmetry == "mirror"
    assert choose_symmetry(labels, predicted, {"none": 0.9, "mirror": 0.9}).symmetry == "mirror"


def test_inputs_that_cross_validate_significantly_better_overrule_the_surer_fit():
    """The scan's confidence decides unless the grid and random labels say otherwise
    beyond chance (a paired sign test): 6 labels right for one only, all for the other."""
    from ghosttui.model.learners import MIN_REPRESENTATIVE, choose_symmetry

    n = 2 * MIN_REPRESENTATIVE
    labels = np.zeros(n, np.int64)
    representative = np.arange(n) < MIN_REPRESENTATIVE  # the first half: grid and random
    mirror = labels.copy()
    mirror[:6] = 1  # wrong on 6 grid labels
    predicted = {"none": labels.copy(), "mirror": mirror}
    surer_mirror = {"none": 0.9, "mirror": 0.95}
    choice = choose_symmetry(labels, predicted, surer_mirror, representative)
    assert choice.symmetry == "none"
    assert "cross-validate significantly better, p = 0.016" in choice.reason
    assert f"cross-validated on {MIN_REPRESENTATIVE} grid and random labels" in choice.reason
    # the same 6 wrong labels among the adaptive ones: not scored, so the surer fit stays
    late = labels.copy()
    late[MIN_REPRESENTATIVE : MIN_REPRESENTATIVE + 6] = 1
    predicted = {"none": labels.copy(), "mirror": late}
    assert choose_symmetry(labels, predicted, surer_mirror, representative).symmetry == "mirror"
    assert choose_symmetry(labels, predicted, surer_mirror).symmetry == "none"  # every label
    too_few = representative & (np.arange(n) < MIN_REPRESENTATIVE - 1)
    assert choose_symmetry(labels, predicted, surer_mirror, too_few).symmetry == "none"


def test_the_fits_are_compared_on_a_centred_block_of_whole_rows():
    from ghosttui.model.learners import MAP_WINDOW, map_window

    class Shape:
        scan_shape = (1000, 100)

    rows, cols = map_window(Shape())
    assert (rows.stop - rows.start) * (cols.stop - cols.start) <= MAP_WINDOW
    assert cols == slice(0, 100) and rows.start == (1000 - (rows.stop - rows.start)) // 2
    Shape.scan_shape = (20, 30)
    assert map_window(Shape()) == (slice(0, 20), slice(0, 30))


def test_window_confidence_is_the_mean_top_class_probability_of_the_folded_fit():
    from ghosttui.model.learners import window_confidence

    rng = np.random.default_rng(0)
    scan = rng.standard_normal((70 * 3, 4, 4)).astype(np.float32)
    cache = ArrayCache(scan, (70, 3))
    weight = rng.standard_normal((3, 16)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    logit = scan.reshape(len(scan), -1) @ weight.T + bias
    expected = (np.exp(logit).max(1) / np.exp(logit).sum(1)).mean()
    got = window_confidence(cache, (slice(0, 70), slice(0, 3)), {"a": (weight, bias)})
    assert got["a"] == pytest.approx(expected, rel=1e-5)  # read in blocks of 32 rows
    half = window_confidence(cache, (slice(35, 70), slice(0, 3)), {"a": (weight, bias)})
    assert half["a"] == pytest.approx((np.exp(logit).max(1) / np.exp(logit).sum(1))[105:].mean())
