"""The pattern pane's core: views, centring, smoothing, colours, layout, references."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ghosttui.errors import GhostError
from ghosttui.patterns.neighbourhood import neighbourhood
from ghosttui.patterns.references import ClassMeans, confident_members
from ghosttui.patterns.sources import PatternSource
from ghosttui.render.colour import Contrast, readable_rgb
from ghosttui.render.pane import BAR, PaneState, PatternPane, default_state, plan_layout
from ghosttui.render.views import (
    DIVERGING_LUT,
    beam_centres,
    centre_on,
    descan_design,
    disk_smooth,
    diverging_rgb,
    fit_descan,
    grid_centre,
    partner,
    ring_mask,
    shift_stack,
    signed_unit,
    view_values,
)


def disk(shape, centre, radius, value=1.0):
    rr, cc = np.indices(shape)
    return np.where((rr - centre[0]) ** 2 + (cc - centre[1]) ** 2 <= radius**2, value, 0.0)


def soft_disk(shape, centre, radius, value=1.0, edge=0.5):
    """A disk with a smooth edge, as a probe's disk is drawn (sub-pixel centre)."""
    rr, cc = np.indices(shape)
    distance = np.hypot(rr - centre[0], cc - centre[1])
    return value / (1 + np.exp((distance - radius) / edge))


# -- symmetry ----------------------------------------------------------------------------------
def test_grid_centre_lets_every_symmetry_map_pixels_onto_pixels():
    for centre in [(10.3, 12.8), (31.75, 31.2), (5.0, 5.5)]:
        cy, cx = grid_centre(centre)
        assert (2 * cy).is_integer() and (cy - cx).is_integer()
        assert abs(cy - centre[0]) <= 0.25 and abs(cx - centre[1]) <= 0.5


def test_partners_are_the_rotated_transposed_and_mirrored_image():
    image = np.zeros((9, 9), np.float32)
    image[2, 6] = 1.0  # 2 rows up and 2 columns right of the centre (4, 4)
    centre = (4.0, 4.0)
    assert partner(image, "inversion", centre)[6, 2] == 1.0
    assert partner(image, "transpose", centre)[6, 2] == 1.0  # (row, col) offsets swapped
    assert partner(image, "mirror-lr", centre)[2, 2] == 1.0
    assert partner(image, "mirror-ud", centre)[6, 6] == 1.0
    for view in ("inversion", "transpose", "mirror-lr", "mirror-ud"):
        assert np.nansum(partner(image, view, centre)) == 1.0


def test_partner_pixels_off_the_detector_are_nan_and_their_difference_zero():
    image = np.ones((8, 8), np.float32)
    rotated = partner(image, "inversion", (2.0, 2.0))  # partners of pixels beyond 4 are off
    assert np.isnan(rotated[6, 6]) and rotated[1, 1] == 1.0
    assert view_values(image, "inversion", (2.0, 2.0))[6, 6] == 0.0


def test_a_symmetric_pattern_has_no_difference_and_an_asymmetric_one_keeps_its_sign():
    shape, centre = (33, 33), (16.0, 16.0)
    symmetric = disk(shape, centre, 3) + disk(shape, (16, 24), 2) + disk(shape, (16, 8), 2)
    assert np.abs(view_values(symmetric, "inversion", centre)).max() == 0
    assert np.abs(view_values(symmetric, "mirror-lr", centre)).max() == 0
    polar = symmetric + disk(shape, (16, 24), 2, 0.05)  # the right disk 5% brighter
    diff = view_values(polar, "inversion", centre)
    assert diff[16, 24] == pytest.approx(0.05) and diff[16, 8] == pytest.approx(-0.05)
    assert np.abs(view_values(polar, "mirror-ud", centre)).max() == 0  # up-down symmetric


def test_reference_views_subtract_the_reference_and_need_one():
    image = np.full((4, 4), 3.0, np.float32)
    assert np.all(view_values(image, "mean", (2, 2), np.ones((4, 4))) == 2.0)
    with pytest.raises(ValueError):
        view_values(image, "local", (2, 2))
    with pytest.raises(ValueError):
        view_values(image, "nonsense", (2, 2))


# -- centring -------------------------------------------------------------------------------------
def test_beam_centres_are_found_to_a_tenth_of_a_pixel():
    centres = [(20.3, 19.6), (21.1, 18.7), (19.45, 20.25)]
    stack = np.stack([soft_disk((40, 40), c, 3) + 0.05 for c in centres])
    stack += np.stack([soft_disk((40, 40), (c[0], c[1] + 10), 3, 0.6) for c in centres])
    found = beam_centres(stack, (20.0, 20.0), 3.0)
    np.testing.assert_allclose(found, centres, atol=0.1)


