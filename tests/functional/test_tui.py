"""The terminal app driven with Textual's Pilot: every key and flow, resume, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import assert_one_line_error, fake_model, one_hot, sim_truth

from ghosttui.render.pane import META_KEY, PaneState, default_state
from ghosttui.render.views import VIEWS
from ghosttui.session.keys import PAGE
from ghosttui.session.session import Session
from ghosttui.session.settings import ModelSpec, SamplingSpec
from ghosttui.tui.app import GhostApp
from ghosttui.tui.screens.goto import GoToScreen, parse_position
from ghosttui.tui.widgets.pattern_view import PatternView
from ghosttui.tui.widgets.scan_map import ScanMap


def answer(app: GhostApp, truth: np.ndarray) -> str:
    """The class key a perfect labeller presses for the current pattern."""
    current = app.controller.current()
    return ["h", "v", "n"][int(truth[current.rx, current.ry])]


def title(app: GhostApp) -> str:
    return str(app.query_one("#pattern-title").render())


# -- labelling keys ------------------------------------------------------------------------------
def test_class_keys_and_digits_label_the_query_and_advance(labelling_app):
    run = labelling_app("keys")

    async def scenario(app, pilot):
        first = app.controller.current()
        assert first is not None and first.source == "grid"
        await pilot.press("h")
        second = app.controller.current()
        assert (second.rx, second.ry) != (first.rx, first.ry)
        await pilot.press("2")
        third = app.controller.current()
        await pilot.press("n")
        labels = run.session.store.labels()
        assert labels[(first.rx, first.ry)].cls == "horizontal"
        assert labels[(second.rx, second.ry)].cls == "vertical"
        assert labels[(third.rx, third.ry)].cls == "none"
        assert {lab.source for lab in labels.values()} == {"grid"}
        now = app.controller.current()
        assert f"({now.rx}, {now.ry})" in title(app)  # the new query is on screen
        assert app.query_one(ScanMap).labels == {
            (first.rx, first.ry): 0,
            (second.rx, second.ry): 1,
            (third.rx, third.ry): 2,
        }
        await pilot.press("4")  # a digit beyond the classes does nothing
        assert len(run.session.store.labels()) == 3

    run.run(scenario)


def test_skip_moves_on_without_labelling(labelling_app):
    run = labelling_app("skip")

    async def scenario(app, pilot):
        first = app.controller.current()
        await pilot.press("space")
        now = app.controller.current()
        assert (now.rx, now.ry) != (first.rx, first.ry)
        assert run.session.store.labels() == {}
        assert [e.kind for e in run.session.store.events()] == ["skip"]

    run.run(scenario)


def test_undo_many_steps_reshows_each_undone_pattern(labelling_app):
    run = labelling_app("undo")

    async def scenario(app, pilot):
        shown = []
        for key in ("h", "v", "space", "n", "h"):
            current = app.controller.current()
            shown.append((current.rx, current.ry))
            await pilot.press(key)
        assert len(run.session.store.labels()) == 4
        for expected in reversed(shown):
            await pilot.press("u")
            current = app.controller.current()
            assert (current.rx, current.ry) == expected
            assert f"({expected[0]}, {expected[1]})" in title(app)
        assert run.session.store.labels() == {}
        await pilot.press("u")  # nothing left: a notice, no crash
        assert run.session.store.labels() == {}

    run.run(scenario)


# -- the manual cursor ---------------------------------------------------------------------------
@pytest.mark.slow
def test_manual_cursor_labelling_and_back_to_the_queue(labelling_app):
    run = labelling_app("manual")

    async def scenario(app, pilot):
        query = app.controller.current()
        await pilot.press("down", "down", "right")
        assert app.controller.cursor == (query.rx + 2, query.ry + 1)
        await pilot.press("n")
        label = run.session.store.labels()[(query.rx + 2, query.ry + 1)]
        assert (label.cls, label.source) == ("none", "manual")
        assert app.controller.cursor == (query.rx + 2, query.ry + 1)  # the cursor stays
        await pilot.press("L")  # vim-style move
        assert app.controller.cursor == (query.rx + 2, query.ry + 2)
        await pilot.press("escape")
        back = app.controller.current()
        assert not back.manual and (back.rx, back.ry) == (query.rx, query.ry)
        await pilot.press(*["up"] * (back.rx + 3))  # clamped at the scan's edge
        assert app.controller.cursor[0] == 0

    run.run(scenario)


def test_page_keys_jump_the_cursor_and_stop_at_the_edges(labelling_app):
    run = labelling_app("pages")
    n_rx, n_ry = run.session.scan_shape

    async def scenario(app, pilot):
        await pilot.press("down")  # manual mode at the query, one row down
        start = app.controller.cursor
        await pilot.press("pagedown")
        assert app.controller.cursor == (min(start[0] + PAGE, n_rx - 1), start[1])
        await pilot.press("pageup", "pageup", "pageup")
        assert app.controller.cursor == (0, start[1])
        await pilot.press("shift+right")
        assert app.controller.cursor == (0, min(start[1] + PAGE, n_ry - 1))
        await pilot.press("shift+left", "shift+left")
        assert app.controller.cursor == (0, 0)
        await pilot.press("shift+down")
        assert app.controller.cursor == (min(PAGE, n_rx - 1), 0)

    run.run(scenario)


def test_go_to_moves_the_cursor_to_a_typed_position(labelling_app):
    run = labelling_app("goto")
    n_rx, n_ry = run.session.scan_shape

    async def scenario(app, pilot):
        await pilot.press("g")
        assert isinstance(app.screen, GoToScreen)
        await pilot.press(*"99, 1", "enter")  # outside the scan: an error, the screen stays
        assert isinstance(app.screen, GoToScreen)
        assert "outside the scan" in str(app.screen.query_one("#goto-error").render())
        input_box = app.screen.query_one("#goto-input")
        input_box.value = ""
        await pilot.press(*f"{n_rx - 2}, {n_ry - 3}", "enter")
        assert not isinstance(app.screen, GoToScreen)
        assert app.controller.cursor == (n_rx - 2, n_ry - 3)
        assert f"({n_rx - 2}, {n_ry - 3})" in title(app)
        await pilot.press("v")  # labels the position gone to
        assert run.session.store.labels()[(n_rx - 2, n_ry - 3)].cls == "vertical"
        await pilot.press("g", "escape")  # cancel: nothing moves
        assert app.controller.cursor == (n_rx - 2, n_ry - 3)

    run.run(scenario)


@pytest.mark.parametrize(
    ("text", "expected"), [("3, 4", (3, 4)), ("(3,4)", (3, 4)), (" 3 4 ", (3, 4))]
)
def test_go_to_reads_positions_written_several_ways(text, expected):
    assert parse_position(text, (10, 10)) == expected


@pytest.mark.parametrize("text", ["3", "a, b", "3, 10", "-1, 2"])
def test_go_to_refuses_what_is_not_a_position_in_the_scan(text):
    with pytest.raises(ValueError):
        parse_position(text, (10, 10))


# -- views ---------------------------------------------------------------------------------------
def test_view_keys_cycle_and_are_remembered_by_the_session(labelling_app):
    run = labelling_app("views")

    async def first(app, pilot):
        pane = app.pane
        # a new session of horizontal / vertical / none starts at the transpose view
        assert pane.state == default_state(run.session.classes) == PaneState(view="transpose")
        views = [pane.state.view]
        for _ in range(7):
            await pilot.press("d")
            views.append(pane.state.view)
        order = list(VIEWS)
        start = order.index(views[0])
        assert views == [order[(start + i) % len(order)] for i in range(8)]
        await pilot.press("D")
        assert pane.state.view == views[6]  # backwards
        await pilot.press("d", "down", "right")  # the cursor to (1, 1), away from the corner
        assert pane.state.average == 3
        assert "3x3: 9 positions" in title(app)
        await pilot.press("a")
        assert pane.state.average == 5
        await pilot.press("z", "c", "b", "s")
        assert pane.state.zoom == "2x" and pane.state.contrast == "log"
        assert pane.state.references == "off"  # labels -> model (none yet: skipped) -> off
        await pilot.press("bracketright")
        return pane.state

    state = run.run(first)
    assert run.session.store.get_meta(META_KEY) == state.to_dict()
    run.reopen()

    async def second(app, pilot):
        return app.pane.state

    assert run.run(second) == state  # a restarted app shows the same view


def test_averaging_counts_positions_and_labels_still_go_to_the_query(labelling_app):
    run = labelling_app("average")

    async def scenario(app, pilot):
        await pilot.press("a")  # 3 x 3 -> 5 x 5
        query = app.controller.current()
        expected = app.pane.positions(query.rx, query.ry)
        assert f"5x5: {expected} positions" in title(app)
        assert expected < 25  # the first grid query sits at the scan's corner
        await pilot.press("h")
        assert list(run.session.store.labels()) == [(query.rx, query.ry)]

    run.run(scenario)


def test_native_zoom_shows_detector_pixels(labelling_app):
    run = labelling_app("native")

    async def scenario(app, pilot):
        for _ in range(3):
            await pilot.press("z")
        assert app.pane.state.zoom == "native"
        assert "detector 64x64 1:1" in title(app)
        canvas = app.query_one("#pattern-canvas")
        drawn = "".join(canvas.render_line(y).text for y in range(canvas.size.height))
        assert drawn.count("▀") >= 64 * 32

    run.run(scenario)


def test_references_appear_beside_the_query_once_labelled(labelling_app):
    run = labelling_app("refs")

    async def scenario(app, pilot):
        view = app.query_one(PatternView)
        query = app.controller.current()
        alone = app.pane.draw(query.rx, query.ry, 82, 76).rgb
        await pilot.press("h", "v")
        now = app.controller.current()
        with_refs = app.pane.draw(now.rx, now.ry, 82, 76)
        assert [name for name, _ in with_refs.references] == ["horizontal", "vertical"]
        assert alone.shape[0] == 64  # the query alone
        assert with_refs.rgb.shape[0] > 64  # a strip of references below it
        assert "refs labels 1/1" in title(app)
        assert view.position == (now.rx, now.ry)

    run.run(scenario)


def test_contrast_clip_layers_and_help(labelling_app):
    run = labelling_app("view")

    async def scenario(app, pilot):
        pane = app.pane
        await pilot.press("bracketright")
        assert pane.state.scale != PaneState().scale  # a difference view: its scale
        while pane.state.view != "raw":
            await pilot.press("d")
        await pilot.press("bracketright")
        assert pane.state.clip != 99.7  # the raw view: its white point
        await pilot.press("m")
        assert app.query_one(ScanMap).map_layer == "adf"  # no prediction yet: skipped
        await pilot.press("Z")
        assert app.query_one(ScanMap).zoom == "1:1"
        await pilot.press("question_mark")
        assert app.screen.__class__.__name__ == "HelpScreen"
        rows = app.screen.rows
        assert {r[1] for r in rows} >= {"view", "average", "references", "goto", "page_down"}
        assert ("h / 1", "label_1", "label as horizontal") in rows
        await pilot.press("escape")
        assert app.screen.__class__.__name__ != "HelpScreen"

    run.run(scenario)


def test_map_shows_the_domain_map_when_the_first_model_lands(labelling_app):
    run = labelling_app("layer")
    shape = (*run.session.scan_shape, 3)

    async def scenario(app, pilot):
        scan_map = app.query_one(ScanMap)
        assert scan_map.map_layer == "labels"
        scan_map.update_state(probabilities=np.full(shape, 1 / 3, np.float32))
        await pilot.pause()
        assert scan_map.map_layer == "prediction"
        await pilot.press("m")  # the user's choice is remembered
        assert scan_map.map_layer == "confidence"
        await pilot.pause()

    run.run(scenario)
    assert run.session.store.get_meta("map")["layer"] == "confidence"


def test_external_viewer_gets_the_pattern_as_png(labelling_app, tmp_path):
    run = labelling_app("viewer")
    log = tmp_path / "viewer.log"

    async def scenario(app, pilot):
        app.viewer.path = tmp_path / "pattern.png"
        await pilot.press("o")
        await pilot.pause(0.3)
        return app.viewer.path

    png = run.run(scenario, render="external", viewer=f"sh -c 'echo $0 >> {log}'")
    from PIL import Image

    assert Image.open(png).size[0] >= 64
    assert str(png) in log.read_text()


# -- keys from session.toml ----------------------------------------------------------------------
def test_keys_table_rebinds_actions_and_class_keys_win_clashes(labelling_app):
    run = labelling_app("rebind", classes=["alpha", "delta", "none"], keys=["x", "y", "n"])
    settings = run.session.settings
    settings.keys = {"skip": "k", "view": "y", "undo": "backspace", "nonsense": "q"}
    run.session.save_settings()
    run.reopen()

    async def scenario(app, pilot):
        first = app.controller.current()
        await pilot.press("k")  # skip, rebound
        assert [e.kind for e in run.session.store.events()] == ["skip"]
        assert app.controller.current() != first
        await pilot.press("y")  # a class key, though [keys] gave it to view
        assert app.pane.state.view == PaneState().view
        assert next(iter(run.session.store.labels().values())).cls == "delta"
        await pilot.press("backspace")
        assert run.session.store.labels() == {}
        assert "view" in app.keys.disabled
        messages = [n.message for n in app._notifications]
        assert any("nonsense" in m for m in messages)
        assert any("no longer does view" in m for m in messages)

    run.run(scenario)


# -- rounds and training ---------------------------------------------------------------------------
@pytest.mark.slow
def test_a_model_trains_when_a_round_ends_never_per_label(labelling_app, sim_file):
    truth = sim_truth(sim_file)
    run = labelling_app("rounds", sampling=SamplingSpec(budget=100))
    session = run.session

    async def scenario(app, pilot):
        round_one = session.store.pending_in_round(1)
        assert round_one > 31
        for _ in range(30):  # 30 labels into the first round: no training at all
            await pilot.press(answer(app, truth))
            assert app.training_worker is None
        assert session.store.models() == [] and app.controller.round == 1
        scan_map = app.query_one(ScanMap)
        assert scan_map.map_layer == "labels"
        while app.controller.round == 1:  # finish the round
            await pilot.press(answer(app, truth))
        # round 1's job was started (its thread may not run yet, or be done already)
        assert app.training_worker is not None or len(session.store.models()) == 1
        assert app.controller.next_training() is None  # and no other is due
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        (model,) = session.store.models()
        assert (model.round, model.state) == (1, "current")
        assert model.up_to_event == session.store.round_plan(1).ended_event
        assert scan_map.probabilities is not None
        assert scan_map.map_layer == "prediction"  # the domain map is shown as soon as it lands
        assert (session.dir / model.checkpoint).exists()
        # round 2 (boundary midpoints) was queued at once, while the model trained
        assert app.controller.current().source == "boundary"
        await pilot.press("p")  # no candidate model: a notice, nothing changes
        assert [(m.id, m.state) for m in session.store.models()] == [(model.id, "current")]

    run.run(scenario)


@pytest.mark.slow
def test_the_app_runs_the_loop_the_bench_measures(labelling_app, sim_file, tmp_path):
    """A simulated labeller pressing keys in the real app gives the bench's labels and map."""
    from ghosttui.loop.bench import SimulatedLabeller, run_once

    truth = sim_truth(sim_file)
    classes = ["horizontal", "vertical", "none"]
    budget, seed = 40, 2
    bench = run_once(
        sim_file, truth, classes, "hybrid", budget, seed, workdir=tmp_path, learner="logreg"
    )
    with Session.open(str(tmp_path / f"bench-hybrid-{budget}-{seed}"), writable=False) as done:
        bench_labels = {pos: (lab.cls, lab.source) for pos, lab in done.store.labels().items()}
        bench_models = [(m.round, m.up_to_event, m.state) for m in done.store.models()]

    run = labelling_app(
        "same",
        model=ModelSpec(seed=seed, learner="logreg"),
        sampling=SamplingSpec(strategy="hybrid", budget=budget, seed=seed),
    )
    labeller = SimulatedLabeller(truth, classes, seed=seed)
    keys = {name: key for name, key in zip(classes, "hvn", strict=True)}

    async def scenario(app, pilot):
        for _ in range(500):
            current = app.controller.current()
            if current is None:
                if app.controller.done and not app.training_running():
                    break
                await app.workers.wait_for_complete()  # an uncertainty round waits
                await pilot.pause(0.05)
                continue
            await pilot.press(keys[labeller.answer(current)])
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        return app.controller.probabilities

    probabilities = run.run(scenario)
    store = run.session.store
    app_labels = {pos: (lab.cls, lab.source) for pos, lab in store.labels().items()}
    app_models = [(m.round, m.up_to_event, m.state) for m in store.models()]
    assert app_labels == bench_labels
    assert app_models == bench_models
    assert float(np.mean(probabilities.argmax(-1) == truth)) == pytest.approx(bench.accuracy)


