"""Where sessions live: one home, the same from every folder, named in every "no session" error."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import assert_one_line_error

from ghosttui.session.home import (
    default_sessions_root,
    missing_session_message,
    resolve_session_dir,
    session_folders,
    sessions_root,
)


def table_rows(out: str) -> dict[str, list[str]]:
    """The rows of a rich table in ``out``, by their first cell: {name: [cells...]}."""
    rows = {}
    for line in out.splitlines():
        if line.startswith("│ "):
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            rows[cells[0]] = cells
    return rows


@pytest.fixture
def no_sessions_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """GHOSTTUI_SESSIONS unset; XDG_DATA_HOME in tmp_path; returns the default home."""
    monkeypatch.delenv("GHOSTTUI_SESSIONS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "ghosttui" / "sessions"


def test_the_default_home_is_in_the_users_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("GHOSTTUI_SESSIONS")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sessions_root() == tmp_path / ".local" / "share" / "ghosttui" / "sessions"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert sessions_root() == tmp_path / "data" / "ghosttui" / "sessions"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # invalid by the XDG spec: ignored
    assert default_sessions_root() == tmp_path / ".local" / "share" / "ghosttui" / "sessions"


def test_the_environment_variable_wins_and_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GHOSTTUI_SESSIONS", "sessions")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert sessions_root() == tmp_path / "sessions"
    monkeypatch.setenv("GHOSTTUI_SESSIONS", "  ")  # blank: as if unset
    assert sessions_root() == tmp_path / "xdg" / "ghosttui" / "sessions"


def test_a_session_is_found_from_any_folder(
    make_session, run_cli, no_sessions_env, tmp_path, monkeypatch
):
    make_session("alpha").close()
    assert (no_sessions_env / "alpha" / "session.toml").is_file()
    for folder in (tmp_path, tmp_path / "xdg", Path("/")):
        monkeypatch.chdir(folder)
        result = run_cli("status", "alpha")
        assert result.code == 0, result.err
        assert "alpha" in result.out
    assert resolve_session_dir("alpha") == no_sessions_env / "alpha"


def test_no_session_names_the_folder_searched_and_how_to_look_elsewhere(
    make_session, run_cli, no_sessions_env
):
    line = assert_one_line_error(run_cli("status", "nope"), "no session 'nope'")
    assert f"in {no_sessions_env} (the default)" in line
    assert "no sessions there yet" in line
    assert "--dir FOLDER or GHOSTTUI_SESSIONS=FOLDER" in line
    make_session("alpha").close()
    make_session("beta").close()
    line = assert_one_line_error(run_cli("label", "nope"), "no session 'nope'")
    assert "sessions there: alpha, beta" in line


def test_no_session_says_when_the_environment_chose_the_folder(run_cli, sessions_dir):
    line = assert_one_line_error(run_cli("train", "nope"), "no session 'nope'")
    assert f"in {sessions_dir} ($GHOSTTUI_SESSIONS)" in line


def test_no_session_points_at_a_project_sessions_folder_here(
    make_session, run_cli, no_sessions_env, tmp_path, monkeypatch
):
    project = tmp_path / "project"
    make_session("old", directory=project / "sessions" / "old").close()
    monkeypatch.chdir(project)
    line = assert_one_line_error(run_cli("status", "old"), "no session 'old'")
    assert (
        "Found sessions/old/ in this folder: use --dir sessions/old or GHOSTTUI_SESSIONS=sessions"
        in line
    )
    # and both ways in work
    assert run_cli("status", "old", "--dir", "sessions/old").code == 0
    monkeypatch.setenv("GHOSTTUI_SESSIONS", "sessions")
    assert run_cli("status", "old").code == 0


def test_missing_session_folder_given_with_dir(tmp_path):
    message = missing_session_message("x", tmp_path / "nowhere")
    assert message == f"no session in {tmp_path / 'nowhere'} (it has no session.toml)"


def test_new_makes_the_session_in_the_home(
    run_cli, sim_file, no_sessions_env, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = run_cli("new", "gamma", "--data", sim_file)
    assert result.code == 0, result.err
    assert f"in {no_sessions_env / 'gamma'}" in result.out
    assert not (tmp_path / "sessions").exists()
    assert session_folders() == [no_sessions_env / "gamma"]


def test_sessions_lists_every_session_with_labels_and_where_the_home_is(
    make_session, run_cli, sessions_dir, sim_file
):
    empty = run_cli("sessions")
    assert empty.code == 0
    assert f"sessions home: {sessions_dir} ($GHOSTTUI_SESSIONS)" in empty.out
    assert "no sessions yet" in empty.out
    alpha = make_session("alpha")
    alpha.store.import_labels([(0, 0, "horizontal", "import"), (1, 2, "none", "import")])
    alpha.close()
    make_session("beta").close()
    (sessions_dir / ".data").mkdir()  # the demo's scans: not a session
    result = run_cli("sessions")
    assert result.code == 0, result.err
    rows = table_rows(result.out)
    assert set(rows) == {"alpha", "beta"}
    assert rows["alpha"] == ["alpha", "24x16", "2", "0", str(sim_file)]
    assert rows["beta"] == ["beta", "24x16", "0", "0", str(sim_file)]
    # `status` without a name is the same list
    assert run_cli("status").out == result.out


def test_sessions_marks_a_missing_data_file_and_a_broken_session(
    make_session, run_cli, sim_copy, sessions_dir
):
    make_session("moved", data=sim_copy).close()
    sim_copy.unlink()
    broken = sessions_dir / "broken"
    broken.mkdir()
    (broken / "session.toml").write_text("this is not toml [", encoding="utf-8")
    result = run_cli("sessions")
    assert result.code == 0, result.err
    rows = table_rows(result.out)
    assert rows["moved"][4] == f"{sim_copy} (missing)"
    assert rows["broken"][4].startswith("session settings cannot be read (TOMLDecodeError")


def test_demo_lands_in_the_home_and_is_found_from_elsewhere(
    run_cli, sim_file, no_sessions_env, tmp_path, monkeypatch
):
    import shutil

    import ghosttui.cli.app_commands
    import ghosttui.simulate

    def small_simulation(out, settings, progress=None, truth_npy=None):
        shutil.copyfile(sim_file, out)  # the test scan stands in for the 206x34 demo scan

    opened = []
    monkeypatch.setattr(ghosttui.simulate, "simulate", small_simulation)
    monkeypatch.setattr(ghosttui.cli.app_commands, "run_app", lambda name, *a: opened.append(name))
    monkeypatch.chdir(tmp_path)
    result = run_cli("demo")
    assert result.code == 0, result.err
    assert opened == ["demo"]
    assert f"created session 'demo' in {no_sessions_env / 'demo'}" in result.out
    assert (no_sessions_env / ".data" / "wall-seed0.h5").is_file()
    assert not (tmp_path / "sessions").exists()
    monkeypatch.chdir("/")
    assert run_cli("status", "demo").code == 0
    again = run_cli("demo")  # the second time: no new session, straight to the app
    assert again.code == 0 and "created" not in again.out
    assert opened == ["demo", "demo"]


def test_the_default_home_inside_the_data_folder_takes_new_scans_but_guards_the_rest(
    no_sessions_env, monkeypatch, make_session
):
    """By default the sessions home lies inside ghosttui's data folder: the demo's scan goes
    to <home>/.data (the first `make demo` on a fresh machine), the registry stays guarded."""
    from ghosttui.dirs import data_dir
    from ghosttui.errors import ProtectedPathError
    from ghosttui.session.protect import check_output

    monkeypatch.delenv("GHOSTTUI_DATA_DIR")
    assert no_sessions_env.parent == data_dir()
    check_output(no_sessions_env / ".data" / "wall-seed0.h5")  # allowed
    with pytest.raises(ProtectedPathError, match="own data folder"):
        check_output(data_dir() / "registry.json")
    make_session("alpha").close()
    with pytest.raises(ProtectedPathError, match="inside session folder"):
        check_output(no_sessions_env / "alpha" / "out.h5")
