"""Nothing saved is ever lost (issue 12), class 5: a full disk and read-only places.

ENOSPC is injected into every writer (on the platform's own error path, ``fsync``
of the finished temporary, or inside HDF5 or SQLite); where the tests may mount
a tmpfs, the same commands also run against a really full disk, each in a
process of its own (a crash would show as a signal, not a failed test).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_csv
from fault_kit import assert_error_line, make_session_with_rounds, state, temporaries

import ghosttui.files as files
from ghosttui.session.session import Session
from ghosttui.session.settings import make_classes
from ghosttui.session.store import LabelStore


@pytest.fixture
def data(sim_file, tmp_path):
    path = tmp_path / "data" / "scan.h5"
    path.parent.mkdir()
    shutil.copyfile(sim_file, path)
    return path


@pytest.fixture
def session_dir(data, sessions_dir):
    return make_session_with_rounds("s", data, rounds=1)


def full_disk_at(monkeypatch, name: str) -> None:
    """ENOSPC when the finished temporary of ``name`` is flushed to disk (delayed allocation)."""
    real = files._fsync_file

    def fsync(path: Path) -> None:
        if path.name.startswith(f".{name}") and ".tmp-" in path.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(path)

    monkeypatch.setattr(files, "_fsync_file", fsync)


def full_disk_in_hdf5(monkeypatch, after_bytes: int = 0) -> None:
    """ENOSPC inside HDF5's writes, after ``after_bytes``."""
    real = files._ShieldedFile.write
    written = [0]

    def write(self, data):
        written[0] += memoryview(data).nbytes
        if written[0] > after_bytes and self.error is None:
            self.error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    monkeypatch.setattr(files._ShieldedFile, "write", write)


class FullDatabase:
    """A SQLite connection that cannot write: reads work, writes of labels and rounds fail."""

    def __init__(self, db: sqlite3.Connection, full: list[bool], message: str) -> None:
        self._db = db
        self._full = full
        self._message = message

    def _check(self, sql: str) -> None:
        words = ("INTO events", "INTO rounds", "INTO queue", "UPDATE queue", "INTO meta")
        if self._full[0] and any(w in sql for w in words):
            raise sqlite3.OperationalError(self._message)

    def execute(self, sql: str, *args):
        self._check(sql)
        return self._db.execute(sql, *args)

    def executemany(self, sql: str, *args):
        self._check(sql)
        return self._db.executemany(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self._db, name)


def full_database(monkeypatch, message: str = "database or disk is full") -> list[bool]:
    """Every label store opened from now on fails its writes (until ``full[0] = False``)."""
    full = [True]
    real = LabelStore._connect

    def connect(self, mode):
        return FullDatabase(real(self, mode), full, message)

    monkeypatch.setattr(LabelStore, "_connect", connect)
    return full


# -- every writer, with ENOSPC injected ---------------------------------------------------------
def _previous_outputs(run_cli, tmp_path):
    """Outputs of an earlier run, which a failed run must leave as they were."""
    assert (
        run_cli(
            "simulate",
            tmp_path / "sim.h5",
            "--scan",
            "4x4",
            "--size",
            "32",
            "--truth-npy",
            tmp_path / "truth.npy",
        ).code
        == 0
    )
    assert run_cli("predict", "s", "--out", tmp_path / "p.h5").code == 0
    assert run_cli("labels", "export", "s", tmp_path / "l.csv").code == 0
    assert run_cli("export", "s", "--out", tmp_path / "export").code == 0


WRITERS = [
    (
        "simulate",
        "sim.h5",
        ["simulate", "{tmp}/sim.h5", "--scan", "4x4", "--size", "32"],
        "{tmp}/sim.h5",
    ),
    (
        "simulate-truth",
        "truth.npy",
        [
            "simulate",
            "{tmp}/sim2.h5",
            "--scan",
            "4x4",
            "--size",
            "32",
            "--truth-npy",
            "{tmp}/truth.npy",
        ],
        "{tmp}/truth.npy",
    ),
    ("predict", "p.h5", ["predict", "s", "--out", "{tmp}/p.h5"], "{tmp}/p.h5"),
    ("labels-export", "l.csv", ["labels", "export", "s", "{tmp}/l.csv"], "{tmp}/l.csv"),
    (
        "export-predictions",
        "predictions.h5",
        ["export", "s", "--out", "{tmp}/export"],
        "{tmp}/export/predictions.h5",
    ),
    (
        "train-checkpoint",
        "r0002-e",  # a new model's checkpoint: round 2, then the event it was trained up to
        ["train", "s", "--epochs", "1"],
        "{session}/checkpoints/r0002-e",
    ),
    ("new-settings", "session.toml", ["new", "t", "--data", "{data}"], "{sessions}/t/session.toml"),
]