def first_round_in_use(run, truth: np.ndarray, **metrics: object):
    """A controller on ``run``'s session whose round 1, labelled from the truth, ended and
    whose model (a fake one, right everywhere, with ``metrics``) is in use."""
    from ghosttui.loop.controller import LabellingController

    loop = LabellingController(run.session)
    while loop.round == 1:
        current = loop.current()
        loop.label(["horizontal", "vertical", "none"][int(truth[current.rx, current.ry])])
    job = loop.next_training()
    loop.training_started(job)
    assert loop.training_finished(fake_model(run.session, job, one_hot(truth), **metrics)).take
    return loop


def test_promote_key_puts_the_candidate_model_in_use(labelling_app, sim_file):
    """A model that measured worse waits as a candidate; ``p`` uses it, and the map shows it."""

    truth = sim_truth(sim_file)
    run = labelling_app("promote", sampling=SamplingSpec(budget=40, holdout=12, grid_step=5))
    loop = first_round_in_use(run, truth)
    good = loop.model
    job = loop.request_training(epochs=1)
    loop.training_started(job)
    worse = one_hot(truth, wrong=0.9)
    assert not loop.training_finished(fake_model(run.session, job, worse)).take

    async def scenario(app, pilot):
        assert app.controller.model.id == good.id and len(app.controller.candidates()) == 1
        await pilot.press("p")
        assert app.controller.model.id != good.id and app.controller.candidates() == []
        np.testing.assert_array_equal(app.query_one(ScanMap).probabilities, worse)
        await pilot.press("p")  # nothing left to promote: a notice, nothing changes
        return app.controller.model.id

    promoted = run.run(scenario)
    states = {m.id: m.state for m in run.session.store.models()}
    assert states == {good.id: "retired", promoted: "current"}


