"""Sessions on disk: `ghosttui new`, session.toml, the one-writer lock, the data fingerprint."""

from __future__ import annotations

import os
import shutil
import signal
import sys

import h5py
import pytest
from conftest import CLASSES, assert_one_line_error

from ghosttui.data.fingerprint import file_fingerprint
from ghosttui.errors import SessionError
from ghosttui.session.keys import taken_characters
from ghosttui.session.session import Session
from ghosttui.session.settings import (
    MAX_CLASSES,
    SessionSettings,
    make_classes,
    read_settings,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_toml(path):
    return tomllib.loads(path.read_text(encoding="utf-8"))


# -- ghosttui new -------------------------------------------------------------------------
def test_new_writes_a_readable_session_toml_and_database(run_cli, sim_file, sessions_dir):
    result = run_cli("new", "scan1", "--data", sim_file)
    assert result.code == 0, result.err
    assert "24x16" in result.out
    folder = sessions_dir / "scan1"
    assert (folder / "labels.sqlite").is_file()
    text = (folder / "session.toml").read_text(encoding="utf-8")
    assert text.startswith("#")  # a commented, human-readable file
    doc = tomllib.loads(text)
    assert doc["name"] == "scan1"
    assert doc["data"]["path"] == str(sim_file.resolve())
    assert doc["data"]["fingerprint"] == file_fingerprint(sim_file)
    assert doc["data"]["shape"] == [24, 16, 64, 64]
    assert doc["preprocess"]["size"] == 64
    assert doc["classes"] == [
        {"name": "horizontal", "key": "h", "colour": "#0000ff"},
        {"name": "vertical", "key": "v", "colour": "#00ff00"},
        {"name": "none", "key": "n", "colour": "#ff0000"},
    ]
    # what is written is what is read back
    settings = read_settings(folder / "session.toml")
    assert settings.class_names == list(CLASSES)
    assert SessionSettings.from_toml(settings.to_toml()) == settings


def test_new_with_custom_classes_keys_and_folder(run_cli, sim_file, tmp_path, sessions_dir):
    folder = tmp_path / "elsewhere" / "mine"
    result = run_cli(
        "new",
        "custom",
        "--data",
        sim_file,
        "--classes",
        "up,down",
        "--keys",
        "k,j",
        "--dir",
        folder,
    )
    assert result.code == 0, result.err
    assert not (sessions_dir / "custom").exists()
    doc = read_toml(folder / "session.toml")
    assert [(c["name"], c["key"]) for c in doc["classes"]] == [("up", "k"), ("down", "j")]
    assert len({c["colour"] for c in doc["classes"]}) == 2
    # the folder can be named directly, or with --dir
    assert run_cli("status", folder).code == 0
    assert run_cli("status", "custom", "--dir", folder).code == 0


def test_new_with_nine_classes_of_any_names(run_cli, sim_file, sessions_dir):
    names = [f"phase{i}" for i in range(1, 10)]
    result = run_cli("new", "nine", "--data", sim_file, "--classes", ",".join(names))
    assert result.code == 0, result.err
    classes = read_toml(sessions_dir / "nine" / "session.toml")["classes"]
    assert [c["name"] for c in classes] == names
    keys = [c["key"] for c in classes]
    assert len(set(keys)) == 9
    assert not any(k.isdigit() for k in keys)
    assert not set(keys) & taken_characters()
    assert len({c["colour"] for c in classes}) == 9


def test_paper_classes_keep_the_paper_colours_among_others():
    specs = make_classes(["none", "vertical", "horizontal", "extra"])
    colours = {s.name: s.colour for s in specs}
    assert colours["none"] == "#ff0000"
    assert colours["vertical"] == "#00ff00"
    assert colours["horizontal"] == "#0000ff"
    assert colours["extra"] not in ("#ff0000", "#00ff00", "#0000ff")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--classes", ",".join(f"c{i}" for i in range(MAX_CLASSES + 1))], "between 2 and 9"),
        (["--classes", "only"], "between 2 and 9"),
        (["--classes", "a,b,a"], "unique"),
        (["--keys", "h,h,n"], "unique"),
        (["--keys", "h,1,n"], "digit"),
        (["--keys", "h,v,q"], "clash with action keys"),
        (["--keys", "h,u,n"], "clash with action keys"),
        (["--keys", "h,v"], "2 keys for 3 classes"),
        (["--keys", "h,vv,n"], "single printable"),
    ],
)
def test_new_refuses_bad_classes_and_keys(run_cli, sim_file, sessions_dir, args, fragment):
    result = run_cli("new", "bad", "--data", sim_file, *args)
    assert_one_line_error(result, fragment)
    assert not (sessions_dir / "bad").exists()


@pytest.mark.parametrize("name", ["has space", "a/b", "../up", ".hidden", "x" * 65, "tab\tname"])
def test_new_refuses_bad_names(run_cli, sim_file, sessions_dir, name):
    result = run_cli("new", name, "--data", sim_file)
    assert_one_line_error(result, "session name")
    assert list(sessions_dir.iterdir()) == []


def test_new_refuses_an_existing_session_and_leaves_it_alone(run_cli, sim_file, sessions_dir):
    assert run_cli("new", "dup", "--data", sim_file).code == 0
    toml = (sessions_dir / "dup" / "session.toml").read_bytes()
    result = run_cli("new", "dup", "--data", sim_file, "--classes", "a,b")
    assert_one_line_error(result, "already exists")
    assert (sessions_dir / "dup" / "session.toml").read_bytes() == toml


def test_new_refuses_a_missing_or_unreadable_data_file(run_cli, tmp_path, sessions_dir):
    assert_one_line_error(run_cli("new", "s", "--data", tmp_path / "nope.h5"))
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x00garbage" * 100)
    assert_one_line_error(run_cli("new", "s", "--data", junk))
    assert not (sessions_dir / "s" / "session.toml").exists()


