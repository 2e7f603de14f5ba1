"""Snapshot tests of the main screen, and the real app in tmux."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ghosttui.render.pane import META_KEY, PaneState
from ghosttui.render.views import VIEWS
from ghosttui.session.session import Session
from ghosttui.session.settings import make_classes
from ghosttui.tui.app import create_app

SIZE = (160, 48)


async def settled(pilot) -> None:
    """Let the pane's background preparation (descan fit, scan mean) finish and be drawn."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.fixture
def snapshot_session(sim_file: Path) -> Session:
    session = Session.create("snap", sim_file, classes=make_classes())
    yield session
    session.close()


def test_main_screen(snap_compare, snapshot_session):
    app = create_app(snapshot_session, render="halfblock")
    assert snap_compare(app, run_before=settled, terminal_size=SIZE)


def test_main_screen_after_labels_and_manual_cursor(snap_compare, snapshot_session):
    app = create_app(snapshot_session, render="halfblock")
    assert snap_compare(
        app, run_before=settled, terminal_size=SIZE, press=["h", "v", "n", "down", "right", "c"]
    )


def test_help_screen(snap_compare, snapshot_session):
    app = create_app(snapshot_session, render="halfblock")
    assert snap_compare(app, run_before=settled, terminal_size=SIZE, press=["question_mark"])


def test_too_small_terminal(snap_compare, snapshot_session):
    app = create_app(snapshot_session, render="halfblock")
    assert snap_compare(app, run_before=settled, terminal_size=(100, 30))


@pytest.mark.parametrize("view", list(VIEWS))
def test_pattern_pane_in_each_view(snap_compare, snapshot_session, view):
    """Each view at a manual position inside the scan, 3x3 averaged, with class references."""
    store = snapshot_session.store
    for rx, ry, cls in [(2, 3, "horizontal"), (20, 12, "vertical"), (12, 8, "none")]:
        store.label(rx, ry, cls, "manual")
    store.set_meta(META_KEY, PaneState(view=view, average=3).to_dict())
    store.set_meta("cursor", [10, 7])
    app = create_app(snapshot_session, render="halfblock")
    assert snap_compare(app, run_before=settled, terminal_size=SIZE)


def test_go_to_screen(snap_compare, snapshot_session):
    app = create_app(snapshot_session, render="halfblock")
    assert snap_compare(
        app, run_before=settled, terminal_size=SIZE, press=["g", "1", "2", ",", " ", "5"]
    )


# -- the real app, in tmux ---------------------------------------------------------------------
def _tmux(socket: Path, *args: str) -> str:
    result = subprocess.run(
        ["tmux", "-S", str(socket), *args], capture_output=True, text=True, timeout=20
    )
    return result.stdout


def _wait_for(socket: Path, text: str, timeout: float = 40.0, escapes: bool = False) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux(socket, "capture-pane", "-p", *(["-e"] if escapes else []), "-t", "app")
        if text in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared on the screen:\n{screen}")


@pytest.mark.slow
@pytest.mark.tmux
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_real_app_in_tmux(tmp_path, sim_file, sessions_dir, cache_dir):
    Session.create("tmux", sim_file, classes=make_classes()).close()
    socket = tmp_path / "tmux.sock"
    env = " ".join(
        f"{k}={v}"
        for k, v in {
            "COLORTERM": "truecolor",
            "GHOSTTUI_SESSIONS": sessions_dir,
            "GHOSTTUI_CACHE_DIR": cache_dir,
            "PYTHONPATH": os.pathsep.join(sys.path),
        }.items()
    )
    command = f"env -u COLUMNS -u LINES {env} {sys.executable} -m ghosttui label tmux --render auto"
    _tmux(
        socket,
        "-f",
        "/dev/null",
        "new-session",
        "-d",
        "-s",
        "app",
        "-x",
        "160",
        "-y",
        "48",
        command,
    )
    _tmux(socket, "set-option", "-t", "app", "window-size", "manual")
    _tmux(socket, "resize-window", "-t", "app", "-x", "160", "-y", "48")
    try:
        _wait_for(socket, "query (")
        screen = _wait_for(socket, "h v n label")  # the footer is drawn last
        assert "grid" in screen
        assert screen.count("▀") > 64 * 32  # the pattern, in half blocks (auto chose them in tmux)
        coloured = _wait_for(socket, "38;2;", escapes=True)  # truecolor reached the terminal
        assert "48;2;" in coloured
        _tmux(socket, "send-keys", "-t", "app", "h")
        _wait_for(socket, "recent (")
        _tmux(socket, "send-keys", "-t", "app", "v")
        _tmux(socket, "send-keys", "-t", "app", "u")
        _wait_for(socket, "undid label vertical")
        _tmux(socket, "send-keys", "-t", "app", "q")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "app" in _tmux(socket, "list-sessions"):
            time.sleep(0.2)
    finally:
        _tmux(socket, "kill-server")
    with Session.open("tmux", writable=False) as session:
        labels = session.store.labels()
    assert [lab.cls for lab in labels.values()] == ["horizontal"]
