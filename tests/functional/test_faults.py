"""Nothing saved is ever lost (issue 12): the fault classes that concern sessions and outputs.

1. no command writes over a file a session depends on;
3. races: concurrent ``new``, read-only commands beside a writer;
4. an export is all or nothing, and verified (a malicious checkpoint is refused);
7. a deleted or emptied label database is refused, with how to recover;
8. leftovers: temporaries of killed runs are removed, one scan finds one cache.

Storage faults (class 5) are in test_faults_storage.py, data and numbers (2, 6)
in test_faults_data.py.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import torch
from conftest import assert_one_line_error, write_csv
from fault_kit import make_session_with_rounds, state, temporaries

from ghosttui.export import MANIFEST, verify_export
from ghosttui.files import HOST_TAG
from ghosttui.model.checkpoint import FORMAT
from ghosttui.session.registry import registered
from ghosttui.session.session import Session
from ghosttui.session.store import LabelStore

SMALL_SIM = ["--scan", "4x4", "--size", "32"]


@pytest.fixture
def data(sim_file, tmp_path):
    """A private copy of the simulated scan, outside every session folder."""
    path = tmp_path / "data" / "scan.h5"
    path.parent.mkdir()
    shutil.copyfile(sim_file, path)
    return path


@pytest.fixture
def session_dir(data, sessions_dir):
    """Session 's' on ``data`` with labels and one recorded round."""
    return make_session_with_rounds("s", data, rounds=1)


# -- 1. writing over what a session owns ------------------------------------------------------
def _protected_cases():
    def case(name, args, fragment="session"):
        return pytest.param(args, fragment, id=name)

    return [
        case("simulate-over-data", lambda s, d, r: ["simulate", d, *SMALL_SIM]),
        case(
            "simulate-over-predictions",
            lambda s, d, r: ["simulate", s / "predictions" / "round-0001.h5", *SMALL_SIM],
        ),
        case(
            "simulate-truth-over-checkpoint",
            lambda s, d, r: [
                "simulate",
                d.with_name("new.h5"),
                *SMALL_SIM,
                "--truth-npy",
                s / "checkpoints" / "round-0001.pt",
            ],
        ),
        case("predict-over-data", lambda s, d, r: ["predict", "s", "--out", d]),
        case(
            "predict-over-database", lambda s, d, r: ["predict", "s", "--out", s / "labels.sqlite"]
        ),
        case(
            "predict-over-own-predictions",
            lambda s, d, r: ["predict", "s", "--out", s / "predictions" / "round-0001.h5"],
        ),
        case(
            "labels-export-over-database",
            lambda s, d, r: ["labels", "export", "s", s / "labels.sqlite"],
        ),
        case(
            "labels-export-over-settings",
            lambda s, d, r: ["labels", "export", "s", s / "session.toml"],
        ),
        case(
            "labels-export-over-wal",
            lambda s, d, r: ["labels", "export", "s", s / "labels.sqlite-wal"],
        ),
        case("labels-export-over-data", lambda s, d, r: ["labels", "export", "s", d]),
        case("export-into-session", lambda s, d, r: ["export", "s", "--out", s]),
        case(
            "export-into-checkpoints", lambda s, d, r: ["export", "s", "--out", s / "checkpoints"]
        ),
        case("export-over-sessions-root", lambda s, d, r: ["export", "s", "--out", r]),
        case("export-over-data-folder", lambda s, d, r: ["export", "s", "--out", d.parent]),
        case(
            "preprocess-cache-in-session",
            lambda s, d, r: ["preprocess", d, "--cache-dir", s / "cache"],
        ),
        case(
            "bench-json-over-settings",
            lambda s, d, r: [
                "bench",
                d,
                "--budget",
                "20",
                "--seed",
                "0",
                "--json",
                s / "session.toml",
            ],
        ),
        case(
            "bench-plot-over-data",
            lambda s, d, r: ["bench", d, "--budget", "20", "--seed", "0", "--plot", d],
        ),
    ]


@pytest.mark.parametrize(("args", "fragment"), _protected_cases())
def test_no_command_writes_over_a_session(run_cli, session_dir, data, sessions_dir, args, fragment):
    before = state(session_dir, data)
    result = run_cli(*args(session_dir, data, sessions_dir))
    assert_one_line_error(result, fragment, "choose another")
    assert state(session_dir, data) == before
    assert temporaries(sessions_dir) == [] and temporaries(data.parent) == []


def test_sessions_outside_the_root_are_known_through_the_registry(
    run_cli, data, tmp_path, monkeypatch
):
    far = tmp_path / "far" / "away"
    assert run_cli("new", "far", "--data", data, "--dir", far).code == 0
    assert far.resolve() in registered()
    monkeypatch.setenv("GHOSTTUI_SESSIONS", str(tmp_path / "another-root"))
    before = state(data)
    assert_one_line_error(
        run_cli("simulate", data, *SMALL_SIM), str(data), "data file of session 'far'"
    )
    assert state(data) == before


def test_an_output_may_not_replace_an_input(run_cli, session_dir, tmp_path, sim_file):
    other = tmp_path / "other-scan.h5"
    shutil.copyfile(sim_file, other)
    before = state(other)
    assert_one_line_error(run_cli("predict", "s", "--data", other, "--out", other), "also an input")
    assert state(other) == before


# -- 3. races ---------------------------------------------------------------------------------
RACER = """
import os, sys, time
from pathlib import Path
import ghosttui.session.session as session_module
from ghosttui.cli import main