@pytest.mark.parametrize(
    ("name", "args", "named"),
    [
        pytest.param(n, a, f, id=i, marks=[pytest.mark.slow] if i == "train-checkpoint" else [])
        for i, n, a, f in WRITERS
    ],
)
def test_enospc_in_each_writer_is_one_line_and_keeps_what_was_saved(
    run_cli, session_dir, data, sessions_dir, tmp_path, one_torch_thread, name, args, named
):
    _previous_outputs(run_cli, tmp_path)
    ctx = {"tmp": tmp_path, "session": session_dir, "data": data, "sessions": sessions_dir}
    before = state(tmp_path, sessions_dir, data)
    with pytest.MonkeyPatch.context() as mp:
        full_disk_at(mp, name)
        result = run_cli(*[a.format(**ctx) for a in args])
    assert_error_line(result, named.format(**ctx), "disk full")
    after = state(tmp_path, sessions_dir, data)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    if name == "session.toml":  # `new` made a database and no settings: `new` may run again
        assert changed == {str(sessions_dir / "t" / "labels.sqlite")}
        assert run_cli("new", "t", "--data", data).code == 0
    else:
        assert changed == set()
    assert temporaries(tmp_path) == [] and temporaries(sessions_dir) == []


def test_enospc_inside_hdf5_while_preprocessing_keeps_the_old_cache(run_cli, data, cache_dir):
    assert run_cli("preprocess", data).code == 0
    before = state(cache_dir)
    with pytest.MonkeyPatch.context() as mp:
        full_disk_in_hdf5(mp, after_bytes=10_000)
        result = run_cli("preprocess", data, "--rebuild")
    line = assert_error_line(result, str(cache_dir), "disk full")
    assert ".tmp-" not in line  # the cache is named, not its temporary
    assert state(cache_dir) == before
    assert temporaries(cache_dir) == []


@pytest.mark.parametrize(
    ("args", "message", "fragment"),
    [
        (["labels", "import", "s", "{csv}"], "database or disk is full", "disk full"),
        (["train", "s", "--epochs", "1"], "database or disk is full", "disk full"),
        (["labels", "import", "s", "{csv}"], "attempt to write a readonly database", "read-only"),
    ],
    ids=["labels-import-full", "train-finish-round-full", "labels-import-read-only"],
)
def test_a_label_database_that_cannot_be_written_is_one_line_naming_it(
    run_cli, session_dir, tmp_path, one_torch_thread, args, message, fragment
):
    csv_file = write_csv(
        tmp_path / "more.csv", [(2, 3, "none"), (4, 5, "vertical")], ["rx", "ry", "label"]
    )
    with Session.open("s", writable=False) as session:
        events, rounds = session.store.events(), session.store.models()
    with pytest.MonkeyPatch.context() as mp:
        full_database(mp, message)
        result = run_cli(*[a.format(csv=csv_file) for a in args])
    line = assert_error_line(result, str(session_dir / "labels.sqlite"), fragment)
    assert "nothing was changed" in line
    with Session.open("s", writable=False) as session:
        assert session.store.events() == events and session.store.models() == rounds


def test_free_space_is_checked_before_a_large_write(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "free_bytes", lambda where: 1024 * 1024)
    result = run_cli("simulate", tmp_path / "big.h5", "--scan", "64x64", "--size", "128")
    assert_error_line(result, str(tmp_path / "big.h5"), "not enough free space")
    assert list(tmp_path.iterdir()) == []


