"""The SQLite label store: durable events, undo, the query queue, rounds."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import CLASSES

from ghosttui.errors import SessionError
from ghosttui.session.store import LabelStore

SHAPE = (24, 16)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "labels.sqlite"


@pytest.fixture
def store(db_path):
    store = LabelStore(db_path, SHAPE, list(CLASSES), mode="create")
    yield store
    store.close()


def current(store):
    return {pos: lab.cls for pos, lab in store.labels().items()}


def fresh_rows(db_path, sql, args=()):
    """Read with a brand-new connection: sees only what is committed to the file."""
    db = sqlite3.connect(db_path)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


# -- events -------------------------------------------------------------------------------
def test_every_event_is_recorded_with_position_class_source_round_and_time(store):
    before = time.time()
    store.label(1, 2, "horizontal", "grid")
    store.label(1, 2, "vertical", "manual")
    store.skip(3, 4, "uncertainty")
    store.undo()
    events = store.events()
    assert [e.kind for e in events] == ["label", "relabel", "skip", "undo"]
    assert [(e.rx, e.ry) for e in events] == [(1, 2), (1, 2), (3, 4), (3, 4)]
    assert [e.cls for e in events] == ["horizontal", "vertical", None, None]
    assert [e.source for e in events[:3]] == ["grid", "manual", "uncertainty"]
    assert events[3].undoes == events[2].id
    assert all(e.round == 1 for e in events)
    assert all(before - 1 <= e.time <= time.time() + 1 for e in events)


@pytest.mark.parametrize(
    "source", ["grid", "boundary", "uncertainty", "random", "manual", "holdout", "import"]
)
def test_every_documented_source_is_accepted(store, source):
    store.label(0, 0, "none", source)
    assert store.labels()[(0, 0)].source == source


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda s: s.label(24, 0, "none", "manual"), "outside the 24x16 scan"),
        (lambda s: s.label(0, 16, "none", "manual"), "outside the 24x16 scan"),
        (lambda s: s.label(-1, 0, "none", "manual"), "outside"),
        (lambda s: s.label(0, 0, "diagonal", "manual"), "unknown class 'diagonal'"),
        (lambda s: s.label(0, 0, "none", "telepathy"), "unknown label source"),
        (lambda s: s.skip(0, 99, "manual"), "outside"),
        (lambda s: s.enqueue([(0, 0, "grid", 0.0), (30, 0, "grid", 0.0)]), "outside"),
        (lambda s: s.import_labels([(0, 0, "none", "import"), (0, 1, "nope", "import")]), "nope"),
    ],
)
def test_bad_events_are_refused_and_nothing_is_written(store, call, fragment):
    store.label(5, 5, "vertical", "manual")
    store.enqueue([(6, 6, "grid", 0.0)])
    with pytest.raises(SessionError, match=fragment):
        call(store)
    assert len(store.events()) == 1
    assert current(store) == {(5, 5): "vertical"}
    assert [(q.rx, q.ry) for q in store.pending()] == [(6, 6)]


def test_a_label_is_committed_before_label_returns(store, db_path):
    store.label(7, 3, "vertical", "manual")
    # no close, no checkpoint: a second connection must already see it
    assert fresh_rows(db_path, "SELECT kind, rx, ry, class, source FROM events") == [
        ("label", 7, 3, "vertical", "manual")
    ]
    store.skip(8, 3, "grid")
    store.undo()
    kinds = [r[0] for r in fresh_rows(db_path, "SELECT kind FROM events ORDER BY id")]
    assert kinds == ["label", "skip", "undo"]
    # and another LabelStore (as after a restart) replays to the same labels
    other = LabelStore(db_path, SHAPE, list(CLASSES))
    try:
        assert current(other) == {(7, 3): "vertical"}
    finally:
        other.close()


KILLED_WRITER = """
import sys
from ghosttui.session.store import LabelStore

store = LabelStore(sys.argv[1], (24, 16), ["horizontal", "vertical", "none"])
i = 0
while True:
    rx, ry = divmod(i % 384, 16)
    cls = store.classes[i % 3]
    event = store.label(rx, ry, cls, "manual")
    i += 1
    print(f"recorded {i} {event.id} {rx} {ry} {cls}", flush=True)