# widen the window between "does it exist?" and "take the lock": the content hash comes
# between them, so each process is made to take longer over it, by its own delay
real = session_module.file_fingerprint

def slow_fingerprint(path, *args, **kwargs):
    time.sleep(float(os.environ["RACE_DELAY"]))
    return real(path, *args, **kwargs)

session_module.file_fingerprint = slow_fingerprint
start = Path(sys.argv[1])
print("ready", flush=True)
while not start.exists():
    time.sleep(0.0005)
main(sys.argv[2:])
"""


@pytest.mark.slow  # six processes, three at a time: about 15 s
@pytest.mark.parametrize(
    "delays", [(0.0, 0.0, 0.0), (0.0, 0.6, 1.2)], ids=["together", "one-after-another"]
)
def test_concurrent_new_of_one_name_exactly_one_succeeds(sim_file, tmp_path, delays):
    """All three start at once; with staggered delays each finds the lock free in turn."""
    sessions = tmp_path / "sessions"
    start = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(start), "new", "twin", "--data", str(sim_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "GHOSTTUI_SESSIONS": str(sessions), "RACE_DELAY": str(delay)},
        )
        for delay in delays
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    start.touch()
    results = [(proc.wait(120), proc.stdout.read(), proc.stderr.read()) for proc in procs]
    for proc in procs:
        proc.stdout.close()
        proc.stderr.close()
    assert sorted(code for code, _, _ in results) == [0, 2, 2], results
    for code, _, err in results:
        if code == 2:
            lines = err.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("ghosttui: error: "), err
            assert "already exists" in lines[0] or "is in use by" in lines[0], err
    with Session.open("twin", directory=sessions / "twin", writable=False) as session:
        assert session.store.labels() == {}


READ_ONLY = [
    ["status", "s"],
    ["labels", "export", "s", "{tmp}/labels.csv"],
    ["predict", "s", "--out", "{tmp}/p.h5"],
    ["export", "s", "--out", "{tmp}/export"],
]
KILLED_WRITER = """
import os
from ghosttui.session.session import Session

session = Session.open("s")
session.store.label(1, 1, "none", "manual")
os._exit(0)  # as if killed: the label sits in the write-ahead log, not yet in labels.sqlite
"""


@pytest.mark.parametrize("held", [False, True], ids=["after-a-killed-writer", "beside-a-writer"])
def test_read_only_commands_never_write_the_session(
    run_cli, session_dir, tmp_path, hold_session, held
):
    subprocess.run([sys.executable, "-c", KILLED_WRITER], check=True, env=os.environ.copy())
    assert (session_dir / "labels.sqlite-wal").stat().st_size > 0
    if held:
        hold_session("s")  # another process has the session open for writing
    before = state(session_dir)
    for args in READ_ONLY:
        result = run_cli(*[a.format(tmp=tmp_path) for a in args])
        assert result.code == 0, (args, result.err)
    # not a byte, not a timestamp: a read-write reader would have checkpointed the log
    assert state(session_dir) == before
    with Session.open("s", writable=False) as session:
        assert session.lock is None and session.store.read_only
        assert session.store.labels()[(1, 1)].cls == "none"  # and it read the logged label


def test_a_read_only_store_refuses_to_write(session_dir):
    store = LabelStore(
        session_dir / "labels.sqlite", (24, 16), ["horizontal", "vertical", "none"], mode="ro"
    )
    try:
        with pytest.raises(Exception, match="read-only"):
            store.label(0, 0, "none", "manual")
    finally:
        store.close()


# -- 4. exports: all or nothing, verified -----------------------------------------------------
EXPORTER = """
import sys
from ghosttui.export import export_session
from ghosttui.session.session import Session

