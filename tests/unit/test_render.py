"""Terminal cell rendering: every pixel's colour survives, equal neighbours share a segment."""

from __future__ import annotations

import numpy as np
import pytest

from ghosttui.render.cells import UPPER_HALF, ascii_lines, halfblock_lines


def decode(lines) -> np.ndarray:
    """Half-block segments back to an (2 * rows, W, 3) image."""
    rows = []
    for line in lines:
        top, bottom = [], []
        for segment in line:
            assert set(segment.text) == {UPPER_HALF}
            fg = segment.style.color.get_truecolor()
            bg = segment.style.bgcolor.get_truecolor()
            top += [tuple(fg)] * len(segment.text)
            bottom += [tuple(bg)] * len(segment.text)
        rows += [top, bottom]
    return np.array(rows, dtype=np.uint8)


@pytest.mark.parametrize("shape", [(64, 64), (7, 5), (2, 1), (88, 131)])
def test_halfblock_round_trips_every_pixel(shape):
    rgb = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    lines = halfblock_lines(rgb)
    assert len(lines) == (shape[0] + 1) // 2
    decoded = decode(lines)
    np.testing.assert_array_equal(decoded[: shape[0]], rgb)
    if shape[0] % 2:  # an odd last row is padded with black below
        assert not decoded[-1].any()


def test_equal_neighbours_share_one_segment():
    rgb = np.zeros((4, 10, 3), np.uint8)
    rgb[:, 5:] = 200  # two runs per row
    rgb[3, 9] = 17  # the second row pair has a third run at the end
    lines = halfblock_lines(rgb)
    assert [len(line) for line in lines] == [2, 3]
    assert [len(s.text) for s in lines[1]] == [5, 4, 1]


def test_ascii_ramp_rows_are_averaged_in_pairs():
    unit = np.array([[0.0, 1.0], [0.0, 1.0], [0.5, 0.5]])  # an odd last row pairs with itself
    assert [line[0].text for line in ascii_lines(unit)] == [" @", "++"]


def test_colourise_draws_nan_as_the_darkest_colour_without_a_warning():
    import warnings

    from ghosttui.render.colour import LUTS, colourise

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = colourise(np.array([[np.nan, 0.0, 1.0]]), "inferno")
    assert rgb[0, 0].tolist() == rgb[0, 1].tolist() == LUTS["inferno"][0].tolist()
    assert rgb[0, 2].tolist() == LUTS["inferno"][255].tolist()
