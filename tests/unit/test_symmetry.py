"""Point symmetries about the direct beam: the geometry the views and the linear learner share."""

import numpy as np
import pytest

from ghosttui.patterns.symmetry import CLASS_PRESERVING, grid_centre, partner_index, symmetrise


def mirror(image: np.ndarray, symmetry: str, centre: tuple[float, float]) -> np.ndarray:
    rows, cols, valid = partner_index(image.shape[-2:], symmetry, grid_centre(centre))
    return np.where(valid, image[..., rows, cols], 0.0)


def test_symmetrised_images_are_the_same_for_an_image_and_its_mirrors():
    rng = np.random.default_rng(0)
    image = rng.standard_normal((12, 12)).astype(np.float32)
    centre = (5.5, 5.5)  # the middle: every partner is on the image
    expected = symmetrise(image, centre)
    for symmetry in CLASS_PRESERVING:
        np.testing.assert_allclose(
            symmetrise(mirror(image, symmetry, centre), centre), expected, atol=1e-6
        )
    # the axis survives: an image and its transpose stay apart (horizontal is not vertical)
    assert not np.allclose(symmetrise(image.T, centre), expected, atol=1e-3)
    # what is left is the mean over the four: applying it twice changes nothing
    np.testing.assert_allclose(symmetrise(expected, centre), expected, atol=1e-6)


@pytest.mark.parametrize("centre", [(5.5, 5.5), (3.0, 7.0), (4.2, 8.9)])
def test_symmetrising_is_a_symmetric_operator_even_off_centre(centre):
    """<S a, b> = <a, S b>, partners off the image counting as zero: what lets a linear
    model on symmetrised inputs fold into weights on the inputs themselves."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 12, 12))
    assert np.sum(symmetrise(a, centre) * b) == pytest.approx(np.sum(a * symmetrise(b, centre)))


def test_an_antisymmetric_signal_vanishes_and_a_symmetric_one_stays():
    centre = (5.5, 5.5)
    friedel = np.zeros((12, 12), np.float32)
    friedel[3, 4], friedel[8, 7] = 1.0, -1.0  # +g brighter than -g: the sign of P
    np.testing.assert_allclose(symmetrise(friedel, centre), 0.0, atol=1e-7)
    pair = np.abs(friedel)  # both brighter: no sign, still there
    assert symmetrise(pair, centre)[3, 4] == pytest.approx(0.5)