with Session.open(sys.argv[1], writable=False) as session:
    print("ready", flush=True)
    i = 0
    while True:
        export_session(session, sys.argv[2], round=1 + i % 2)
        i += 1
        print(f"done {i}", flush=True)
"""


def _check_complete(out: Path) -> int:
    """The export in ``out`` is one complete export; returns its round."""
    manifest = verify_export(out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*manifest["files"], MANIFEST])
    with h5py.File(out / "predictions.h5", "r") as f:
        assert int(f.attrs["round"]) == manifest["round"]  # no files of two rounds
    assert manifest["round"] in (1, 2)
    return manifest["round"]


@pytest.mark.slow  # six exports killed at random moments: about 20 s
def test_an_export_killed_at_any_moment_leaves_one_complete_export(
    run_cli, data, sessions_dir, tmp_path
):
    make_session_with_rounds("s", data, rounds=2)
    out = tmp_path / "results" / "export"
    assert run_cli("export", "s", "--out", out, "--round", "1").code == 0
    rng = random.Random(12)
    seen = set()
    for _ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", EXPORTER, "s", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        seen.add(_check_complete(out))
    assert seen  # each kill left a complete export of round 1 or 2
    assert run_cli("export", "s", "--out", out).code == 0  # the next run cleans up
    assert _check_complete(out) == 2
    assert temporaries(out.parent) == []


class _Evil:
    """Runs a shell command when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_export_refuses_a_malicious_checkpoint(run_cli, session_dir, tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = session_dir / "checkpoints" / "round-0001.pt"
    torch.save({"format": FORMAT, "meta": "{}", "state_dict": {}, "x": _Evil(marker)}, checkpoint)
    out = tmp_path / "export"
    line = assert_one_line_error(run_cli("export", "s", "--out", out), str(checkpoint))
    assert "checkpoint" in line
    assert not marker.exists()
    assert not out.exists() and temporaries(tmp_path) == []


def test_export_replaces_only_its_own_folder(run_cli, session_dir, tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("years of work")
    assert_one_line_error(run_cli("export", "s", "--out", foreign), "not a ghosttui export")
    assert (foreign / "thesis.tex").read_text() == "years of work"

    out = tmp_path / "export"
    assert run_cli("export", "s", "--out", out).code == 0
    (out / "notes.txt").write_text("my notes on this export")
    assert_one_line_error(run_cli("export", "s", "--out", out), "notes.txt")
    assert (out / "notes.txt").exists()
    (out / "notes.txt").unlink()
    assert run_cli("export", "s", "--out", out).code == 0  # a previous export is replaced
    verify_export(out)


def test_a_tampered_export_fails_verification(run_cli, session_dir, tmp_path):
    out = tmp_path / "export"
    assert run_cli("export", "s", "--out", out).code == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert sorted(manifest["files"]) == sorted(
        [
            "confidence_map.png",
            "domain_map.png",
            "domain_map_large.png",
            "labels.csv",
            "model.pt",
            "predictions.h5",
        ]
    )
    with open(out / "labels.csv", "a", encoding="utf-8") as handle:
        handle.write("1,1,none,import,9\n")
    with pytest.raises(Exception, match=r"labels\.csv is missing or differs"):
        verify_export(out)


# -- 7. a deleted or emptied label database ----------------------------------------------------
def _delete(folder: Path) -> None:
    for name in ("labels.sqlite", "labels.sqlite-wal", "labels.sqlite-shm"):
        (folder / name).unlink(missing_ok=True)


def _truncate(folder: Path) -> None:
    _delete(folder)
    (folder / "labels.sqlite").write_bytes(b"")


def _replace(folder: Path) -> None:
    _delete(folder)
    LabelStore(
        folder / "labels.sqlite", (24, 16), ["horizontal", "vertical", "none"], mode="create"
    ).close()


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        (_delete, "label database is missing"),
        (_truncate, "label database is empty (0 bytes)"),
        (_replace, "holds no labels but checkpoints/ holds 1 trained model"),
    ],
    ids=["deleted", "emptied", "replaced"],
)
def test_a_lost_label_database_is_refused_with_a_recovery_hint(
    run_cli, session_dir, tmp_path, damage, fragment
):
    damage(session_dir)
    before = state(session_dir)
    csv_file = write_csv(tmp_path / "more.csv", [(1, 1, "none")], ["rx", "ry", "label"])
    for args in (
        ["status", "s"],
        ["train", "s"],
        ["labels", "import", "s", csv_file],
        ["export", "s", "--out", tmp_path / "e"],
    ):
        line = assert_one_line_error(run_cli(*args), str(session_dir / "labels.sqlite"), fragment)
        assert "restore" in line.lower() or "backup" in line
    assert state(session_dir) == before  # never silently recreated
    assert (session_dir / "labels.sqlite").exists() == (damage is not _delete)


