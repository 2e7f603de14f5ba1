"""User-facing errors.

Every problem a user can cause (a bad file, a bad option, a locked session, a
full disk) is raised as a :class:`GhostError`. The CLI prints it as one line
and exits with status 2; nothing else in ghosttui prints tracebacks for bad
input. "internal error" is reserved for real bugs.
"""

from __future__ import annotations

from pathlib import Path


class GhostError(Exception):
    """A problem with the user's input, reported as one line (exit status 2)."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.message = " ".join(str(message).split())
        super().__init__(f"{self.path}: {self.message}" if self.path else self.message)


class DataError(GhostError):
    """A data file cannot be opened or read as a 4D-STEM scan."""


class SessionError(GhostError):
    """A session cannot be created, opened or changed."""


class ModelError(GhostError):
    """A model cannot be trained, loaded or applied."""


class StorageError(GhostError):
    """A file or database cannot be written: disk full, read-only place, no permission.

    Raised before anything is replaced: what was saved before is intact, and the
    same call may be repeated once the cause is gone (the label store's writes are
    all-or-nothing, see :class:`ghosttui.session.store.LabelStore`).
    """


class ProtectedPathError(GhostError):
    """An output would write over (or into) a file that a session depends on."""
