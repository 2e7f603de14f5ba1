"""No command writes over a file a session depends on.

A session depends on its folder (``session.toml``, ``labels.sqlite`` and its
WAL, ``checkpoints/``, ``predictions/``, the lock) and on its data file, which
may live anywhere. Every output a user names (``simulate OUT``, ``predict
--out``, ``labels export FILE``, ``export --out``, ``preprocess --cache-dir``,
``bench --json/--plot``, ``--truth-npy``) passes :func:`check_output` before a
byte is written: :func:`ghosttui.files.atomic_output` calls it for every write
unless the writer declares that it writes a session's own file.

An output is refused when it

1. is, or lies inside, a session folder: any folder up its path that holds a
   ``session.toml`` or a ``labels.sqlite`` (found on disk, so this holds for
   sessions nobody registered);
2. is the data file of a known session: sessions in the sessions root and
   every folder in the registry (:mod:`ghosttui.session.registry`, kept up to
   date by ``new`` and every open), compared by resolved path and by inode
   (hard links, other spellings);
3. is an existing folder that holds a known session or its data file (an
   export swaps its whole folder);
4. lies inside ghosttui's own data folder (the registry, recorded hashes) but
   outside the sessions home (which by default lies inside it: the sessions and
   the demo's scans there are guarded by 1-3);
5. is one of the command's own inputs (``predict --data X --out X``).

Overwriting anything else is allowed (an earlier ``predict --out`` file, say),
and always atomic: the old file stays whole until the new one replaces it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from ghosttui.dirs import data_dir
from ghosttui.errors import ProtectedPathError
from ghosttui.session.home import sessions_root
from ghosttui.session.registry import is_session_dir, known_session_dirs, session_summary

HINT = "ghosttui never writes over a session's files; choose another output"


def _resolved(path: str | Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _same_file(a: Path, b: Path) -> bool:
    if a == b:
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return False


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def enclosing_session(path: str | Path) -> Path | None:
    """The session folder ``path`` is (or lies inside), found on disk; None if none."""
    resolved = _resolved(path)
    for folder in (resolved, *resolved.parents):
        if folder.is_dir() and is_session_dir(folder):
            return folder
    return None


def check_output(target: str | Path, *, inputs: Iterable[str | Path] = ()) -> None:
    """Raise :class:`ProtectedPathError` when writing ``target`` could destroy saved work."""
    resolved = _resolved(target)
    shown = Path(target)
    folder = enclosing_session(resolved)
    if folder is not None:
        raise ProtectedPathError(f"is inside session folder {folder}; {HINT}", shown)
    if _within(resolved, _resolved(data_dir())) and not _within(
        resolved, _resolved(sessions_root())
    ):
        raise ProtectedPathError(f"is inside ghosttui's own data folder; {HINT}", shown)
    is_folder = resolved.is_dir()
    for session in known_session_dirs():
        name, data = session_summary(session)
        if data is not None and _same_file(resolved, _resolved(data)):
            raise ProtectedPathError(
                f"is the data file of session '{name}' ({session}); {HINT}", shown
            )
        if is_folder and (
            _within(session, resolved) or (data is not None and _within(_resolved(data), resolved))
        ):
            raise ProtectedPathError(
                f"holds session '{name}' or its data ({session}); {HINT}", shown
            )
    for source in inputs:
        if _same_file(resolved, _resolved(source)):
            raise ProtectedPathError(
                "is also an input of this command; choose another output name", shown
            )