def test_new_refuses_a_folder_with_labels_but_no_settings(run_cli, session_dir, data):
    (session_dir / "session.toml").unlink()
    before = state(session_dir)
    assert_one_line_error(run_cli("new", "s", "--data", data), "label event(s) but no session.toml")
    assert state(session_dir) == before


def test_a_new_killed_before_its_settings_can_be_made_again(run_cli, data, sessions_dir):
    folder = sessions_dir / "s"
    folder.mkdir()
    LabelStore(folder / "labels.sqlite", (24, 16), ["a", "b"], mode="create").close()  # no events
    assert run_cli("new", "s", "--data", data).code == 0
    with Session.open("s", writable=False) as session:
        assert session.store.labels() == {}


# -- 8. leftovers -----------------------------------------------------------------------------
SLOW_BUILD = """
import sys, time
from ghosttui.cli import main
import ghosttui.patterns.cache as cache
from ghosttui.patterns.preprocess import PatternPipeline

cache.BLOCK_BYTES = 64 * 64 * 4 * 50  # several blocks
real = PatternPipeline.__call__
calls = []

def slow(self, block):
    calls.append(1)
    if len(calls) == 2:
        print("building", flush=True)
        time.sleep(300)
    return real(self, block)

PatternPipeline.__call__ = slow
main(sys.argv[1:])
"""


def test_temporaries_of_a_killed_preprocess_are_removed_by_the_next(run_cli, data, cache_dir):
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_BUILD, "preprocess", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "building", proc.stderr.read()
        left = temporaries(cache_dir)
        assert len(left) == 1 and f".tmp-{proc.pid}-{HOST_TAG}-" in left[0]
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert len(temporaries(cache_dir)) == 1  # kill -9 leaves it behind
    result = run_cli("preprocess", data)
    assert result.code == 0, result.err
    assert temporaries(cache_dir) == []
    assert [p.suffix for p in cache_dir.iterdir()] == [".h5"]


def test_stale_temporaries_in_a_session_are_removed_when_it_is_opened(
    run_cli, session_dir, tmp_path
):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [
        session_dir / f".session.toml.tmp-{dead.pid}-{HOST_TAG}-0",
        session_dir / "checkpoints" / f".round-0002.pt.tmp-{dead.pid}-{HOST_TAG}-1.pt",
        session_dir / "predictions" / f".round-0002.h5.tmp-{dead.pid}",  # an older version's
    ]
    for path in stale:
        path.write_bytes(b"half a file")
    csv_file = write_csv(tmp_path / "x.csv", [(2, 2, "none")], ["rx", "ry", "label"])
    assert run_cli("labels", "import", "s", csv_file).code == 0
    assert temporaries(session_dir) == []


def test_one_scan_one_cache_whatever_options_name_it(run_cli, data, cache_dir):
    first = run_cli("preprocess", data)
    assert first.code == 0 and "built" in first.out
    for args in (["--dataset", "/data"], ["--dataset", "data"], ["--format", "h5"]):
        again = run_cli("preprocess", data, *args)
        assert again.code == 0 and "reused" in again.out, (args, again.out)
    assert len(list(cache_dir.glob("*.h5"))) == 1
    # and a session made with --dataset finds the cache built without it
    assert run_cli("new", "d", "--data", data, "--dataset", "/data").code == 0
    with Session.open("d", writable=False) as session:
        assert session.cache().path == next(cache_dir.glob("*.h5"))