def test_the_side_panel_says_why_auto_took_its_learner(labelling_app, sim_file):

    truth = sim_truth(sim_file)
    run = labelling_app("why", sampling=SamplingSpec(budget=40, holdout=0, grid_step=5))
    chosen = {
        "learner": "logreg",
        "chosen_by": "auto",
        "cv_by_learner": {"cnn": 15 / 34, "logreg": 0.9},
        "cv_n_by_learner": {"cnn": 34, "logreg": 100},
    }
    first_round_in_use(run, truth, **chosen)

    async def scenario(app, pilot):
        await pilot.pause(0.05)
        return str(app.query_one("#training-text").render())

    text = " ".join(run.run(scenario).split())
    assert "(round 1, logreg) in use" in text
    assert "auto took logreg: cross-validated 90% (n=100), the CNN 44% (n=34)" in text


def test_retrain_key_refuses_while_a_class_has_no_label(labelling_app):
    run = labelling_app("retrain")

    async def scenario(app, pilot):
        await pilot.press("h", "r")
        assert not app.training_running()

    run.run(scenario)


# -- resume ------------------------------------------------------------------------------------------
def test_resume_after_quit_is_at_the_same_query_round_and_cursor(labelling_app):
    run = labelling_app("resume")

    async def first(app, pilot):
        await pilot.press("h", "v", "space")
        position = app.controller.current()
        await pilot.press("q")
        return (position.rx, position.ry)

    where = run.run(first)
    labels = run.session.store.labels()
    run.reopen()

    async def second(app, pilot):
        current = app.controller.current()
        return (current.rx, current.ry), app.controller.labels

    resumed_at, resumed_labels = run.run(second)
    assert resumed_at == where
    assert resumed_labels.keys() == labels.keys()
    assert run.session.store.round == 1 and run.session.store.models() == []