def test_shift_stack_moves_each_image_by_its_own_shift():
    stack = np.stack([soft_disk((30, 30), (15, 15), 3), soft_disk((30, 30), (10, 12), 3)])
    moved = shift_stack(stack, np.array([[2.5, -1.0], [0.0, 3.0]]))
    found = beam_centres(moved, (15, 14), 3)
    np.testing.assert_allclose(found[0], (17.5, 14.0), atol=0.1)
    found = beam_centres(moved[1:], (10, 15), 3)
    np.testing.assert_allclose(found[0], (10.0, 15.0), atol=0.1)


def test_centring_puts_every_drifting_beam_on_the_grid_centre():
    drifts = [(20.2, 20.3), (21.4, 19.1), (18.8, 20.9)]
    stack = np.stack([soft_disk((41, 41), c, 3) for c in drifts])
    centred = centre_on(stack, beam_centres(stack, (20.1, 20.2), 3.0), (20.1, 20.2))
    found = beam_centres(centred, (20.0, 20.0), 3.0)
    target = grid_centre((20.1, 20.2))
    np.testing.assert_allclose(found, [target] * 3, atol=0.15)
    fixed = centre_on(stack, np.tile((20.1, 20.2), (3, 1)), (20.1, 20.2))  # drift stays
    spread = beam_centres(fixed, (20.0, 20.0), 3.0)
    assert np.ptp(spread[:, 0]) > 2.0


def test_the_descan_fit_follows_a_smooth_drift_but_not_local_deflections():
    rx, ry = np.meshgrid(np.arange(30), np.arange(20), indexing="ij")
    positions = np.stack([rx.ravel(), ry.ravel()], 1)
    drift = np.stack([10 + 0.05 * rx + 0.02 * ry, 12 - 0.03 * rx + 0.001 * rx * ry], -1)
    measured = drift.reshape(-1, 2).copy()
    domain = (rx.ravel() % 10 < 3) & (ry.ravel() % 8 < 3)  # small domains deflect the beam
    measured[domain, 1] += 0.4
    measured[7] = (0.0, 0.0)  # a blank pattern: no beam found
    coefficients = fit_descan(positions, measured, (30, 20))
    predicted = descan_design(positions, (30, 20)) @ coefficients
    error = np.abs(predicted - drift.reshape(-1, 2))
    assert error[:, 0].max() < 0.05
    assert error[:, 1].max() < 0.2  # the deflections pull the fit by a fraction only


# -- smoothing and colour -----------------------------------------------------------------------------
def test_disk_smoothing_averages_over_the_probe_disk_and_keeps_flat_images_flat():
    flat = np.full((20, 30), 2.5, np.float32)
    np.testing.assert_allclose(disk_smooth(flat, 2.0), flat, rtol=1e-5)  # edges included
    spike = np.zeros((21, 21), np.float32)
    spike[10, 10] = 13.0
    smooth = disk_smooth(spike, 2.0)
    assert smooth.sum() == pytest.approx(13.0, rel=1e-4)
    assert smooth[10, 10] == pytest.approx(1.0, rel=1e-4)  # 13 pixels in a radius-2 disk
    assert smooth[10, 13] == pytest.approx(0.0, abs=1e-5)


def test_differences_are_drawn_dark_blue_through_grey_to_yellow():
    unit = signed_unit(np.array([[-0.5, 0.0, 0.05, 1.0]]), 0.1)
    assert unit.tolist() == [[-1.0, 0.0, 0.5, 1.0]]
    rgb = diverging_rgb(unit)[0].astype(int)
    assert rgb[0, 2] > rgb[0, 0] and rgb[3, 0] > rgb[3, 2]  # blue below zero, yellow above
    assert abs(rgb[1, 0] - rgb[1, 2]) < 12  # zero: neutral grey
    lightness = DIVERGING_LUT.astype(float) @ [0.2126, 0.7152, 0.0722]
    assert np.all(np.diff(lightness) > -1.0)  # lightness rises steadily (no fold at zero)


def test_dark_class_colours_are_lightened_for_a_dark_background():
    assert readable_rgb("#0000ff") != (0, 0, 255)
    assert readable_rgb("#0000ff")[2] == 255  # still blue
    assert readable_rgb("#00ff00") == (0, 255, 0)  # already light: unchanged


# -- neighbourhoods ----------------------------------------------------------------------------------
def test_neighbourhoods_are_cut_at_the_scan_edges():
    assert neighbourhood(5, 5, 3, (10, 10)) == (slice(4, 7), slice(4, 7))
    assert neighbourhood(0, 9, 5, (10, 10)) == (slice(0, 3), slice(7, 10))
    assert neighbourhood(3, 3, 1, (10, 10)) == (slice(3, 4), slice(3, 4))
    outer = (slice(2, 9), slice(2, 9))
    mask = ring_mask(*outer, (slice(4, 7), slice(4, 7)))
    assert mask.size == 49 and mask.sum() == 40


