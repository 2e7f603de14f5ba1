"""Where sessions live, and finding them.

A session is a folder holding ``session.toml``. Commands that take a session NAME
look it up in one folder, the *sessions home*, the same from every working folder:

1. ``$GHOSTTUI_SESSIONS`` when it is set (a project's own ``sessions/`` folder, say);
2. otherwise ``$XDG_DATA_HOME/ghosttui/sessions``, that is
   ``~/.local/share/ghosttui/sessions`` when ``XDG_DATA_HOME`` is not set.

A session anywhere else is reached with ``--dir FOLDER`` or by giving the path of its
folder in place of the name. :func:`sessions_root` is the one place that decides the home.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SETTINGS = "session.toml"
DATABASE = "labels.sqlite"
LOCK = ".lock"
SESSIONS_ENV = "GHOSTTUI_SESSIONS"


def default_sessions_root() -> Path:
    """``$XDG_DATA_HOME/ghosttui/sessions``, else ``~/.local/share/ghosttui/sessions``."""
    base = os.environ.get("XDG_DATA_HOME", "")
    # the XDG spec: a relative XDG_DATA_HOME is invalid and ignored
    data_home = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return data_home / "ghosttui" / "sessions"


def sessions_root() -> Path:
    """The sessions home: ``$GHOSTTUI_SESSIONS`` when set, else :func:`default_sessions_root`."""
    configured = os.environ.get(SESSIONS_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().absolute()
    return default_sessions_root()


def describe_root() -> str:
    """The sessions home and where that choice came from, for messages."""
    source = f"${SESSIONS_ENV}" if os.environ.get(SESSIONS_ENV, "").strip() else "the default"
    return f"{sessions_root()} ({source})"


def is_session(folder: Path) -> bool:
    return (folder / SETTINGS).is_file()


def resolve_session_dir(name: str, directory: str | Path | None = None) -> Path:
    """A session's folder: ``--dir`` when given, a path to a session folder, or HOME/NAME."""
    if directory is not None:
        return Path(directory).expanduser()
    candidate = Path(name).expanduser()
    if is_session(candidate):
        return candidate
    return sessions_root() / name


def session_folders(root: Path | None = None) -> list[Path]:
    """The session folders directly under ``root`` (default: the sessions home), by name."""
    root = sessions_root() if root is None else root
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if is_session(p)), key=lambda p: p.name)


def missing_session_message(name: str, directory: str | Path | None = None) -> str:
    """Why ``name`` was not found: the folder searched, what is there, how to look elsewhere."""
    if directory is not None:
        return f"no session in {Path(directory).expanduser()} (it has no {SETTINGS})"
    root = sessions_root()
    known = [p.name for p in session_folders(root)]
    there = f"sessions there: {', '.join(known)}" if known else "no sessions there yet"
    message = f"no session '{name}' in {describe_root()}; {there}."
    local = Path("sessions") / name
    if is_session(local) and local.resolve() != (root / name).resolve():
        message += (
            f" Found {local}/ in this folder: use --dir {local} or GHOSTTUI_SESSIONS=sessions."
        )
    else:
        message += " Look elsewhere with --dir FOLDER or GHOSTTUI_SESSIONS=FOLDER."
    return message


@dataclass(frozen=True)
class SessionSummary:
    """One line of ``ghosttui sessions``: read from the folder, without opening the data."""

    name: str
    path: Path
    data: str  # empty when session.toml cannot be read (then ``problem`` says why)
    scan_shape: tuple[int, int]
    classes: list[str]
    labels: int
    models: int
    data_present: bool
    problem: str | None = None


def summarise(folder: Path) -> SessionSummary:
    """What a session folder holds; a folder that cannot be read gets a ``problem``."""
    from ghosttui.errors import GhostError
    from ghosttui.session.settings import read_settings
    from ghosttui.session.store import LabelStore

    try:
        settings = read_settings(folder / SETTINGS)
    except GhostError as exc:
        return SessionSummary(folder.name, folder, "", (0, 0), [], 0, 0, False, exc.message)
    shape = (settings.data.shape[0], settings.data.shape[1])
    labels = rounds = 0
    problem = None
    database = folder / DATABASE
    if not database.is_file():
        problem = f"no {DATABASE}"
    else:
        try:
            store = LabelStore(database, shape, settings.class_names)
            try:
                labels = len(store.labels())
                rounds = len(store.models())
            finally:
                store.close()
        except GhostError as exc:
            problem = exc.message
    return SessionSummary(
        settings.name,
        folder,
        settings.data.path,
        shape,
        settings.class_names,
        labels,
        rounds,
        Path(settings.data.path).exists(),
        problem,
    )
