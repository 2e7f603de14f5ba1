"""Labels in SQLite: every event, durable before the call that records it returns.

Events are appended, never edited: ``label`` (a first label at a position),
``relabel`` (a new class for a labelled position), ``skip`` and ``undo``
(which names the event it takes back). The current labels are the replay of
the events that are not undone, so undo any number of steps back restores
exactly what was there before, relabels included.

The query queue (what to show next, with where each query came from), the
labeller's place in it, the *rounds* and the *models* live in the same
database, so a session resumes at the same query, queue and round after a
quit, a crash or ``kill -9``.

A **round** is one batch of queries that the schedule planned at once (the
coarse grid with the holdout, one boundary pass, one uncertainty batch, ...).
It ends when every query of it is answered (labelled or skipped); the event
that ended it is recorded, so the labels "as of the end of round r" can be
replayed exactly at any later time. A **model** is trained on such a
snapshot; the ``models`` table says which model is *current* (drives the map
and the queue), which are *candidates* (trained, not taken) or *retired*.

The database runs in WAL mode with ``synchronous=FULL``: a committed
transaction survives a power cut.

Every write is one transaction: it is committed whole or not at all. A write
that fails (disk full, read-only place, I/O error, another writer) raises
:class:`~ghosttui.errors.StorageError` naming the database after rolling back,
so the caller may keep what it meant to save and repeat the same call later.
A store opened ``mode="ro"`` never writes the database (read-only commands
use it, and run while another process holds the session); ``mode="rw"``
refuses a missing file instead of creating an empty one; only ``"create"``
(a new session) creates it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ghosttui.errors import SessionError, StorageError
from ghosttui.files import free_bytes
from ghosttui.session.settings import SOURCES

SCHEMA_VERSION = 2
MODEL_STATES = ("current", "candidate", "retired")
MODES = {"create": "rwc", "rw": "rw", "ro": "ro"}  # sqlite URI modes
DISK_FULL_BYTES = 1 << 20  # below this much free space, SQLite's I/O errors mean a full disk
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('label', 'relabel', 'skip', 'undo')),
    rx INTEGER NOT NULL,
    ry INTEGER NOT NULL,
    class TEXT,
    source TEXT NOT NULL,
    round INTEGER NOT NULL,
    undoes INTEGER REFERENCES events(id),
    queue_item INTEGER REFERENCES queue(id)
);
CREATE INDEX IF NOT EXISTS events_position ON events (rx, ry);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    rx INTEGER NOT NULL,
    ry INTEGER NOT NULL,
    source TEXT NOT NULL,
    round INTEGER NOT NULL,
    priority REAL NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'skipped', 'dropped'))
);
CREATE INDEX IF NOT EXISTS queue_state ON queue (state, id);
CREATE TABLE IF NOT EXISTS round_plans (
    round INTEGER PRIMARY KEY,
    planned REAL NOT NULL,
    message TEXT NOT NULL,
    schedule TEXT NOT NULL,
    ended_event INTEGER
);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    round INTEGER NOT NULL,
    created REAL NOT NULL,
    up_to_event INTEGER NOT NULL,
    labels_digest TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    predictions TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('current', 'candidate', 'retired')),
    reason TEXT NOT NULL DEFAULT '',
    metrics TEXT NOT NULL DEFAULT '{}'
);
"""
# sessions made before rounds and models were separated kept one "rounds" table of trained
# rounds; it is read once into "models" (see LabelStore._migrate_trained_rounds)
LEGACY_ROUNDS = "rounds"


@dataclass(frozen=True)
class Event:
    id: int
    time: float
    kind: str
    rx: int
    ry: int
    cls: str | None
    source: str
    round: int
    undoes: int | None
    queue_item: int | None = None


@dataclass(frozen=True)
class Label:
    rx: int
    ry: int
    cls: str
    source: str
    round: int
    event: int


@dataclass(frozen=True)
class RoundPlan:
    """A planned round: what the schedule said and, once answered, the event that ended it."""

    round: int
    planned: float
    message: str
    schedule: dict[str, Any]
    ended_event: int | None

    @property
    def ended(self) -> bool:
        return self.ended_event is not None


@dataclass(frozen=True)
class ModelRecord:
    """A trained model: on the labels as of event ``up_to_event`` (the end of ``round``)."""

    id: int
    round: int
    created: float
    up_to_event: int
    labels_digest: str
    checkpoint: str
    predictions: str
    state: str
    reason: str
    metrics: dict[str, Any]


