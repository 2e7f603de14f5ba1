"""``ghosttui show`` writes exactly what the app's pattern pane draws; the pane's data sources."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_one_line_error
from PIL import Image

from ghosttui.patterns.sources import DetectorFrames, ModelInputs
from ghosttui.render.pane import APP_PANE_CELLS, META_KEY, PaneState, PatternPane
from ghosttui.session.session import Session


def cells_to_rgb(canvas) -> np.ndarray:
    """The pixels a half-block canvas shows: the upper half of a cell is its foreground
    colour, the lower half its background."""
    rows = []
    for y in range(canvas.size.height):
        top, bottom = [], []
        for segment in canvas.render_line(y):
            if "▀" not in segment.text:
                continue
            fg, bg = segment.style.color.triplet, segment.style.bgcolor.triplet
            top += [tuple(fg)] * len(segment.text)
            bottom += [tuple(bg)] * len(segment.text)
        if top:
            rows += [top, bottom]
    return np.array(rows, np.uint8)


def test_show_writes_the_pixels_the_app_pane_draws(labelling_app, run_cli, tmp_path):
    run = labelling_app("same")
    state = PaneState(view="inversion", average=3, zoom="2x", contrast="gamma")
    run.session.store.set_meta(META_KEY, state.to_dict())
    run.session.store.label(2, 3, "horizontal", "manual")
    run.session.store.label(20, 10, "vertical", "manual")

    async def scenario(app, pilot):
        await pilot.press("g", *"5, 7", "enter")
        await app.workers.wait_for_complete()  # the descan fit, in the background
        await pilot.pause()
        assert app.pane.state == state and not app.pane.pending()
        return cells_to_rgb(app.query_one("#pattern-canvas"))

    drawn = run.run(scenario)  # the session stays open: show reads it read-only
    out = tmp_path / "pane.png"
    result = run_cli("show", "same", "--at", "5,7", "--out", out)
    assert result.code == 0, result.err
    png = np.asarray(Image.open(out).convert("RGB"))
    assert png.shape[1] <= APP_PANE_CELLS[0] and png.shape[0] <= 2 * APP_PANE_CELLS[1]
    assert png.shape[0] > 64  # the references are in it
    np.testing.assert_array_equal(png, drawn)


def test_show_and_the_app_remove_the_same_scan_variation(labelling_app, run_cli, tmp_path):
    run = labelling_app("variation")
    run.session.store.set_meta(META_KEY, PaneState(view="transpose", references="off").to_dict())
    for i in range(6):  # two classes with enough labels to decide what to remove
        run.session.store.label(2 + i, 3, "horizontal", "manual")
        run.session.store.label(16 + i, 12, "vertical", "manual")

    async def scenario(app, pilot):
        await pilot.press("g", *"5, 7", "enter")
        await app.workers.wait_for_complete()  # the descan fit and the scan variation
        await pilot.pause()
        assert not app.pane.pending() and app.pane.removed_components() is not None
        return cells_to_rgb(app.query_one("#pattern-canvas"))

    drawn = run.run(scenario)
    out, kept = tmp_path / "removed.png", tmp_path / "kept.png"
    result = run_cli("show", "variation", "--at", "5,7", "--out", out)
    assert result.code == 0, result.err
    assert "pattern − its transpose − scan variation " in result.out
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), drawn)
    result = run_cli("show", "variation", "--at", "5,7", "--out", kept, "--variation", "kept")
    assert result.code == 0 and "scan variation" not in result.out
    assert not np.array_equal(np.asarray(Image.open(kept)), np.asarray(Image.open(out)))


@pytest.mark.parametrize(
    "state",
    [PaneState(view="mean", average=5), PaneState(view="raw", average=1, zoom="native")],
    ids=["mean-5x5", "raw-native"],
)
def test_show_draws_the_session_state_at_the_app_pane_size(make_session, run_cli, tmp_path, state):
    session = make_session("state")
    session.store.set_meta(META_KEY, state.to_dict())
    session.close()
    out = tmp_path / "pane.png"
    assert run_cli("show", "state", "--at", "6,9", "--out", out).code == 0
    with Session.open("state", writable=False) as reopened:
        pane = PatternPane.for_session(reopened)
        assert pane.state == state
        expected = pane.draw(6, 9, 2 * APP_PANE_CELLS[1], APP_PANE_CELLS[0]).rgb
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), expected)


def test_show_options_override_the_session_view(make_session, run_cli, tmp_path):
    make_session("opts").close()
    plain, mean = tmp_path / "plain.png", tmp_path / "mean.png"
    assert run_cli("show", "opts", "--at", "3,4", "--out", plain, "--view", "raw").code == 0
    result = run_cli(
        "show", "opts", "--at", "3,4", "--out", mean, "--view", "mean", "--average", "3"
    )
    assert result.code == 0, result.err
    assert "3x3: 9 positions" in result.out
    with Session.open("opts", writable=False) as session:
        pane = PatternPane.for_session(session, PaneState(view="mean", average=3))
        expected = pane.draw(3, 4, 2 * APP_PANE_CELLS[1], APP_PANE_CELLS[0]).rgb
    np.testing.assert_array_equal(np.asarray(Image.open(mean).convert("RGB")), expected)
    assert not np.array_equal(np.asarray(Image.open(plain)), np.asarray(Image.open(mean)))
    full = tmp_path / "full.png"
    assert run_cli("show", "opts", "--at", "3,4", "--out", full, "--cells", "full").code == 0
    assert Image.open(full).size == (64, 64)  # the model input, one pixel per pixel


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--at", "99,1"], "outside the scan"),
        (["--at", "three,1"], "--at must look like"),
        (["--at", "1,1", "--view", "sideways"], "unknown view 'sideways'"),
        (["--at", "1,1", "--average", "4"], "unknown average 4"),
        (["--at", "1,1", "--cells", "80by40"], "--cells must look like"),
        (["--at", "1,1", "--variation", "sideways"], "unknown variation 'sideways'"),
    ],
)
def test_show_refuses_bad_options_in_one_line(make_session, run_cli, tmp_path, args, fragment):
    make_session("bad").close()
    result = run_cli("show", "bad", *args, "--out", tmp_path / "x.png")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "x.png").exists()


def test_show_refuses_an_output_that_is_not_a_png_or_has_no_folder(make_session, run_cli, tmp_path):
    make_session("out").close()
    assert_one_line_error(
        run_cli("show", "out", "--at", "1,1", "--out", tmp_path / "x.jpg"), ".png"
    )
    assert_one_line_error(
        run_cli("show", "out", "--at", "1,1", "--out", tmp_path / "no" / "x.png"), "folder"
    )


def test_detector_frames_are_prepared_exactly_like_the_model_inputs(make_session):
    # the simulated scan's detector is 64x64 and so are the model inputs: no pooling, so
    # the native frames must equal the cached inputs (hot pixels, log, normalisation)
    session = make_session("frames")
    cache = session.cache()
    inputs, frames = ModelInputs(cache), DetectorFrames(session.scan(), cache)
    assert inputs.shape == frames.shape == (64, 64)
    assert inputs.centre == pytest.approx(frames.centre)
    assert len(cache.hot_pixels) > 0  # the repair is part of what is compared
    rows, cols = slice(3, 6), slice(2, 6)
    np.testing.assert_allclose(frames.block(rows, cols), inputs.block(rows, cols), atol=2e-3)
    positions = np.array([[0, 0], [7, 3]])
    np.testing.assert_allclose(frames.gather(positions), inputs.gather(positions), atol=2e-3)


def test_the_scan_mean_is_the_mean_of_the_centred_patterns(make_session):
    session = make_session("mean")
    inputs = ModelInputs(session.cache())
    n_rx, n_ry = inputs.scan_shape
    mean = inputs.scan_mean("scan")
    everything = inputs.centred_block(slice(0, n_rx), slice(0, n_ry), "scan")
    np.testing.assert_allclose(mean, everything.mean(0), atol=1e-4)
    inputs.mean_limit = 4 * n_ry  # a large scan: whole rows spread over it
    rows = np.unique(inputs.mean_positions()[:, 0])
    assert len(rows) == 4 and rows[0] == 0 and rows[-1] == n_rx - 1
