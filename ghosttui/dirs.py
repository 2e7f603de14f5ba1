"""Where ghosttui keeps its own small state (not caches, not sessions)."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """``$GHOSTTUI_DATA_DIR``, else ``$XDG_DATA_HOME/ghosttui``, else ``~/.local/share/ghosttui``.

    Holds the registry of session folders and the recorded content hashes of data
    files; losing it costs a re-hash, never data.
    """
    if os.environ.get("GHOSTTUI_DATA_DIR"):
        return Path(os.environ["GHOSTTUI_DATA_DIR"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "ghosttui"
