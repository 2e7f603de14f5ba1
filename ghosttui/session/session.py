"""A labelling session on disk.

``HOME/NAME/`` (the sessions home: see :mod:`ghosttui.session.home`)::

    session.toml            settings (data path and fingerprint, preprocessing,
                            classes with keys and colours, model, sampling, keys)
    labels.sqlite           every label event, the query queue, rounds
    .lock                   who holds the session (see SessionLock)
    checkpoints/rRRRR-eEEEEEE-XXXXXX.pt   a model trained at round R on the labels up
                                        to event E (the database says which is current)
    predictions/rRRRR-eEEEEEE-XXXXXX.h5   its class probabilities (Rx, Ry, C)

The pattern cache lives in the shared cache directory, keyed by the data's
fingerprint and the preprocessing settings, so two sessions on one scan share
it.

Safety rules (issue 12):

* ``new`` takes the session's lock *before* it looks for an existing session,
  creates ``labels.sqlite`` and writes ``session.toml`` last: two ``new`` of one
  name cannot both succeed, and a ``session.toml`` always has its database;
* an open refuses a missing or empty ``labels.sqlite``, and one that holds no
  label beside trained checkpoints (deleted, emptied or replaced), with how to
  recover, instead of silently starting an empty one;
* read-only opens (status, export, predict, labels export) take no lock and
  open the database read-only: they never write it and run while another
  process holds the session;
* the data file is checked by its full content hash (recorded per file
  version, see :mod:`ghosttui.data.fingerprint`); sessions made with the
  former sampled fingerprint are checked with it and upgraded when opened for
  writing;
* every open registers the folder (:mod:`ghosttui.session.registry`) so that
  no command writes over its files; writable opens remove temporaries that
  killed runs left in the folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ghosttui.data.fingerprint import file_fingerprint, is_full_fingerprint, sampled_fingerprint
from ghosttui.data.formats import open_scan
from ghosttui.data.options import LoadOptions
from ghosttui.data.scan import Calibration, Scan
from ghosttui.errors import DataError, SessionError
from ghosttui.files import remove_stale_temporaries
from ghosttui.patterns.settings import PreprocessSettings
from ghosttui.session.home import (
    DATABASE,
    LOCK,
    SETTINGS,
    missing_session_message,
    resolve_session_dir,
    sessions_root,
)
from ghosttui.session.lock import SessionLock
from ghosttui.session.registry import register
from ghosttui.session.settings import (
    ClassSpec,
    DataSpec,
    ModelSpec,
    SamplingSpec,
    SessionSettings,
    read_settings,
    write_settings,
)
from ghosttui.session.store import LabelStore, ModelRecord

if TYPE_CHECKING:  # torch is imported only by the methods that need a model or the cache
    from ghosttui.model.checkpoint import Checkpoint
    from ghosttui.patterns.cache import PatternCache, Progress

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Session:
    def __init__(
        self,
        directory: Path,
        settings: SessionSettings,
        lock: SessionLock | None,
        *,
        store_mode: str = "rw",
    ) -> None:
        self.dir = directory
        self.settings = settings
        self.lock = lock
        self.store = LabelStore(
            directory / DATABASE,
            (settings.data.shape[0], settings.data.shape[1]),
            settings.class_names,
            mode=store_mode,
        )
        self._cache: PatternCache | None = None
        self._scan: Scan | None = None

    # -- creating and opening ---------------------------------------------------------
    @classmethod
    def create(
        cls,
        name: str,
        data_path: str | Path,
        *,
        options: LoadOptions | None = None,
        classes: list[ClassSpec],
        preprocess: PreprocessSettings | None = None,
        model: ModelSpec | None = None,
        sampling: SamplingSpec | None = None,
        directory: str | Path | None = None,
        hash_progress: Progress | None = None,
    ) -> Session:
        """A new session; ``hash_progress(done, total)`` follows the data file's first hash."""
        if not _NAME.match(name):
            raise SessionError(
                f"session name {name!r} must be letters, digits, '.', '_' or '-' (up to 64, no spaces)"
            )
        target = Path(directory).expanduser() if directory else sessions_root() / name
        if (target / SETTINGS).exists():  # early and friendly; checked again under the lock
            raise SessionError(f"session '{name}' already exists", target)
        options = options or LoadOptions()
        data_path = Path(data_path).expanduser().resolve()
        with open_scan(data_path, options) as scan:
            shape, fmt, dataset = list(scan.shape), scan.format, scan.dataset
        load = options.to_dict()
        if dataset and "dataset" not in load:
            load["dataset"] = dataset
        settings = SessionSettings(
            name=name,
            data=DataSpec(
                str(data_path), file_fingerprint(data_path, hash_progress), shape, fmt, load
            ),
            classes=classes,
            preprocess=preprocess or PreprocessSettings(),
            model=model or ModelSpec(),
            sampling=sampling or SamplingSpec(),
        )
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SessionError(f"cannot create session folder ({exc.strerror})", target) from exc
        lock = SessionLock(target / LOCK, name).acquire()
        try:
            if (target / SETTINGS).exists():  # another `new` of this name got here first
                raise SessionError(f"session '{name}' already exists", target)
            _refuse_orphaned_database(target, settings)
            remove_stale_temporaries(target, legacy=True)
            LabelStore(
                target / DATABASE, (shape[0], shape[1]), settings.class_names, mode="create"
            ).close()
            write_settings(target / SETTINGS, settings)  # the session exists from here on
            register(target)
            return cls(target, settings, lock)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def open(
        cls,
        name: str,
        *,
        directory: str | Path | None = None,
        writable: bool = True,
        data: str | Path | None = None,
    ) -> Session:
        target = resolve_session_dir(name, directory)
        if not (target / SETTINGS).exists():
            raise SessionError(missing_session_message(name, directory))
        lock = SessionLock(target / LOCK, name).acquire() if writable or data else None
        session = None
        try:
            settings = read_settings(target / SETTINGS)
            _check_database_file(target)
            settings = cls._check_data(target, settings, data, upgrade=lock is not None)
            if lock is not None:
                for folder in (target, target / "checkpoints", target / "predictions"):
                    remove_stale_temporaries(folder, legacy=True)
            session = cls(target, settings, lock, store_mode="rw" if lock else "ro")
            session._check_not_emptied()
            register(target)
            return session
        except BaseException:
            if session is not None:
                session.store.close()
            if lock is not None:
                lock.release()
            raise

    @staticmethod
    def _check_data(
        target: Path, settings: SessionSettings, repoint: str | Path | None, upgrade: bool = False
    ) -> SessionSettings:
        """Refuse a changed data file; re-point to a moved copy with the same content.

        ``upgrade``: a session recorded with the former sampled fingerprint gets the full
        content hash once its file matches (needs the session's lock).
        """
        recorded = settings.data.fingerprint

        def same_content(path: Path) -> bool:
            if is_full_fingerprint(recorded):
                return file_fingerprint(path) == recorded
            return sampled_fingerprint(path) == recorded

        if repoint is not None:
            new = Path(repoint).expanduser().resolve()
            if not new.exists():
                raise SessionError("no such file to re-point the session at", new)
            if not same_content(new):
                raise SessionError(
                    f"content differs from the session's data (fingerprint {recorded[:21]}...); not re-pointed",
                    new,
                )
            settings.data.path = str(new)
            if not is_full_fingerprint(recorded):
                settings.data.fingerprint = file_fingerprint(new)
            write_settings(target / SETTINGS, settings)
            return settings
        path = Path(settings.data.path)
        if not path.exists():
            raise SessionError(
                f"session '{settings.name}': data file {path} is missing; if it moved, "
                "re-point the session with --data NEW_PATH"
            )
        if not same_content(path):
            raise SessionError(
                f"session '{settings.name}': data file {path} changed since the session was made "
                "(content fingerprint differs); refusing to mix labels with other data. "
                "If this is a moved copy of the original, use --data with the original file"
            )
        if upgrade and not is_full_fingerprint(recorded):
            settings.data.fingerprint = file_fingerprint(path)
            write_settings(target / SETTINGS, settings)
        return settings

    def _check_not_emptied(self) -> None:
        """Refuse a database without a single event beside trained checkpoints."""
        if self.store.last_event_id() > 0 or self.store.models():
            return
        trained = sorted((self.dir / "checkpoints").glob("*.pt"))
        if trained:
            raise SessionError(
                f"label database holds no labels but checkpoints/ holds {len(trained)} trained "
                "model(s): it was emptied or replaced. Restore labels.sqlite (and "
                "labels.sqlite-wal) from a backup; or, to start the labels again, move "
                "checkpoints/ and predictions/ out of the session folder",
                self.store.path,
            )

    # -- properties -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def classes(self) -> list[str]:
        return self.settings.class_names

    @property
    def colours(self) -> list[str]:
        return [c.colour for c in self.settings.classes]

    @property
    def scan_shape(self) -> tuple[int, int]:
        return self.settings.data.shape[0], self.settings.data.shape[1]

    @property
    def load_options(self) -> LoadOptions:
        return LoadOptions.from_dict(self.settings.data.load)

    def save_settings(self) -> None:
        self._require_writable()
        write_settings(self.dir / SETTINGS, self.settings)

    def _require_writable(self) -> None:
        if self.lock is None:
            raise SessionError(f"session '{self.name}' was opened read-only")

    # -- data -----------------------------------------------------------------------------
    def cache(self, progress: Progress | None = None) -> PatternCache:
        from ghosttui.patterns.cache import open_or_build

        if self._cache is None:
            self._cache = open_or_build(
                self.settings.data.path,
                self.load_options,
                self.settings.preprocess,
                progress=progress,
            )
        return self._cache

    def calibration(self) -> Calibration:
        """The scan's pixel sizes: from the pattern cache when it is built, else from the file."""
        from ghosttui.patterns.cache import PatternCache, cache_path_for

        if self._cache is not None:
            return self._cache.calibration
        path, _ = cache_path_for(
            self.settings.data.path, self.load_options, self.settings.preprocess
        )
        if path.exists():
            try:
                with PatternCache(path) as cache:
                    return cache.calibration
            except DataError:
                pass  # unreadable: the data file says the same
        return self.scan().calibration

    def scan(self) -> Scan:
        if self._scan is None:
            self._scan = open_scan(self.settings.data.path, self.load_options)
        return self._scan

    # -- models and predictions -------------------------------------------------------------
    def current_model(self) -> ModelRecord | None:
        """The model in use: its map is shown, it drives the queue, ``predict`` applies it."""
        return self.store.current_model()

    def find_model(self, round: int | None = None, model_id: int | None = None) -> ModelRecord:
        """The current model, the last model of ``round``, or model ``model_id``."""
        models = self.store.models()
        if model_id is not None:
            found = next((m for m in models if m.id == model_id), None)
            what = f"no model {model_id}"
        elif round is not None:
            found = next((m for m in reversed(models) if m.round == round), None)
            what = f"no model of round {round}"
        else:
            found = self.current_model()
            what = "no trained model; run `ghosttui train` (or label a round) first"
        if found is None:
            raise SessionError(f"session '{self.name}': {what}")
        return found

    def load_model(self, record: ModelRecord) -> Checkpoint:
        from ghosttui.model.checkpoint import load_checkpoint

        return load_checkpoint(
            self.dir / record.checkpoint, session_id=self.settings.id, classes=self.classes
        )

    def save_predictions(self, stem: str, round: int, probabilities: np.ndarray) -> Path:
        from ghosttui.model.outputs import write_probabilities

        return write_probabilities(
            self.dir / "predictions" / f"{stem}.h5",
            probabilities,
            self.classes,
            round=round,
            session=self.name,
            guard=False,  # the session's own predictions/
        )

    def load_predictions(self, record: ModelRecord | None = None) -> np.ndarray | None:
        """Probabilities (Rx, Ry, C) of ``record`` (default: the current model), if any."""
        from ghosttui.model.outputs import read_probabilities

        record = record or self.current_model()
        if record is None:
            return None
        path = self.dir / record.predictions
        if not path.exists():
            return None
        return read_probabilities(path)

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        if self._scan is not None:
            self._scan.close()
            self._scan = None
        self.store.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


RECOVER = (
    "restore labels.sqlite (with labels.sqlite-wal, if any) from a backup; to start again "
    "without labels, move this session folder aside and run `ghosttui new`"
)


def _check_database_file(target: Path) -> None:
    """A session's database must exist and not be empty; never recreated silently."""
    database = target / DATABASE
    if not database.exists():
        raise SessionError(f"label database is missing; {RECOVER}", database)
    if database.stat().st_size == 0:
        raise SessionError(f"label database is empty (0 bytes); {RECOVER}", database)


def _refuse_orphaned_database(target: Path, settings: SessionSettings) -> None:
    """``new`` in a folder with labels but no settings: refuse rather than reuse them."""
    database = target / DATABASE
    if not database.exists() or database.stat().st_size == 0:
        return
    store = LabelStore(
        database,
        (settings.data.shape[0], settings.data.shape[1]),
        settings.class_names,
        mode="ro",
    )
    try:
        events = store.last_event_id()
    finally:
        store.close()
    if events:
        raise SessionError(
            f"holds {events} label event(s) but no session.toml: restore session.toml from a "
            "backup, or move the folder aside to start a new session here",
            database,
        )
