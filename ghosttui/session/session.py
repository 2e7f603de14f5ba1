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
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ghosttui.data.fingerprint import file_fingerprint
from ghosttui.data.formats import open_scan
from ghosttui.data.options import LoadOptions
from ghosttui.data.scan import Calibration, Scan
from ghosttui.errors import DataError, SessionError
from ghosttui.patterns.settings import PreprocessSettings
from ghosttui.session.home import (
    DATABASE,
    SETTINGS,
    missing_session_message,
    resolve_session_dir,
    sessions_root,
)
from ghosttui.session.lock import SessionLock
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

LOCK = ".lock"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Session:
    def __init__(
        self, directory: Path, settings: SessionSettings, lock: SessionLock | None
    ) -> None:
        self.dir = directory
        self.settings = settings
        self.lock = lock
        self.store = LabelStore(
            directory / DATABASE,
            (settings.data.shape[0], settings.data.shape[1]),
            settings.class_names,
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
    ) -> Session:
        if not _NAME.match(name):
            raise SessionError(
                f"session name {name!r} must be letters, digits, '.', '_' or '-' (up to 64, no spaces)"
            )
        target = Path(directory).expanduser() if directory else sessions_root() / name
        if (target / SETTINGS).exists():
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
            data=DataSpec(str(data_path), file_fingerprint(data_path), shape, fmt, load),
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
        write_settings(target / SETTINGS, settings)
        return cls(target, settings, lock)

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
        try:
            settings = read_settings(target / SETTINGS)
            settings = cls._check_data(target, settings, data)
            return cls(target, settings, lock)
        except BaseException:
            if lock is not None:
                lock.release()
            raise

    @staticmethod
    def _check_data(
        target: Path, settings: SessionSettings, repoint: str | Path | None
    ) -> SessionSettings:
        """Refuse a changed data file; re-point to a moved copy with the same content."""
        recorded = settings.data.fingerprint
        if repoint is not None:
            new = Path(repoint).expanduser().resolve()
            if not new.exists():
                raise SessionError("no such file to re-point the session at", new)
            if file_fingerprint(new) != recorded:
                raise SessionError(
                    f"content differs from the session's data (fingerprint {recorded[:12]}...); not re-pointed",
                    new,
                )
            settings.data.path = str(new)
            write_settings(target / SETTINGS, settings)
            return settings
        path = Path(settings.data.path)
        if not path.exists():
            raise SessionError(
                f"session '{settings.name}': data file {path} is missing; if it moved, "
                "re-point the session with --data NEW_PATH"
            )
        if file_fingerprint(path) != recorded:
            raise SessionError(
                f"session '{settings.name}': data file {path} changed since the session was made "
                "(content fingerprint differs); refusing to mix labels with other data. "
                "If this is a moved copy of the original, use --data with the original file"
            )
        return settings

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