# -- the app keeps the label when the disk refuses it --------------------------------------------
def test_the_app_keeps_a_label_the_disk_refused_and_saves_it_later(sim_file, monkeypatch):
    from ghosttui.tui import app as app_module
    from ghosttui.tui.app import create_app

    monkeypatch.setattr(app_module, "RETRY_SECONDS", 0.2)
    session = Session.create("app", sim_file, classes=make_classes())
    app = create_app(session)
    said: list[str] = []
    real_notify = app.notify
    monkeypatch.setattr(
        app, "notify", lambda message, **kw: (said.append(str(message)), real_notify(message, **kw))
    )

    async def scenario():
        async with app.run_test(size=(160, 48)) as pilot:
            first = app.controller.current()
            full = [True]
            session.store._db = FullDatabase(session.store._db, full, "database or disk is full")
            await pilot.press("h")
            assert app.is_running
            assert app.unsaved == ("horizontal", first)
            assert session.store.labels() == {}
            assert any("cannot save" in m and "label kept" in m for m in said), said
            await pilot.press("v")  # another label while one waits: refused, nothing changes
            assert app.unsaved == ("horizontal", first)
            assert session.store.labels() == {}
            full[0] = False  # space freed: the retry timer saves it
            for _ in range(30):
                await pilot.pause(0.1)
                if app.unsaved is None:
                    break
            assert app.unsaved is None
            labels = session.store.labels()
            assert {pos: lab.cls for pos, lab in labels.items()} == {
                (first.rx, first.ry): "horizontal"
            }
            assert app.controller.current() != first  # and the labeller moved on
            full[0] = True
            await pilot.press("n")
            await pilot.press("q")  # an unsaved label: the first q warns
            assert app.is_running
            assert any("press q again" in m for m in said)
            await pilot.press("q")
        assert len(session.store.labels()) == 1

    asyncio.run(scenario())
    session.close()


# -- a really full disk ---------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path):
    """A 16 MiB tmpfs (skipped where this user may not mount one)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); ENOSPC injection covers it"
        )
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Take every free byte of ``folder``'s file system."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 20, 4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    return filler


RUNNER = """
import contextlib, io, json, sys
from ghosttui.cli import main

results = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
    results.append([args, code, err.getvalue()])
print(json.dumps(results))
"""


def _ghosttui(commands):
    """Run each command with the real CLI in one process of its own (a crash is a signal)."""
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, json.dumps([[str(a) for a in c] for c in commands])],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.returncode, done.stderr[-3000:])  # -11: a segfault
    return json.loads(done.stdout)


def _check_refused(args, code, err, *reasons: str) -> None:
    assert code == 2, (args, code, err)
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("ghosttui: error: ")]
    assert len(errors) == 1 and errors == lines[-1:], (args, err)
    assert "Traceback" not in err and "internal error" not in err
    assert any(reason in errors[0] for reason in reasons), (args, errors[0])


@pytest.mark.slow  # three processes running 13 commands: about 40 s
def test_a_really_full_disk_and_a_read_only_one(tiny_disk, data, tmp_path, monkeypatch):
    monkeypatch.setenv("GHOSTTUI_SESSIONS", str(tiny_disk / "sessions"))
    monkeypatch.setenv("GHOSTTUI_CACHE_DIR", str(tiny_disk / "cache"))
    folder = make_session_with_rounds("s", data, rounds=1)
    csv_file = write_csv(tmp_path / "more.csv", [(2, 3, "none")], ["rx", "ry", "label"])
    filler = _fill(tiny_disk)
    before = state(folder)
    commands = [
        ["labels", "import", "s", csv_file],
        ["train", "s", "--epochs", "1"],
        ["predict", "s", "--out", tiny_disk / "p.h5"],
        ["export", "s", "--out", tiny_disk / "export"],
        ["labels", "export", "s", tiny_disk / "l.csv"],
        ["preprocess", data, "--size", "32"],
        ["simulate", tiny_disk / "sim.h5", "--scan", "16x16", "--size", "64"],
        ["new", "t", "--data", data],
    ]
    for args, code, err in _ghosttui(commands):
        _check_refused(args, code, err, "disk full", "not enough free space")
    assert state(folder) == before
    assert temporaries(tiny_disk) == []

    filler.unlink()  # space again: everything works, nothing was lost
    for args, code, err in _ghosttui([commands[0], commands[2]]):
        assert code == 0, (args, err)
    with Session.open("s", directory=folder, writable=False) as session:
        assert (2, 3) in session.store.labels() and len(session.store.models()) == 1

    remount = ["mount", "-o", "remount,ro", str(tiny_disk)]
    if subprocess.run(remount, capture_output=True).returncode != 0:
        pytest.skip("cannot remount the tmpfs read-only")
    before = state(folder)
    results = _ghosttui([commands[0], commands[4], ["status", "s"]])
    for args, code, err in results[:2]:
        _check_refused(args, code, err, "read-only")
    assert results[2][1] == 0, results[2]  # reading still works
    assert state(folder) == before
