"""Which session folders exist: the sessions root plus a small registry of folders.

Sessions live in the sessions home (:func:`ghosttui.session.home.sessions_root`)
or anywhere a user puts them with ``--dir``. ``new`` and every open of a
session add its folder to ``DATA_DIR/sessions.json`` (see
:func:`ghosttui.dirs.data_dir`), so that a command writing an output knows
every session on this machine, not only those in today's root, and can refuse
to write over their files (:mod:`ghosttui.session.protect`).

The registry is a convenience of protection, not a source of truth: folders
that no longer hold a session are dropped when it is next written, and if the
data folder cannot be written the command still runs (sessions in the root and
the folder an output lands in are always checked).

This module imports nothing heavy: the output guard uses it before any write.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import sys
from pathlib import Path
from typing import Any

from ghosttui.dirs import data_dir
from ghosttui.errors import GhostError
from ghosttui.session.home import DATABASE, SETTINGS, sessions_root

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REGISTRY = "sessions.json"


def is_session_dir(folder: Path) -> bool:
    """A folder holding a session's settings or label database."""
    return (folder / SETTINGS).is_file() or (folder / DATABASE).exists()


def registry_path() -> Path:
    return data_dir() / REGISTRY


def registered() -> list[Path]:
    """Folders in the registry (absolute; they may have gone since)."""
    try:
        doc = json.loads(registry_path().read_text(encoding="utf-8"))
        return [Path(p) for p in doc.get("sessions", []) if isinstance(p, str)]
    except (OSError, ValueError, AttributeError):
        return []


def register(folder: str | Path) -> bool:
    """Add a session folder to the registry (best effort); True when it is listed."""
    from ghosttui.files import atomic_output

    folder = Path(folder).expanduser().resolve()
    if folder in registered():
        return True
    path = registry_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(REGISTRY + ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # no lost updates between concurrent commands
            known = [p for p in registered() if p != folder and is_session_dir(p)]
            doc = {"sessions": [str(p) for p in sorted({*known, folder})]}
            with atomic_output(path, guard=False) as tmp:
                tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        return True
    except (OSError, GhostError):  # the data folder cannot be written: protection degrades
        return False


def known_session_dirs() -> list[Path]:
    """Every session folder this machine knows: the root's and the registry's (resolved)."""
    found: dict[Path, None] = {}
    root = sessions_root()
    with contextlib.suppress(OSError):
        for child in sorted(root.iterdir()) if root.is_dir() else []:
            if is_session_dir(child):
                found[child.resolve()] = None
    for folder in registered():
        if is_session_dir(folder):
            found[folder.resolve()] = None
    return list(found)


def session_summary(folder: Path) -> tuple[str, Path | None]:
    """A session's name and the data file its settings name (None when unreadable)."""
    try:
        doc: dict[str, Any] = tomllib.loads((folder / SETTINGS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return folder.name, None
    name = doc.get("name") if isinstance(doc.get("name"), str) else folder.name
    try:
        return name, Path(doc["data"]["path"]).expanduser()
    except (KeyError, TypeError):
        return name, None