# -- layout -------------------------------------------------------------------------------------------
def test_layout_without_references_scales_by_whole_numbers_or_shrinks():
    assert plan_layout((64, 64), 0, 82, 76).query == (64, 64)
    assert plan_layout((32, 32), 0, 82, 76).query == (64, 64)
    shrunk = plan_layout((128, 128), 0, 82, 76)
    assert shrunk.query == (76, 76) and shrunk.scale < 1
    native = plan_layout((128, 128), 0, 82, 76, shrink=False)
    assert native.scale == 1 and native.crop == (82, 76)  # detector pixels 1:1, cropped


def test_layout_puts_references_in_a_strip_below_the_query():
    layout = plan_layout((64, 64), 3, 82, 76)
    assert layout.below and layout.scale == 1 and layout.query == (64, 64)
    assert layout.ref[0] == 82 - 64 - 2 and 3 * (layout.ref[1] + BAR) + 4 <= 76
    wide = plan_layout((64, 64), 3, 70, 160)
    assert not wide.below and wide.query == (64, 64)  # room at the side instead


# -- the pane on a synthetic scan ---------------------------------------------------------------------
class ArraySource(PatternSource):
    """Patterns from an in-memory (Rx, Ry, H, W) array."""

    label = "test input"

    def __init__(self, data: np.ndarray, centre, radius=2.0):
        super().__init__(data.shape[2:], data.shape[:2], centre, radius)
        self.data = data.astype(np.float32)
        self.reads = 0

    def block(self, rows, cols):
        self.reads += 1
        return self.data[rows, cols].reshape(-1, *self.shape)

    def gather(self, positions):
        positions = np.asarray(positions, int).reshape(-1, 2)
        self.reads += len(positions)
        return self.data[positions[:, 0], positions[:, 1]]


@pytest.fixture
def scan():
    """A 6x5 scan of 32x32 patterns: a beam, and a faint disk right (class 0) or below (1)."""
    rng = np.random.default_rng(0)
    data = np.empty((6, 5, 32, 32), np.float32)
    truth = np.zeros((6, 5), int)
    truth[3:] = 1
    for rx in range(6):
        for ry in range(5):
            ghost = (16, 24) if truth[rx, ry] == 0 else (24, 16)
            data[rx, ry] = disk((32, 32), (16, 16), 2.5) + disk((32, 32), ghost, 2, 0.2)
            data[rx, ry] += rng.normal(0, 0.01, (32, 32))
    return data, truth


def make_pane(data, state=None):
    return PatternPane(
        ArraySource(data, (16.0, 16.0)), ["right", "below"], ["#0000ff", "#00ff00"], state
    )


def test_raw_at_one_position_is_the_pattern_exactly_as_the_app_drew_it_before(scan):
    data, _ = scan
    pane = make_pane(data, PaneState(view="raw", average=1))
    drawing = pane.draw(2, 3, 64, 64)
    fitted = np.repeat(np.repeat(data[2, 3], 2, 0), 2, 1)  # the old fit_image, then contrast
    expected = Contrast(mode="linear", low=1.0, high=99.7).to_rgb(fitted)
    np.testing.assert_array_equal(drawing.rgb, expected)
    assert drawing.positions == 1


def test_averaging_uses_the_neighbourhood_and_says_how_many_positions(scan):
    data, _ = scan
    pane = make_pane(data, PaneState(view="raw", average=3, centring="scan"))
    values, count, _ = pane.query_values(1, 1)
    assert count == 9
    np.testing.assert_allclose(values, data[0:3, 0:3].mean((0, 1)), atol=1e-5)
    assert pane.query_values(0, 0)[1] == 4
    assert "3x3: 4 positions" in pane.caption(0, 0)[0]
    pane.state = replace(pane.state, average=5)
    assert pane.draw(0, 0, 64, 64).positions == 9


def test_the_mean_view_shows_the_class_signal_with_opposite_signs(scan):
    data, _ = scan
    pane = make_pane(data, PaneState(view="mean", average=1, smooth=False, centring="scan"))
    top, _, _ = pane.query_values(0, 0)  # class 0: its ghost at (16, 24)
    bottom, _, _ = pane.query_values(5, 4)  # class 1: at (24, 16)
    assert top[16, 24] > 0.05 and top[24, 16] < -0.05
    assert bottom[16, 24] < -0.05 and bottom[24, 16] > 0.05


