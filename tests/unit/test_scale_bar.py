"""Scale bars: a round length in sensible units, drawn below exported maps."""

from __future__ import annotations

import numpy as np
import pytest

from ghosttui.export import with_colourbar, with_legend
from ghosttui.render.scale_bar import ScaleBar, scale_bar


@pytest.mark.parametrize(
    ("pixel_size", "units", "width", "label", "positions"),
    [
        (1.0, "nm", 34, "5 nm", 5),  # a quarter of 34 nm is 8.5 nm: the bar is 5 nm
        (1.0, "nm", 16, "2 nm", 2),
        (0.5, "nm", 206, "20 nm", 40),
        (25.0, "nm", 200, "1 µm", 40),  # 1000 nm is written 1 µm
        (4.0, "A", 100, "10 nm", 25),  # Ångström as files write it; 100 Å is 10 nm
        (2.0, "Å", 10, "5 Å", 2.5),  # below a nanometre, a file in Å keeps Å
        (0.02, "um", 300, "1 µm", 50),
        (3.0, "furlong", 40, "20 furlong", 20 / 3),  # unknown unit: its own, round numbers
    ],
)
def test_round_lengths_in_sensible_units(pixel_size, units, width, label, positions):
    bar = scale_bar(pixel_size, units, width, pixels_per_position=10)
    assert bar is not None
    assert bar.label == label
    assert bar.pixels == pytest.approx(positions * 10)
    assert bar.pixels <= 0.25 * width * 10 + 1e-9  # never more than a quarter of the map


@pytest.mark.parametrize(
    ("pixel_size", "units"),
    [(None, "nm"), (1.0, None), (1.0, "pixels"), (1.0, "px"), (0.0, "nm"), (float("nan"), "nm")],
)
def test_no_bar_without_a_real_calibration(pixel_size, units):
    assert scale_bar(pixel_size, units, 34, 10) is None


def black_runs(image: np.ndarray) -> list[tuple[int, int, int]]:
    """(row, first column, length) of every run of pure black pixels at least 20 long."""
    runs = []
    black = (image == 0).all(-1)
    for row in range(black.shape[0]):
        cols = np.flatnonzero(black[row])
        if len(cols) == 0:
            continue
        breaks = np.flatnonzero(np.diff(cols) != 1)
        starts = np.concatenate([[cols[0]], cols[breaks + 1]])
        ends = np.concatenate([cols[breaks], [cols[-1]]])
        runs += [
            (row, int(a), int(b - a + 1))
            for a, b in zip(starts, ends, strict=True)
            if b - a + 1 >= 20
        ]
    return runs


@pytest.mark.parametrize("draw", ["legend", "colourbar"])
def test_the_bar_is_drawn_below_the_map_at_its_length(draw):
    rgb = np.full((200, 100, 3), 90, np.uint8)
    bar = ScaleBar(pixels=40.0, label="5 nm")

    def figure(bar):
        if draw == "legend":
            return with_legend(rgb, "t", [("a", (0, 0, 255))], bar)
        return with_colourbar(rgb, "t", "inferno", 0.0, 1.0, bar)

    plain, with_bar = figure(None), figure(bar)
    assert with_bar.shape[0] == plain.shape[0] + 40  # room below for the bar
    below_the_map_columns = slice(0, 15 + 100)  # the legend and colour bar have black outlines
    assert black_runs(plain[:, below_the_map_columns]) == []
    runs = black_runs(with_bar[:, below_the_map_columns])
    assert {(first, length) for _, first, length in runs} == {(15, 41)}  # from the map's left
    rows = [row for row, _, _ in runs]
    assert min(rows) > 45 + 200  # below the map
    assert len(rows) == 8  # 8 pixels thick
