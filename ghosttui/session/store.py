"""Labels in SQLite: every event, durable before the call that records it returns.

Events are appended, never edited: ``label`` (a first label at a position),
``relabel`` (a new class for a labelled position), ``skip`` and ``undo``
(which names the event it takes back). The current labels are the replay of
the events that are not undone, so undo any number of steps back restores
exactly what was there before, relabels included.

The query queue (what to show next, with where each query came from) and the
labeller's place in it live in the same database, so a session resumes at the
same query, queue and round after a quit, a crash or ``kill -9``.

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

SCHEMA_VERSION = 1
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
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,
    finished REAL NOT NULL,
    checkpoint TEXT,
    metrics TEXT
);
"""


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
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
            if not {"events", "queue", "rounds", "meta"} <= tables:
                raise sqlite3.DatabaseError("no label tables inside")
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

    @property
    def round(self) -> int:
        return int(self.get_meta("round", 1))

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

    def labels(self) -> dict[tuple[int, int], Label]:
        """The current label of every labelled position (replay of the events not undone).

        The replay is cached and redone only when the event log grew, so asking
        after every keystroke costs one indexed query.
        """
        with self._lock:
            last = self.last_event_id()
            if self._replayed is not None and self._replayed[0] == last:
                return dict(self._replayed[1])
            events = self.events()
            undone = {e.undoes for e in events if e.kind == "undo"}
            current: dict[tuple[int, int], Label] = {}
            for e in events:
                if e.id in undone or e.kind in ("undo", "skip"):
                    continue
                current[(e.rx, e.ry)] = Label(e.rx, e.ry, e.cls or "", e.source, e.round, e.id)
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
        items = list(items)
        for rx, ry, source, _ in items:
            self._check_position(rx, ry)
            self._check_source(source)
        with self._transaction() as db:
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
            for key, value in (meta or {}).items():
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        return len(rows)

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

    def queued_positions(self) -> set[tuple[int, int]]:
        """Every position ever queued (pending, done or skipped): never queued twice by the sampler."""
        rows = self._rows("SELECT rx, ry FROM queue WHERE state != 'dropped'")
        return {(int(a), int(b)) for a, b in rows}

    # -- rounds -----------------------------------------------------------------
    def finish_round(self, round: int, checkpoint: str, metrics: dict[str, Any]) -> None:
        """Record a trained round and move labelling on to the next one (one transaction)."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO rounds (round, finished, checkpoint, metrics) VALUES (?, ?, ?, ?)",
                (round, time.time(), checkpoint, json.dumps(metrics)),
            )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('round', ?)", (json.dumps(round + 1),))

    def rounds(self) -> list[dict[str, Any]]:
        rows = self._rows("SELECT round, finished, checkpoint, metrics FROM rounds ORDER BY round")
        return [
            {"round": r, "finished": f, "checkpoint": c, "metrics": json.loads(m) if m else {}}
            for r, f, c, m in rows
        ]

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