"""


def test_labels_survive_kill_9(db_path):
    LabelStore(db_path, SHAPE, list(CLASSES), mode="create").close()  # schema before the race
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(db_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    printed = []
    try:
        deadline = time.monotonic() + 120
        while len(printed) < 25 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            printed.append(line.split())
        os.kill(proc.pid, signal.SIGKILL)  # right after "recorded 25", mid-stream
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    printed += [line.split() for line in rest.splitlines() if line.startswith("recorded ")]
    assert len(printed) >= 25, err
    assert proc.returncode == -signal.SIGKILL

    assert fresh_rows(db_path, "PRAGMA integrity_check") == [("ok",)]
    rows = {
        r[0]: r[1:] for r in fresh_rows(db_path, "SELECT id, rx, ry, class, source FROM events")
    }
    for _, n, event_id, rx, ry, cls in printed:
        assert rows[int(event_id)] == (int(rx), int(ry), cls, "manual"), n
    # at most the one label in flight when the kill came is beyond what was printed
    assert len(rows) - len(printed) in (0, 1)
    reopened = LabelStore(db_path, SHAPE, list(CLASSES))
    try:
        labels = current(reopened)
        for _, _, _, rx, ry, cls in printed[-5:]:
            assert labels[(int(rx), int(ry))] == cls
    finally:
        reopened.close()


# -- undo -----------------------------------------------------------------------------------
def test_undo_steps_back_exactly_through_labels_relabels_and_skips(store):
    a, b, c = (2, 3), (4, 5), (6, 7)
    steps = [
        store.label(*a, "horizontal", "grid"),
        store.label(*a, "none", "manual"),
        store.label(*b, "vertical", "boundary"),
        store.skip(*c, "uncertainty"),
    ]
    assert [e.kind for e in steps] == ["label", "relabel", "label", "skip"]
    expected_after_undo = [
        {a: "none", b: "vertical"},  # the skip taken back: labels as before it
        {a: "none"},  # B's label taken back
        {a: "horizontal"},  # the relabel taken back: A's first class again
        {},  # A's first label taken back
    ]
    assert current(store) == {a: "none", b: "vertical"}
    for undone_expected, labels_after in zip(reversed(steps), expected_after_undo, strict=True):
        undone = store.undo()
        assert undone is not None
        assert (undone.id, undone.kind, undone.rx, undone.ry, undone.cls) == (
            undone_expected.id,
            undone_expected.kind,
            undone_expected.rx,
            undone_expected.ry,
            undone_expected.cls,
        )
        assert current(store) == labels_after
    assert store.undo() is None
    assert store.undo() is None
    assert current(store) == {}
    # undo is itself recorded; nothing was deleted
    assert [e.kind for e in store.events()] == ["label", "relabel", "label", "skip"] + ["undo"] * 4


def test_undo_restores_the_previous_source_too(store):
    store.label(1, 1, "vertical", "grid")
    store.label(1, 1, "horizontal", "manual")
    store.undo()
    label = store.labels()[(1, 1)]
    assert (label.cls, label.source) == ("vertical", "grid")


def test_labelling_after_an_undo_continues_normally(store):
    store.label(1, 1, "vertical", "grid")
    store.undo()
    event = store.label(1, 1, "none", "grid")
    assert event.kind == "label"  # nothing is labelled there any more
    assert current(store) == {(1, 1): "none"}
    assert store.undo().id == event.id
    assert store.undo() is None  # the first label is already undone


def test_undoing_a_queued_label_makes_its_query_pending_again(store):
    store.enqueue([(1, 1, "grid", 0.0), (2, 2, "grid", 0.0), (3, 3, "uncertainty", 0.5)])
    first = store.next_query()
    assert (first.rx, first.ry) == (1, 1)
    store.label(first.rx, first.ry, "vertical", first.source, queue_item=first.id)
    second = store.next_query()
    assert (second.rx, second.ry) == (2, 2)
    store.skip(second.rx, second.ry, second.source, queue_item=second.id)
    assert [(q.rx, q.ry) for q in store.pending()] == [(3, 3)]

    assert store.undo().kind == "skip"
    assert [(q.rx, q.ry, q.state) for q in store.pending()] == [
        (2, 2, "pending"),
        (3, 3, "pending"),
    ]
    assert store.undo().kind == "label"
    assert [(q.rx, q.ry) for q in store.pending()] == [(1, 1), (2, 2), (3, 3)]
    assert store.next_query().id == first.id  # the same query is shown again


# -- queue ----------------------------------------------------------------------------------
def test_enqueue_never_queues_a_pending_position_twice(store):
    assert store.enqueue([(1, 1, "grid", 0.0), (1, 1, "boundary", 1.0), (2, 2, "grid", 0.0)]) == 2
    assert store.enqueue([(2, 2, "uncertainty", 0.9), (3, 3, "uncertainty", 0.8)]) == 1
    assert [(q.rx, q.ry, q.source) for q in store.pending()] == [
        (1, 1, "grid"),
        (2, 2, "grid"),
        (3, 3, "uncertainty"),
    ]
    # once answered, a position may be queued again (e.g. a later round's query)
    item = store.next_query()
    store.label(item.rx, item.ry, "none", item.source, queue_item=item.id)
    assert store.enqueue([(1, 1, "uncertainty", 0.1)]) == 1
    assert [(q.rx, q.ry) for q in store.pending()] == [(2, 2), (3, 3), (1, 1)]
    assert store.queued_positions() == {(1, 1), (2, 2), (3, 3)}


def test_next_query_is_first_in_first_out_and_skips_answered_items(store):
    store.enqueue([(5, 0, "grid", 0.1), (4, 0, "grid", 0.9)], round=1)
    store.enqueue([(3, 0, "uncertainty", 0.5)], round=2)
    order = []
    while (item := store.next_query()) is not None:
        order.append((item.rx, item.source, item.round))
        store.label(item.rx, item.ry, "none", item.source, queue_item=item.id)
    assert order == [(5, "grid", 1), (4, "grid", 1), (3, "uncertainty", 2)]
    assert store.pending() == []


def test_drop_pending_by_source_and_all(store):
    store.enqueue([(1, 1, "grid", 0), (2, 2, "uncertainty", 0), (3, 3, "uncertainty", 0)])
    item = store.next_query()
    store.label(item.rx, item.ry, "none", "grid", queue_item=item.id)
    assert store.drop_pending(["uncertainty"]) == 2
    assert store.pending() == []
    store.enqueue([(4, 4, "grid", 0), (5, 5, "random", 0)])
    assert store.drop_pending() == 2
    assert store.next_query() is None
    # dropped positions count as never queued; the answered one stays queued
    assert store.queued_positions() == {(1, 1)}
    # and a dropped position may be queued again
    assert store.enqueue([(2, 2, "uncertainty", 0)]) == 1


def test_queue_and_place_survive_reopening(store, db_path):
    store.enqueue([(1, 1, "grid", 0), (2, 2, "grid", 0)])
    item = store.next_query()
    store.label(item.rx, item.ry, "vertical", "grid", queue_item=item.id)
    store.close()
    reopened = LabelStore(db_path, SHAPE, list(CLASSES))
    try:
        assert (reopened.next_query().rx, reopened.next_query().ry) == (2, 2)
        assert current(reopened) == {(1, 1): "vertical"}
    finally:
        reopened.close()


# -- import, rounds, arrays --------------------------------------------------------------
def test_import_labels_is_one_transaction_and_relabels_existing(store):
    store.label(0, 0, "vertical", "manual")
    n = store.import_labels([(0, 0, "none", "import"), (1, 0, "horizontal", "import")])
    assert n == 2
    assert current(store) == {(0, 0): "none", (1, 0): "horizontal"}
    assert [e.kind for e in store.events()] == ["label", "relabel", "label"]


def test_a_planned_round_queues_its_queries_and_stamps_new_events(store):
    assert store.round == 1 and store.round_plans() == []
    store.plan_round(1, [(0, 0, "grid", 0.0), (1, 1, "holdout", 0.0)], "grid", {"phase": "grid"})
    assert store.round == 1 and store.pending_in_round(1) == 2
    first, second = store.pending()
    store.label(0, 0, "none", "grid", queue_item=first.id)
    end = store.label(1, 1, "vertical", "holdout", queue_item=second.id)
    assert store.pending_in_round(1) == 0
    assert store.last_answer_in_round(1) == end.id
    store.end_round(1, end.id)
    store.plan_round(2, [(2, 2, "boundary", 0.0)], "boundary", {"phase": "boundary"})
    assert store.round == 2
    event = store.label(2, 2, "none", "boundary", queue_item=store.pending()[0].id)
    assert event.round == 2 and store.labels()[(0, 0)].round == 1
    plans = store.round_plans()
    assert [(p.round, p.message, p.ended) for p in plans] == [
        (1, "grid", True),
        (2, "boundary", False),
    ]
    assert plans[0].schedule == {"phase": "grid"} and plans[0].ended_event == end.id


def test_reopening_a_round_forgets_later_rounds(store):
    store.plan_round(1, [(0, 0, "grid", 0.0)], "grid", {"phase": "grid"})
    end = store.label(0, 0, "none", "grid", queue_item=store.pending()[0].id)
    store.end_round(1, end.id)
    store.plan_round(2, [(1, 1, "boundary", 0.0), (2, 2, "boundary", 0.0)], "b", {"phase": "b"})
    assert store.reopen_round(1) == 1
    assert store.round == 1 and store.pending() == []  # round 2's queries are dropped
    assert [(p.round, p.ended) for p in store.round_plans()] == [(1, False)]


def test_labels_at_replays_the_log_up_to_an_event(store):
    a = store.label(0, 0, "none", "grid")
    b = store.label(0, 0, "vertical", "manual")
    store.undo()
    assert {k: v.cls for k, v in store.labels_at(a.id).items()} == {(0, 0): "none"}
    assert {k: v.cls for k, v in store.labels_at(b.id).items()} == {(0, 0): "vertical"}
    assert {k: v.cls for k, v in store.labels().items()} == {(0, 0): "none"}


def test_a_new_current_model_retires_the_last(store):
    def add(state: str, round: int):
        return store.add_model(
            round=round,
            up_to_event=1,
            labels_digest=f"d{round}",
            checkpoint=f"checkpoints/{round}.pt",
            predictions=f"predictions/{round}.h5",
            state=state,
            reason="test",
            metrics={"labels": round},
        )

    first = add("current", 1)
    candidate = add("candidate", 2)
    assert store.current_model().id == first.id
    third = add("current", 3)
    assert [m.state for m in store.models()] == ["retired", "candidate", "current"]
    store.set_model_state(candidate.id, "current", "promoted by hand")
    assert store.current_model().id == candidate.id and store.model(third.id).state == "retired"
    assert store.model(candidate.id).reason == "promoted by hand"
    with pytest.raises(ValueError):
        add("bogus", 4)


def test_trained_rounds_of_an_old_database_become_models(tmp_path):
    import json
    import sqlite3

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE rounds (round INTEGER PRIMARY KEY, finished REAL NOT NULL,"
        " checkpoint TEXT, metrics TEXT);"
    )
    for r in (1, 2):
        db.execute(
            "INSERT INTO rounds VALUES (?, ?, ?, ?)",
            (r, 1.0, f"checkpoints/round-{r:04d}.pt", json.dumps({"labels_digest": f"d{r}"})),
        )
    db.commit()
    db.close()
    store = LabelStore(path, (4, 4), list(CLASSES))
    models = store.models()
    assert [(m.round, m.state, m.checkpoint, m.labels_digest) for m in models] == [
        (1, "retired", "checkpoints/round-0001.pt", "d1"),
        (2, "current", "checkpoints/round-0002.pt", "d2"),
    ]
    assert models[1].predictions == "predictions/round-0002.h5"
    store.close()
    assert len(LabelStore(path, (4, 4), list(CLASSES)).models()) == 2  # migrated once


def test_label_arrays_leave_out_holdout_unless_asked(store):
    store.label(3, 1, "none", "grid")
    store.label(1, 2, "vertical", "holdout")
    store.label(0, 5, "horizontal", "manual")
    positions, classes, sources = store.label_arrays()
    assert positions.tolist() == [[0, 5], [3, 1]]
    assert classes.tolist() == [0, 2]
    assert sources == ["manual", "grid"]
    positions, classes, sources = store.label_arrays(include_holdout=True)
    assert positions.tolist() == [[0, 5], [1, 2], [3, 1]]
    assert classes.tolist() == [0, 1, 2]
    assert "holdout" in sources
    empty = LabelStore(store.path.with_name("empty.sqlite"), SHAPE, list(CLASSES), mode="create")
    try:
        positions, classes, _ = empty.label_arrays()
        assert positions.shape == (0, 2) and classes.dtype == np.int64
    finally:
        empty.close()


def test_meta_round_trips_json(store):
    store.set_meta("sampler", {"grid_done": True, "seen": [1, 2]})
    assert store.get_meta("sampler") == {"grid_done": True, "seen": [1, 2]}
    assert store.get_meta("missing", 7) == 7


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b"this is not a database at all\n" * 200),
        lambda p: p.write_bytes(p.read_bytes()[:1000]),  # a truncated database
    ],
    ids=["garbage", "truncated"],
)
def test_a_corrupt_database_is_a_session_error(db_path, damage):
    store = LabelStore(db_path, SHAPE, list(CLASSES), mode="create")
    for i in range(50):
        store.label(i % 24, i % 16, CLASSES[i % 3], "manual")
    store.close()
    for suffix in ("-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
    damage(db_path)
    damaged = db_path.read_bytes()
    with pytest.raises(SessionError, match="corrupt or not SQLite"):
        LabelStore(db_path, SHAPE, list(CLASSES))
    assert db_path.read_bytes() == damaged  # left as it was, for rescue