@dataclass(frozen=True)
class QueueItem:
    id: int
    rx: int
    ry: int
    source: str
    round: int
    priority: float
    state: str


class LabelStore:
    """The session's SQLite database."""

    def __init__(
        self,
        path: str | Path,
        scan_shape: tuple[int, int],
        classes: list[str],
        *,
        mode: str = "rw",
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self.path = Path(path)
        self.scan_shape = scan_shape
        self.classes = list(classes)
        self.read_only = mode == "ro"
        self._lock = threading.RLock()  # the app's training thread shares this connection
        self._replayed: tuple[int, dict[tuple[int, int], Label]] | None = None
        self._db = self._connect(mode)
        try:
            if not self.read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if not self.read_only:
                self._db.executescript(SCHEMA)  # one script, IF NOT EXISTS throughout
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
            self._has_queue_item = "queue_item" in columns
            if not self._has_queue_item and not self.read_only:
                # databases written before events named their query
                self._db.execute("ALTER TABLE events ADD COLUMN queue_item INTEGER")
                self._has_queue_item = True
            if not self.read_only:
                with self._transaction() as db:
                    db.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                    )
                self._migrate_trained_rounds()
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
            if not {"events", "queue", "meta"} <= tables:
                raise sqlite3.DatabaseError("no label tables inside")
            self._tables = tables
        except BaseException as exc:
            self._db.close()
            if isinstance(exc, sqlite3.Error):
                self._fail(exc, "cannot open the label database")
            raise

    def _connect(self, mode: str) -> sqlite3.Connection:
        uri = f"{self.path.resolve().as_uri()}?mode={MODES[mode]}"
        try:
            db = sqlite3.connect(
                uri, uri=True, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.OperationalError as exc:
            wal = self.path.with_name(self.path.name + "-wal")
            pending = wal.exists() and wal.stat().st_size > 0
            if mode != "ro" or "unable to open" not in str(exc) or pending:
                self._fail(exc, "cannot open the label database")
        except sqlite3.Error as exc:
            self._fail(exc, "cannot open the label database")
        # read-only media: SQLite cannot create the WAL index beside the file; nobody can
        # write there either, and no write-ahead log holds labels beside it (checked above),
        # so the file is read as immutable
        try:
            db = sqlite3.connect(
                f"{uri}&immutable=1", uri=True, isolation_level=None, check_same_thread=False
            )
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.Error as exc:
            self._fail(exc, "cannot open the label database")

    def _error(
        self, exc: sqlite3.Error, action: str = "cannot save to the label database"
    ) -> Exception:
        """The one-line error for a failed database call: storage or corruption.

        Errors that only a bug in ghosttui causes (a broken constraint, misuse of the
        API) are returned unchanged, to surface as the internal errors they are.
        """
        if isinstance(
            exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)
        ):
            return exc
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc)
        lowered = text.lower()
        corrupt = (
            name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
            or "malformed" in lowered
            or "not a database" in lowered
            or type(exc) is sqlite3.DatabaseError  # quick_check's verdict, missing tables
        )
        if corrupt:
            return SessionError(f"label database is corrupt or not SQLite ({text})", self.path)
        free = free_bytes(self.path.parent)
        if name == "SQLITE_FULL" or "disk is full" in lowered:
            reason = "disk full"
        elif name.startswith("SQLITE_READONLY") or "readonly" in lowered:
            reason = "read-only (file system or permissions)"
        elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in lowered:
            reason = "busy: another process is writing it"
        elif free is not None and free < DISK_FULL_BYTES:  # I/O errors of a full disk
            reason = f"disk full ({text})"
        elif name.startswith("SQLITE_CANTOPEN") or "unable to open" in lowered:
            reason = "the file or its folder cannot be opened"
        else:
            reason = text
        return StorageError(f"{action}: {reason}; nothing was changed", self.path)

    def _fail(
        self, exc: sqlite3.Error, action: str = "cannot save to the label database"
    ) -> NoReturn:
        error = self._error(exc, action)
        if error is exc:
            raise exc
        raise error from exc

    # -- plumbing ---------------------------------------------------------------
    def _transaction(self) -> Any:
        """``with store._transaction() as db``: one committed (or rolled back) write, thread-safe.

        A database error anywhere (disk full, read-only, busy) rolls back and is raised
        as a StorageError; nothing of the transaction is kept.
        """
        store = self

        class _Tx:
            def __enter__(self) -> sqlite3.Connection:
                if store.read_only:
                    raise SessionError("the label database was opened read-only", store.path)
                store._lock.acquire()
                try:
                    store._db.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    store._lock.release()
                    store._fail(exc)
                except BaseException:
                    store._lock.release()
                    raise
                return store._db

            def __exit__(self, exc_type: Any, exc: BaseException | None, _tb: Any) -> None:
                try:
                    if exc_type is None:
                        try:
                            store._db.execute("COMMIT")
                        except sqlite3.Error as error:
                            store._rollback()
                            store._fail(error)
                    else:
                        store._rollback()
                        if isinstance(exc, sqlite3.Error):
                            store._fail(exc)
                finally:
                    store._lock.release()

        return _Tx()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # sqlite may have rolled back already
                self._db.execute("ROLLBACK")

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                self._fail(exc, "cannot read the label database")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _check_position(self, rx: int, ry: int) -> None:
        if not (0 <= rx < self.scan_shape[0] and 0 <= ry < self.scan_shape[1]):
            raise SessionError(
                f"position ({rx}, {ry}) is outside the {self.scan_shape[0]}x{self.scan_shape[1]} scan"
            )

    def _check_class(self, cls: str) -> None:
        if cls not in self.classes:
            raise SessionError(f"unknown class {cls!r} (classes: {', '.join(self.classes)})")

    @staticmethod
    def _check_source(source: str) -> None:
        if source not in SOURCES:
            raise SessionError(f"unknown label source {source!r} (known: {', '.join(SOURCES)})")

    # -- meta -------------------------------------------------------------------
    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self._rows("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_meta(self, key: str, value: Any) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # -- events -----------------------------------------------------------------
    def events(self) -> list[Event]:
        queue_item = "queue_item" if self._has_queue_item else "NULL"
        rows = self._rows(
            "SELECT id, time, kind, rx, ry, class, source, round, undoes, "
            f"{queue_item} FROM events ORDER BY id"
        )
        return [Event(*row) for row in rows]

    def last_event_id(self) -> int:
        return int(self._rows("SELECT MAX(id) FROM events")[0][0] or 0)

    def labels_at(self, event_id: int) -> dict[tuple[int, int], Label]:
        """The labels as they stood right after event ``event_id`` (a replay of the log up to it).

        An undo recorded later does not change this: it is the snapshot a model trained on.
        """
        events = [e for e in self.events() if e.id <= event_id]
        return _replay(events)

    def labels(self) -> dict[tuple[int, int], Label]:
        """The current label of every labelled position (replay of the events not undone).

        The replay is cached and redone only when the event log grew, so asking
        after every keystroke costs one indexed query.
        """
        with self._lock:
            last = self.last_event_id()
            if self._replayed is not None and self._replayed[0] == last:
                return dict(self._replayed[1])
            current = _replay(self.events())
            self._replayed = (last, current)
            return dict(current)

    def label(
        self, rx: int, ry: int, cls: str, source: str, *, queue_item: int | None = None
    ) -> Event:
        """Record a label; committed to disk before returning."""
        self._check_position(rx, ry)
        self._check_class(cls)
        self._check_source(source)
        with self._lock:
            kind = "relabel" if (rx, ry) in self.labels() else "label"
            return self._append(kind, rx, ry, cls, source, queue_item, "done")

    def skip(self, rx: int, ry: int, source: str, *, queue_item: int | None = None) -> Event:
        self._check_position(rx, ry)
        self._check_source(source)
        return self._append("skip", rx, ry, None, source, queue_item, "skipped")

    def import_labels(self, rows: Iterable[tuple[int, int, str, str]]) -> int:
        """Record many labels in one transaction (all or nothing)."""
        rows = list(rows)
        for rx, ry, cls, source in rows:
            self._check_position(rx, ry)
            self._check_class(cls)
            self._check_source(source)
        now = time.time()
        with self._transaction() as db:
            existing = set(self.labels())
            round_now = self.round
            for rx, ry, cls, source in rows:
                kind = "relabel" if (rx, ry) in existing else "label"
                existing.add((rx, ry))
                db.execute(
                    "INSERT INTO events (time, kind, rx, ry, class, source, round)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (now, kind, rx, ry, cls, source, round_now),
                )
        return len(rows)

    def _append(
        self,
        kind: str,
        rx: int,
        ry: int,
        cls: str | None,
        source: str,
        queue_item: int | None,
        state: str,
    ) -> Event:
        now = time.time()
        with self._transaction() as db:
            round_now = self.round
            cursor = db.execute(
                "INSERT INTO events (time, kind, rx, ry, class, source, round, queue_item)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (now, kind, rx, ry, cls, source, round_now, queue_item),
            )
            if queue_item is not None:
                db.execute("UPDATE queue SET state = ? WHERE id = ?", (state, queue_item))
            event_id = cursor.lastrowid
        return Event(int(event_id), now, kind, rx, ry, cls, source, round_now, None, queue_item)

    def undo(self) -> Event | None:
        """Take back the latest event not yet undone; the query it answered is pending again.

        Returns the undone event (so the caller can show that pattern again), or
        None when there is nothing left to undo.
        """
        with self._transaction() as db:
            events = self.events()
            undone = {e.undoes for e in events if e.kind == "undo"}
            target = next(
                (e for e in reversed(events) if e.kind != "undo" and e.id not in undone), None
            )
            if target is None:
                return None
            db.execute(
                "INSERT INTO events (time, kind, rx, ry, class, source, round, undoes)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (
                    time.time(),
                    "undo",
                    target.rx,
                    target.ry,
                    None,
                    target.source,
                    self.round,
                    target.id,
                ),
            )
            if target.queue_item is not None:
                db.execute("UPDATE queue SET state = 'pending' WHERE id = ?", (target.queue_item,))
        return target

    # -- queue ------------------------------------------------------------------
    def _checked_queries(
        self, items: Iterable[tuple[int, int, str, float]]
    ) -> list[tuple[int, int, str, float]]:
        items = list(items)
        for rx, ry, source, _ in items:
            self._check_position(rx, ry)
            self._check_source(source)
        return items

    def _insert_queries(
        self, db: sqlite3.Connection, items: list[tuple[int, int, str, float]], round: int
    ) -> int:
        """Queue ``items`` in ``round`` inside the caller's transaction; pending positions once."""
        pending = {(q.rx, q.ry) for q in self.pending()}
        rows = []
        for rx, ry, source, priority in items:
            if (rx, ry) in pending:
                continue
            pending.add((rx, ry))
            rows.append((int(rx), int(ry), source, round, float(priority)))
        db.executemany(
            "INSERT INTO queue (rx, ry, source, round, priority) VALUES (?,?,?,?,?)", rows
        )
        return len(rows)

    def enqueue(
        self,
        items: Iterable[tuple[int, int, str, float]],
        round: int | None = None,
        meta: dict[str, Any] | None = None,
    ) -> int:
        """Append (rx, ry, source, priority) queries; positions already pending are not queued twice.

        ``meta`` entries are written in the same transaction (the sampler's state).
        """
        round = self.round if round is None else round
        items = self._checked_queries(items)
        with self._transaction() as db:
            queued = self._insert_queries(db, items, round)
            for key, value in (meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        return queued

    def pending(self) -> list[QueueItem]:
        rows = self._rows(
            "SELECT id, rx, ry, source, round, priority, state FROM queue WHERE state = 'pending'"
            " ORDER BY id"
        )
        return [QueueItem(*row) for row in rows]

    def next_query(self) -> QueueItem | None:
        rows = self._rows(
            "SELECT id, rx, ry, source, round, priority, state FROM queue WHERE state = 'pending'"
            " ORDER BY id LIMIT 1"
        )
        return QueueItem(*rows[0]) if rows else None

    def drop_pending(self, sources: Iterable[str] | None = None) -> int:
        """Drop pending queries (of the given sources), e.g. stale uncertainty queries after retraining."""
        with self._transaction() as db:
            if sources is None:
                cur = db.execute("UPDATE queue SET state = 'dropped' WHERE state = 'pending'")
            else:
                marks = ",".join("?" for _ in sources)
                cur = db.execute(
                    f"UPDATE queue SET state = 'dropped' WHERE state = 'pending' AND source IN ({marks})",
                    tuple(sources),
                )
        return cur.rowcount

    def queue_item(self, item_id: int) -> QueueItem:
        rows = self._rows(
            "SELECT id, rx, ry, source, round, priority, state FROM queue WHERE id = ?", (item_id,)
        )
        if not rows:
            raise SessionError(f"label database has no query {item_id}", self.path)
        return QueueItem(*rows[0])

    def last_answer_in_round(self, round: int) -> int | None:
        """The latest event (not undone) that answered a query of ``round``."""
        rows = self._rows(
            "SELECT MAX(e.id) FROM events e JOIN queue q ON e.queue_item = q.id"
            " WHERE q.round = ? AND e.kind != 'undo'"
            " AND e.id NOT IN (SELECT undoes FROM events WHERE undoes IS NOT NULL)",
            (round,),
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def queued_positions(self) -> set[tuple[int, int]]:
        """Every position ever queued (pending, done or skipped): never queued twice by the sampler."""
        rows = self._rows("SELECT rx, ry FROM queue WHERE state != 'dropped'")
        return {(int(a), int(b)) for a, b in rows}

    # -- rounds -----------------------------------------------------------------
    @property
    def round(self) -> int:
        """The round being labelled now (1 until the first round is planned)."""
        return int(self.get_meta("round", 1))

    def plan_round(
        self,
        round: int,
        items: Iterable[tuple[int, int, str, float]],
        message: str,
        schedule: dict[str, Any],
    ) -> int:
        """Queue round ``round``'s queries and make it the round being labelled (one transaction)."""
        items = self._checked_queries(items)
        with self._transaction() as db:
            queued = self._insert_queries(db, items, round)
            db.execute(
                "INSERT OR REPLACE INTO round_plans (round, planned, message, schedule, ended_event)"
                " VALUES (?, ?, ?, ?, NULL)",
                (round, time.time(), message, json.dumps(schedule)),
            )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('round', ?)", (json.dumps(round),))
        return queued

    def end_round(self, round: int, event_id: int) -> None:
        """Record that ``event_id`` answered the last query of ``round``."""
        with self._transaction() as db:
            db.execute("UPDATE round_plans SET ended_event = ? WHERE round = ?", (event_id, round))

    def reopen_round(self, round: int) -> int:
        """Undo reached back into ``round``: forget every later round that was planned.

        Pending queries of later rounds are dropped and their plans deleted (their answered
        queries were undone already: undo goes back one event at a time). Returns the number
        of rounds forgotten.
        """
        with self._transaction() as db:
            db.execute(
                "UPDATE queue SET state = 'dropped' WHERE state = 'pending' AND round > ?", (round,)
            )
            gone = db.execute("DELETE FROM round_plans WHERE round > ?", (round,)).rowcount
            db.execute("UPDATE round_plans SET ended_event = NULL WHERE round = ?", (round,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('round', ?)", (json.dumps(round),))
        return gone

    def round_plans(self) -> list[RoundPlan]:
        if "round_plans" not in self._tables:  # a 0.1 database opened read-only
            return []
        rows = self._rows(
            "SELECT round, planned, message, schedule, ended_event FROM round_plans ORDER BY round"
        )
        return [RoundPlan(r, p, m, json.loads(sch), e) for r, p, m, sch, e in rows]

    def round_plan(self, round: int) -> RoundPlan | None:
        return next((p for p in self.round_plans() if p.round == round), None)

    def pending_in_round(self, round: int) -> int:
        rows = self._rows(
            "SELECT COUNT(*) FROM queue WHERE state = 'pending' AND round = ?", (round,)
        )
        return int(rows[0][0])

    # -- models -------------------------------------------------------------------
    def add_model(
        self,
        *,
        round: int,
        up_to_event: int,
        labels_digest: str,
        checkpoint: str,
        predictions: str,
        state: str,
        reason: str,
        metrics: dict[str, Any],
    ) -> ModelRecord:
        """Record a trained model; a new *current* model retires the previous one."""
        if state not in MODEL_STATES:
            raise ValueError(f"unknown model state {state!r}")
        now = time.time()
        with self._transaction() as db:
            if state == "current":
                db.execute("UPDATE models SET state = 'retired' WHERE state = 'current'")
            cursor = db.execute(
                "INSERT INTO models (round, created, up_to_event, labels_digest, checkpoint,"
                " predictions, state, reason, metrics) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    round,
                    now,
                    up_to_event,
                    labels_digest,
                    checkpoint,
                    predictions,
                    state,
                    reason,
                    json.dumps(metrics),
                ),
            )
            model_id = int(cursor.lastrowid)
        return ModelRecord(
            model_id,
            round,
            now,
            up_to_event,
            labels_digest,
            checkpoint,
            predictions,
            state,
            reason,
            metrics,
        )

    def set_model_state(self, model_id: int, state: str, reason: str) -> None:
        if state not in MODEL_STATES:
            raise ValueError(f"unknown model state {state!r}")
        with self._transaction() as db:
            if state == "current":
                db.execute("UPDATE models SET state = 'retired' WHERE state = 'current'")
            db.execute(
                "UPDATE models SET state = ?, reason = ? WHERE id = ?", (state, reason, model_id)
            )

    def models(self) -> list[ModelRecord]:
        if "models" not in self._tables:  # a 0.1 database opened read-only
            return self._legacy_models()
        rows = self._rows(
            "SELECT id, round, created, up_to_event, labels_digest, checkpoint, predictions,"
            " state, reason, metrics FROM models ORDER BY id"
        )
        return [ModelRecord(*row[:9], json.loads(row[9] or "{}")) for row in rows]

    def model(self, model_id: int) -> ModelRecord | None:
        return next((m for m in self.models() if m.id == model_id), None)

    def current_model(self) -> ModelRecord | None:
        return next((m for m in reversed(self.models()) if m.state == "current"), None)

    def _legacy_models(self) -> list[ModelRecord]:
        """The trained rounds of a 0.1 database, as model records (current: the last)."""
        if LEGACY_ROUNDS not in self._tables:
            return []
        rows = self._rows(
            f"SELECT round, finished, checkpoint, metrics FROM {LEGACY_ROUNDS}"
            " WHERE checkpoint IS NOT NULL ORDER BY round"
        )
        last = self.last_event_id()
        models = []
        for i, (round, finished, checkpoint, metrics) in enumerate(rows):
            data = json.loads(metrics or "{}")
            models.append(
                ModelRecord(
                    i + 1,
                    int(round),
                    float(finished),
                    last,
                    data.get("labels_digest", ""),
                    checkpoint,
                    f"predictions/round-{round:04d}.h5",
                    "current" if i == len(rows) - 1 else "retired",
                    "trained before rounds and models were separated",
                    data,
                )
            )
        return models

    def _migrate_trained_rounds(self) -> None:
        """Sessions made before models had their own table: their trained rounds become models."""
        self._tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master")}
        if LEGACY_ROUNDS not in self._tables:
            return
        legacy = self._legacy_models()
        with self._transaction() as db:
            if db.execute("SELECT COUNT(*) FROM models").fetchone()[0] == 0:
                for m in legacy:
                    db.execute(
                        "INSERT INTO models (round, created, up_to_event, labels_digest, checkpoint,"
                        " predictions, state, reason, metrics) VALUES (?,?,?,?,?,?,?,?,?)",
                        (
                            m.round,
                            m.created,
                            m.up_to_event,
                            m.labels_digest,
                            m.checkpoint,
                            m.predictions,
                            m.state,
                            m.reason,
                            json.dumps(m.metrics),
                        ),
                    )
            db.execute(f"DROP TABLE {LEGACY_ROUNDS}")
        self._tables.discard(LEGACY_ROUNDS)

    def training_digest(self, labels: dict[tuple[int, int], Label] | None = None) -> str:
        """A digest of the training labels (holdout excluded): equal digests, equal labels.

        ``labels`` is a snapshot from :meth:`labels` (default: the current labels).
        """
        import hashlib

        current = self.labels() if labels is None else labels
        rows = sorted(
            (lab.rx, lab.ry, lab.cls) for lab in current.values() if lab.source != "holdout"
        )
        return hashlib.blake2b(repr(rows).encode(), digest_size=12).hexdigest()

    # -- summaries --------------------------------------------------------------
    def label_arrays(
        self,
        include_holdout: bool = False,
        labels: dict[tuple[int, int], Label] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Positions (k, 2), class indices (k,) and sources of the labels (default: current)."""
        current = self.labels() if labels is None else labels
        chosen = [lab for lab in current.values() if include_holdout or lab.source != "holdout"]
        chosen.sort(key=lambda lab: (lab.rx, lab.ry))
        positions = np.array([(lab.rx, lab.ry) for lab in chosen], dtype=np.int64).reshape(-1, 2)
        classes = np.array([self.classes.index(lab.cls) for lab in chosen], dtype=np.int64)
        return positions, classes, [lab.source for lab in chosen]


def _replay(events: list[Event]) -> dict[tuple[int, int], Label]:
    """The labels left by a list of events, undos applied."""
    undone = {e.undoes for e in events if e.kind == "undo"}
    current: dict[tuple[int, int], Label] = {}
    for e in events:
        if e.id in undone or e.kind in ("undo", "skip"):
            continue
        current[(e.rx, e.ry)] = Label(e.rx, e.ry, e.cls or "", e.source, e.round, e.id)
    return current