def test_settings_that_cannot_be_read_are_a_session_error(make_session, sessions_dir):
    make_session("broken").close()
    path = sessions_dir / "broken" / "session.toml"
    path.write_text("name = [unclosed\n", encoding="utf-8")
    with pytest.raises(SessionError, match="session settings cannot be read"):
        Session.open("broken")
    path.write_text('name = "broken"\n', encoding="utf-8")  # valid TOML, keys missing
    with pytest.raises(SessionError, match="KeyError"):
        Session.open("broken")


def test_unknown_session_names_the_known_ones(run_cli, make_session):
    make_session("alpha").close()
    make_session("beta").close()
    line = assert_one_line_error(run_cli("status", "gamma"), "no session 'gamma'")
    assert "alpha, beta" in line
    assert_one_line_error(run_cli("train", "gamma"), "no session 'gamma'", "alpha")


# -- one writer -----------------------------------------------------------------------------
def test_a_second_writer_is_refused_with_the_holders_pid(make_session, hold_session):
    make_session("locked").close()
    holder = hold_session("locked")
    with pytest.raises(SessionError, match=f"in use by pid {holder.pid} ") as info:
        Session.open("locked")
    assert "locked" in str(info.value)
    # reading is fine while another process writes
    with Session.open("locked", writable=False) as session:
        assert session.classes == list(CLASSES)
        with pytest.raises(SessionError, match="read-only"):
            session.save_settings()
    # the kernel drops the lock when the holder dies, however it dies
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    with Session.open("locked") as session:
        assert session.lock is not None and session.lock.held


def test_the_lock_is_per_open_even_in_one_process(make_session):
    session = make_session("mine")
    with pytest.raises(SessionError, match=f"pid {os.getpid()} "):
        Session.open("mine")
    session.close()
    with Session.open("mine") as again:  # the refused open kept nothing
        assert again.lock.held


def test_cli_commands_on_a_locked_session(run_cli, make_session, hold_session, tmp_path):
    make_session("busy").close()
    holder = hold_session("busy")
    labels = tmp_path / "l.csv"
    labels.write_text("rx,ry,label\n1,1,none\n", encoding="utf-8")
    assert_one_line_error(run_cli("labels", "import", "busy", labels), f"pid {holder.pid}")
    assert_one_line_error(run_cli("train", "busy"), "in use by", f"pid {holder.pid}")
    status = run_cli("status", "busy")
    assert status.code == 0, status.err
    assert run_cli("labels", "export", "busy", tmp_path / "out.csv").code == 0
    holder.kill()
    holder.wait(timeout=30)
    with Session.open("busy") as session:  # the refused import wrote nothing
        assert session.store.events() == []


# -- the data file ----------------------------------------------------------------------------
def change_content(path):
    with h5py.File(path, "r+") as f:
        f["data"][0, 0, 0, 0] += 1


def test_a_changed_data_file_is_refused(make_session, sim_copy, sessions_dir):
    make_session("s", data=sim_copy).close()
    change_content(sim_copy)
    toml = (sessions_dir / "s" / "session.toml").read_bytes()
    for writable in (True, False):
        with pytest.raises(SessionError, match="changed since the session was made"):
            Session.open("s", writable=writable)
    assert (sessions_dir / "s" / "session.toml").read_bytes() == toml
    # the lock is not left held by the refused open
    with pytest.raises(SessionError, match="changed"):
        Session.open("s")


def test_a_moved_data_file_can_be_re_pointed(make_session, sim_copy, sessions_dir, tmp_path):
    make_session("s", data=sim_copy).close()
    moved = tmp_path / "moved" / "scan.h5"
    moved.parent.mkdir()
    shutil.move(sim_copy, moved)
    with pytest.raises(SessionError, match="--data") as info:
        Session.open("s")
    assert "missing" in str(info.value)
    with Session.open("s", data=moved) as session:
        assert session.settings.data.path == str(moved.resolve())
    assert read_toml(sessions_dir / "s" / "session.toml")["data"]["path"] == str(moved.resolve())
    with Session.open("s") as session:  # remembered
        assert session.scan().shape[:2] == (24, 16)


def test_re_pointing_at_other_content_is_refused(make_session, sim_copy, sessions_dir, tmp_path):
    make_session("s", data=sim_copy).close()
    other = tmp_path / "other.h5"
    shutil.copyfile(sim_copy, other)
    change_content(other)
    toml = (sessions_dir / "s" / "session.toml").read_bytes()
    with pytest.raises(SessionError, match="content differs"):
        Session.open("s", data=other)
    with pytest.raises(SessionError, match="no such file"):
        Session.open("s", data=tmp_path / "absent.h5")
    assert (sessions_dir / "s" / "session.toml").read_bytes() == toml
    with Session.open("s") as session:  # still pointing at the original, still unlocked
        assert session.settings.data.path == str(sim_copy.resolve())


def test_re_pointing_through_the_cli(run_cli, make_session, sim_copy, sessions_dir, tmp_path):
    make_session("s", data=sim_copy).close()
    moved = tmp_path / "moved.h5"
    shutil.move(sim_copy, moved)
    labels = tmp_path / "labels.csv"
    labels.write_text("rx,ry,label\n0,0,none\n", encoding="utf-8")
    assert_one_line_error(run_cli("labels", "import", "s", labels), "--data")
    result = run_cli("labels", "import", "s", labels, "--data", moved)
    assert result.code == 0, result.err
    assert read_toml(sessions_dir / "s" / "session.toml")["data"]["path"] == str(moved.resolve())
    assert run_cli("status", "s").code == 0
