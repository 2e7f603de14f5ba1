"""The terminal app driven with Textual's Pilot: every key and flow, resume, bad input."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, sim_truth

from ghosttui.session.session import Session
from ghosttui.session.settings import ModelSpec, SamplingSpec, make_classes
from ghosttui.tui.app import GhostApp, create_app
from ghosttui.tui.widgets.pattern_view import PatternView
from ghosttui.tui.widgets.scan_map import ScanMap

SIZE = (160, 48)
FAST_MODEL = ModelSpec(width=8, epochs=12)


def new_session(name: str, data: Path, **kw: object) -> Session:
    kw.setdefault("model", FAST_MODEL)
    return Session.create(name, data, classes=make_classes(), **kw)


def run(coro):  # the tests are plain functions; each scenario runs in its own loop
    return asyncio.run(coro)


def answer(app: GhostApp, truth: np.ndarray) -> str:
    """The class key a perfect labeller presses for the current pattern."""
    current = app.controller.current()
    return ["h", "v", "n"][int(truth[current.rx, current.ry])]


# -- labelling keys ------------------------------------------------------------------------------
def test_class_keys_and_digits_label_the_query_and_advance(sim_file):
    session = new_session("keys", sim_file)

    async def scenario():
        app = create_app(session, render="halfblock")
        async with app.run_test(size=SIZE) as pilot:
            first = app.controller.current()
            assert first is not None and first.source == "grid"
            await pilot.press("h")
            second = app.controller.current()
            assert (second.rx, second.ry) != (first.rx, first.ry)
            await pilot.press("2")
            third = app.controller.current()
            await pilot.press("n")
            labels = session.store.labels()
            assert labels[(first.rx, first.ry)].cls == "horizontal"
            assert labels[(second.rx, second.ry)].cls == "vertical"
            assert labels[(third.rx, third.ry)].cls == "none"
            assert {lab.source for lab in labels.values()} == {"grid"}
            # the pattern on screen is the new query's
            title = str(app.query_one("#pattern-title").render())
            now = app.controller.current()
            assert f"({now.rx}, {now.ry})" in title
            # the map marks every labelled position
            assert app.query_one(ScanMap).labels == {
                (first.rx, first.ry): 0,
                (second.rx, second.ry): 1,
                (third.rx, third.ry): 2,
            }

    run(scenario())
    session.close()


def test_skip_moves_on_without_labelling(sim_file):
    session = new_session("skip", sim_file)

    async def scenario():
        app = create_app(session, render="halfblock")
        async with app.run_test(size=SIZE) as pilot:
            first = app.controller.current()
            await pilot.press("space")
            assert (app.controller.current().rx, app.controller.current().ry) != (
                first.rx,
                first.ry,
            )
            assert session.store.labels() == {}
            assert [e.kind for e in session.store.events()] == ["skip"]

    run(scenario())
    session.close()


def test_undo_many_steps_reshows_each_undone_pattern(sim_file):
    session = new_session("undo", sim_file)

    async def scenario():
        app = create_app(session, render="halfblock")
        async with app.run_test(size=SIZE) as pilot:
            shown = []
            for key in ("h", "v", "space", "n", "h"):
                current = app.controller.current()
                shown.append((current.rx, current.ry))
                await pilot.press(key)
            assert len(session.store.labels()) == 4
            for expected in reversed(shown):
                await pilot.press("u")
                current = app.controller.current()
                assert (current.rx, current.ry) == expected
                title = str(app.query_one("#pattern-title").render())
                assert f"({expected[0]}, {expected[1]})" in title
            assert session.store.labels() == {}
            await pilot.press("u")  # nothing left: a notice, no crash
            assert session.store.labels() == {}

    run(scenario())
    session.close()


@pytest.mark.slow
def test_manual_cursor_labelling_and_back_to_the_queue(sim_file):
    session = new_session("manual", sim_file)

    async def scenario():
        app = create_app(session, render="halfblock")
        async with app.run_test(size=SIZE) as pilot:
            query = app.controller.current()
            await pilot.press("down", "down", "right")
            assert app.controller.cursor == (query.rx + 2, query.ry + 1)
            await pilot.press("n")
            label = session.store.labels()[(query.rx + 2, query.ry + 1)]
            assert (label.cls, label.source) == ("none", "manual")
            assert app.controller.cursor == (query.rx + 2, query.ry + 1)  # the cursor stays
            await pilot.press("L")  # vim-style move
            assert app.controller.cursor == (query.rx + 2, query.ry + 2)
            await pilot.press("escape")
            back = app.controller.current()
            assert not back.manual and (back.rx, back.ry) == (query.rx, query.ry)
            # the cursor is clamped at the scan's edges
            await pilot.press(*["up"] * 50)
            assert app.controller.cursor[0] == 0

    run(scenario())
    session.close()


@pytest.mark.slow
def test_view_keys_change_contrast_zoom_raw_and_layers(sim_file):
    session = new_session("view", sim_file)

    async def scenario():
        app = create_app(session, render="halfblock")
        async with app.run_test(size=SIZE) as pilot:
            view = app.query_one(PatternView)
            modes = [view.contrast.mode]
            for _ in range(3):
                await pilot.press("c")
                modes.append(view.contrast.mode)
            assert modes == ["linear", "log", "gamma", "linear"]
            await pilot.press("z")
            assert view.zoom == 2
            await pilot.press("bracketright")
            assert view.contrast.high != 99.7
            await pilot.press("w")
            assert app.show_raw and "raw detector" in str(app.query_one("#pattern-title").render())
            await pilot.press("w")
            assert not app.show_raw
            await pilot.press("m")
            assert app.query_one(ScanMap).map_layer == "adf"  # no prediction yet: skipped
            await pilot.press("Z")
            assert app.query_one(ScanMap).zoom == "1:1"
            await pilot.press("question_mark")
            assert app.screen.__class__.__name__ == "HelpScreen"
            await pilot.press("escape")
            assert app.screen.__class__.__name__ != "HelpScreen"

    run(scenario())
    session.close()


def test_external_viewer_gets_the_pattern_as_png(sim_file, tmp_path):
    session = new_session("viewer", sim_file)
    log = tmp_path / "viewer.log"

    async def scenario():
        app = create_app(session, render="external", viewer=f"sh -c 'echo $0 >> {log}'")
        app.viewer.path = tmp_path / "pattern.png"
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("o")
            await pilot.pause(0.3)
        return app.viewer.path

    png = run(scenario())
    from PIL import Image

    assert Image.open(png).size[0] >= 64
    assert str(png) in log.read_text()
    session.close()


# -- rounds and training ---------------------------------------------------------------------------
@pytest.mark.slow
def test_a_model_trains_when_a_round_ends_never_per_label(sim_file):
    truth = sim_truth(sim_file)
    session = new_session("rounds", sim_file, sampling=SamplingSpec(budget=100))

    async def scenario():
        app = create_app(session, render="halfblock")
        async with app.run_test(size=SIZE) as pilot:
            round_one = session.store.pending_in_round(1)
            assert round_one > 31
            for _ in range(30):  # 30 labels into the first round: no training at all
                await pilot.press(answer(app, truth))
                assert app.training_worker is None
            assert session.store.models() == [] and app.controller.round == 1
            while app.controller.round == 1:  # finish the round
                await pilot.press(answer(app, truth))
            assert app.training_running()  # exactly one job: round 1's
            assert app.controller.next_training() is None
            await app.workers.wait_for_complete()
            await pilot.pause(0.1)
            (model,) = session.store.models()
            assert (model.round, model.state) == (1, "current")
            assert model.up_to_event == session.store.round_plan(1).ended_event
            assert app.query_one(ScanMap).probabilities is not None
            assert (session.dir / model.checkpoint).exists()
            # round 2 (boundary midpoints) was queued at once, while the model trained
            assert app.controller.current().source == "boundary"

    run(scenario())
    session.close()


@pytest.mark.slow
def test_the_app_runs_the_loop_the_bench_measures(sim_file, tmp_path):
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

    session = new_session(
        "same",
        sim_file,
        model=ModelSpec(seed=seed, learner="logreg"),
        sampling=SamplingSpec(strategy="hybrid", budget=budget, seed=seed),
    )
    labeller = SimulatedLabeller(truth, classes, seed=seed)
    keys = {name: key for name, key in zip(classes, "hvn", strict=True)}

    async def scenario():
        app = create_app(session, render="halfblock")
        async with app.run_test(size=SIZE) as pilot:
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

    probabilities = run(scenario())
    app_labels = {pos: (lab.cls, lab.source) for pos, lab in session.store.labels().items()}
    app_models = [(m.round, m.up_to_event, m.state) for m in session.store.models()]
    session.close()
    assert app_labels == bench_labels
    assert app_models == bench_models
    assert float(np.mean(probabilities.argmax(-1) == truth)) == pytest.approx(bench.accuracy)


def test_retrain_key_refuses_while_a_class_has_no_label(sim_file):
    session = new_session("retrain", sim_file)

    async def scenario():
        app = create_app(session, render="halfblock")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("h", "r")
            assert not app.training_running()

    run(scenario())
    session.close()


# -- resume ------------------------------------------------------------------------------------------
def test_resume_after_quit_is_at_the_same_query_round_and_cursor(sim_file):
    session = new_session("resume", sim_file)

    async def first():
        app = create_app(session, render="halfblock")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("h", "v", "space")
            position = app.controller.current()
            await pilot.press("q")
        return (position.rx, position.ry)

    where = run(first())
    labels = session.store.labels()
    session.close()
    reopened = Session.open("resume")

    async def second():
        app = create_app(reopened, render="halfblock")
        async with app.run_test(size=SIZE):
            current = app.controller.current()
            return (current.rx, current.ry), app.controller.labels

    resumed_at, resumed_labels = run(second())
    assert resumed_at == where
    assert resumed_labels.keys() == labels.keys()
    assert reopened.store.round == 1 and reopened.store.models() == []
    reopened.close()


def test_resume_in_manual_mode_keeps_the_cursor(sim_file):
    session = new_session("cursor", sim_file)

    async def first():
        app = create_app(session, render="halfblock")
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("down", "right", "right", "q")
        return app.controller.cursor

    cursor = run(first())
    session.close()
    reopened = Session.open("cursor")

    async def second():
        app = create_app(reopened, render="halfblock")
        async with app.run_test(size=SIZE):
            return app.controller.current()

    current = run(second())
    assert current.manual and (current.rx, current.ry) == cursor
    reopened.close()


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
def test_resume_after_the_process_is_killed(sim_file):
    new_session("killed", sim_file).close()
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
    reopened = Session.open("killed")  # the lock died with the process
    try:
        assert len(reopened.store.labels()) == count == 4
        assert reopened.store.events()[-1].kind == "label"

        async def check():
            app = create_app(reopened, render="halfblock")
            async with app.run_test(size=SIZE):
                current = app.controller.current()
                return current.rx, current.ry

        assert run(check()) == at
    finally:
        reopened.close()


# -- bad input ------------------------------------------------------------------------------------
def test_small_terminal_shows_a_message_and_survives_keys(sim_file):
    session = new_session("small", sim_file)

    async def scenario():
        app = create_app(session, render="halfblock")
        async with app.run_test(size=(100, 30)) as pilot:
            assert app.screen.has_class("-too-small")
            message = str(app.query_one("#too-small").render())
            assert "120x40" in message and "100x30" in message
            await pilot.press("c", "z", "m")  # views may change; nothing crashes
            await pilot.resize_terminal(160, 48)
            await pilot.pause()
            assert not app.screen.has_class("-too-small")

    run(scenario())
    session.close()


def test_label_command_on_a_missing_or_locked_session(run_cli, sim_file, hold_session):
    assert_one_line_error(run_cli("label", "nope", "--render", "halfblock"), "no session 'nope'")
    new_session("held", sim_file).close()
    holder = hold_session("held")
    assert_one_line_error(run_cli("label", "held", "--render", "halfblock"), f"pid {holder.pid}")


def test_unknown_render_mode_is_a_clear_error(run_cli, sim_file):
    new_session("render", sim_file).close()
    assert_one_line_error(run_cli("label", "render", "--render", "braille"), "--render")


@pytest.mark.parametrize("mode", ["halfblock", "ascii"])
def test_cell_modes_draw_the_pattern(sim_file, mode):
    session = new_session(f"draw-{mode}", sim_file)

    async def scenario():
        app = create_app(session, render=mode)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            canvas = app.query_one("#pattern-canvas")
            lines = [canvas.render_line(y).text for y in range(canvas.size.height)]
            drawn = "".join(lines)
            if mode == "halfblock":
                assert drawn.count("▀") >= 64 * 32
            else:
                assert "▀" not in drawn and len(set(drawn) - {" "}) >= 3

    run(scenario())
    session.close()


@pytest.mark.parametrize("mode", ["sixel", "kitty"])
def test_terminal_graphics_modes_get_the_pattern_as_an_image(sim_file, mode):
    session = new_session(f"graphics-{mode}", sim_file)

    async def scenario():
        app = create_app(session, render=mode)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            image = app.query_one("#pattern-graphics").image
            assert image is not None and image.size == (64, 64)
            await pilot.press("h")
            assert app.query_one("#pattern-graphics").image is not image  # the next pattern

    run(scenario())
    session.close()