def test_the_local_view_is_flat_inside_a_domain_and_not_at_its_wall(scan):
    data, _ = scan
    pane = make_pane(data, PaneState(view="local", average=1, smooth=False, centring="scan"))
    inside, _, _ = pane.query_values(0, 2)
    wall, _, _ = pane.query_values(3, 2)
    assert np.abs(inside).max() < 0.06
    assert np.abs(wall).max() > 0.1


def test_references_are_class_means_in_the_same_view_beside_the_query(scan):
    data, _ = scan
    pane = make_pane(data, PaneState(view="raw", references="labels"))
    assert pane.draw(1, 1, 82, 76).references == []
    pane.set_labels({(0, 0): 0, (0, 1): 0, (5, 4): 1})
    drawing = pane.draw(1, 1, 82, 76)
    assert drawing.references == [("right", 2), ("below", 1)]
    assert drawing.rgb.shape[0] > 64
    bars = drawing.rgb[70, :, :]  # a row through the reference strip
    assert (bars == readable_rgb("#0000ff")).all(-1).any()
    assert (bars == readable_rgb("#00ff00")).all(-1).any()
    assert pane.caption(1, 1)[1].endswith("refs labels 2/1")
    pane.state = replace(pane.state, references="off")
    assert pane.draw(1, 1, 82, 76).rgb.shape[0] == 64


def test_class_means_follow_labels_reading_only_what_changed(scan):
    data, _ = scan
    source = ArraySource(data, (16.0, 16.0))
    means = ClassMeans(source, 2, "scan")
    means.sync({(0, 0): 0, (0, 1): 0, (5, 4): 1})
    reads = source.reads
    means.sync({(0, 0): 0, (0, 1): 0, (5, 4): 1, (5, 3): 1})  # one more label: one read
    assert source.reads == reads + 1
    means.sync({(0, 0): 0, (5, 4): 1, (5, 3): 1, (0, 1): 1})  # a relabel: out of 0, into 1
    fresh = ClassMeans(ArraySource(data, (16.0, 16.0)), 2, "scan")
    fresh.sync({(0, 0): 0, (5, 4): 1, (5, 3): 1, (0, 1): 1})
    for (a, n), (b, m) in zip(means.means(), fresh.means(), strict=True):
        assert n == m
        np.testing.assert_allclose(a, b, atol=1e-5)
    means.sync({})
    assert [n for _, n in means.means()] == [0, 0]


def test_model_references_take_only_confident_predictions():
    probabilities = np.zeros((4, 5, 3), np.float32)
    probabilities[..., 0] = 1.0
    probabilities[0, :] = [0.5, 0.4, 0.1]  # unsure: left out
    probabilities[3, :] = [0.0, 0.95, 0.05]
    members = confident_members(probabilities, per_class=3)
    assert all(p[0] != 0 for p in members)
    assert sum(1 for c in members.values() if c == 0) == 3  # capped, spread
    assert sum(1 for c in members.values() if c == 1) == 3


def test_the_default_view_is_the_transpose_for_horizontal_against_vertical():
    assert default_state(["horizontal", "vertical", "none"]).view == "transpose"
    assert default_state(["phase-a", "phase-b"]) == PaneState()
    assert PaneState().view == "mean" and PaneState().average == 3


def test_pane_state_is_checked_cycled_and_read_back_tolerantly():
    state = PaneState(average=1)
    assert PaneState.from_dict(state.to_dict()) == state
    assert PaneState.from_dict({"view": "gone", "average": 5, "extra": 1}).average == 5
    assert PaneState.from_dict({"view": "gone"}).view == PaneState().view
    assert PaneState.from_dict(None, state) == state
    assert state.cycled("average").average == 3
    assert state.cycled("average", -1).average == 5
    with pytest.raises(GhostError, match="unknown view 'bogus'"):
        replace(state, view="bogus")


def test_slow_inputs_are_prepared_apart_and_a_plain_stand_in_drawn_meanwhile(scan):
    data, _ = scan
    pane = make_pane(data, PaneState(view="mean", average=1, references="off"))
    assert pane.pending() == ["descan fit", "scan mean"]
    early = pane.draw(1, 1, 64, 64, wait=False)
    assert "preparing descan fit and scan mean" in early.caption[0]
    plain = replace(pane.state, view="raw", centring="scan")
    assert pane.pending() == ["descan fit", "scan mean"]  # drawing early computed nothing
    pane.prepare(pane.state)
    assert pane.pending() == []
    ready = pane.draw(1, 1, 64, 64, wait=False)
    np.testing.assert_array_equal(ready.rgb, pane.draw(1, 1, 64, 64).rgb)
    assert "preparing" not in ready.caption[0]
    pane.state = plain
    np.testing.assert_array_equal(early.rgb, pane.draw(1, 1, 64, 64).rgb)
