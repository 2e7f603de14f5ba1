"""Writing files safely: one atomic writer for every file ghosttui produces.

A file is written under a temporary name beside its target and renamed onto it
only when complete, so a crash, a full disk or ``kill -9`` leaves either the
old file or the new one, never half of one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """The temporary file beside ``path`` that this process writes before renaming."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """``with atomic_output(target) as tmp:`` write ``tmp``; it replaces ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(path)
    tmp = temporary_name(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically and durably (flushed to disk before the rename)."""
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)