def test_resume_in_manual_mode_keeps_the_cursor(labelling_app):
    run = labelling_app("cursor")

    async def first(app, pilot):
        await pilot.press("down", "right", "right", "q")
        return app.controller.cursor

    cursor = run.run(first)
    run.reopen()

    async def second(app, pilot):
        return app.controller.current()

    current = run.run(second)
    assert current.manual and (current.rx, current.ry) == cursor


KILLED = r"""
import asyncio, os, signal, sys
from ghosttui.session.session import Session
from ghosttui.tui.app import create_app

async def main():
    session = Session.open(sys.argv[1])
    app = create_app(session, render="halfblock")
    async with app.run_test(size=(160, 48)) as pilot:
        for key in sys.argv[2:]:
            await pilot.press(key)
        current = app.controller.current()
        print(f"at {current.rx} {current.ry} labels {len(session.store.labels())}", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


@pytest.mark.slow
def test_resume_after_the_process_is_killed(labelling_app):
    run = labelling_app("killed")
    run.session.close()
    keys = ["h", "v", "n", "space", "h", "u", "v"]
    proc = subprocess.run(
        [sys.executable, "-c", KILLED, "killed", *keys],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    words = proc.stdout.split()
    at, count = (int(words[1]), int(words[2])), int(words[4])
    run.session = Session.open("killed")  # the lock died with the process
    assert len(run.session.store.labels()) == count == 4
    assert run.session.store.events()[-1].kind == "label"

    async def check(app, pilot):
        current = app.controller.current()
        return current.rx, current.ry

    assert run.run(check) == at


# -- bad input ------------------------------------------------------------------------------------
def test_small_terminal_shows_a_message_and_survives_keys(labelling_app):
    run = labelling_app("small")

    async def scenario(app, pilot):
        assert app.screen.has_class("-too-small")
        message = str(app.query_one("#too-small").render())
        assert "120x40" in message and "100x30" in message
        await pilot.press("c", "z", "m", "d", "a")  # views may change; nothing crashes
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert not app.screen.has_class("-too-small")

    run.run(scenario, size=(100, 30))


def test_label_command_on_a_missing_or_locked_session(run_cli, labelling_app, hold_session):
    assert_one_line_error(run_cli("label", "nope", "--render", "halfblock"), "no session 'nope'")
    labelling_app("held").session.close()
    holder = hold_session("held")
    assert_one_line_error(run_cli("label", "held", "--render", "halfblock"), f"pid {holder.pid}")


def test_unknown_render_mode_is_a_clear_error(run_cli, labelling_app):
    labelling_app("render").session.close()
    assert_one_line_error(run_cli("label", "render", "--render", "braille"), "--render")


@pytest.mark.parametrize("mode", ["halfblock", "ascii"])
def test_cell_modes_draw_the_pattern(labelling_app, mode):
    run = labelling_app(f"draw-{mode}")

    async def scenario(app, pilot):
        canvas = app.query_one("#pattern-canvas")
        lines = [canvas.render_line(y).text for y in range(canvas.size.height)]
        drawn = "".join(lines)
        if mode == "halfblock":
            assert drawn.count("▀") >= 64 * 32
        else:
            assert "▀" not in drawn and len(set(drawn) - {" "}) >= 3

    run.run(scenario, render=mode)


@pytest.mark.parametrize("mode", ["sixel", "kitty"])
def test_terminal_graphics_modes_get_the_pattern_as_an_image(labelling_app, mode):
    run = labelling_app(f"graphics-{mode}")

    async def scenario(app, pilot):
        image = app.query_one("#pattern-graphics").image
        assert image is not None and image.size == (64, 64)  # full resolution, no references
        await pilot.press("h")
        after = app.query_one("#pattern-graphics").image
        assert after is not image  # the next pattern
        assert after.size[1] > 64  # with a reference strip under it now

    run.run(scenario, render=mode)


def test_a_restarted_app_keeps_the_remembered_map_layer_over_an_existing_model():
    from textual.app import App

    probabilities = np.full((24, 16, 3), 1 / 3, np.float32)

    class MapOnly(App[None]):
        def __init__(self) -> None:
            super().__init__()
            self.changes: list[ScanMap.ViewChanged] = []

        def compose(self):
            yield ScanMap(id="map")

        def on_scan_map_view_changed(self, message: ScanMap.ViewChanged) -> None:
            self.changes.append(message)

    async def scenario():
        app = MapOnly()
        async with app.run_test(size=(60, 40)) as pilot:
            scan_map = app.query_one(ScanMap)
            scan_map.configure(
                np.ones((24, 16)),
                np.ones((24, 16)),
                ["a", "b", "c"],
                ["#ff0000", "#00ff00", "#0000ff"],
            )
            changes = app.changes
            scan_map.restore("adf", "1:1", probabilities)
            scan_map.update_state(probabilities=probabilities)
            await pilot.pause()
            assert (scan_map.map_layer, scan_map.zoom) == ("adf", "1:1")
            assert changes == []  # restoring is not a change to remember
            scan_map.cycle_layer()  # a user's change is
            await pilot.pause()
            assert [c.layer for c in changes] == ["labels"]
            fresh = ScanMap()
            fresh.restore(None, None, probabilities)  # a model and nothing remembered
            assert fresh.map_layer == "prediction"

    import asyncio

    asyncio.run(scenario())
