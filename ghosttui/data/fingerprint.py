"""Content fingerprints of data files: a full hash, computed once per file version.

A fingerprint identifies a file's *content*, not its path, so a session can be
re-pointed at a moved copy, a changed file is refused, and a cache is reused
only for the very bytes it was built from. It is ``xxh3-128:`` and the
XXH3-128 hash of every byte of the file (about 9 GB/s on one core; reading
the file is the cost). Sampling part of a large file is not enough: one
changed pattern in the middle of a scan must be noticed.

Hashing a 100 GB scan on every open would cost minutes, so the hash is
recorded once per file version in ``DATA_DIR/fingerprints/`` (see
:func:`ghosttui.dirs.data_dir`), keyed by what the kernel says about the file:
device, inode, size, modification time and change time (nanoseconds). Any
write to the file changes its change time (which no user tool can set back),
and a copy is a new inode, so an unchanged record means unchanged bytes; an
open of an unchanged scan costs one ``stat`` and one small read. Two guards
keep the record honest:

* a file that changed while it was being hashed is not recorded;
* a record is trusted only if the file had been quiet for ``QUIET_SECONDS``
  before hashing began (file systems stamp times with a coarse clock, so a
  write within the same tick as the hash would otherwise look unchanged);
  otherwise the next open hashes again.

Sessions made before this scheme recorded a fingerprint of 33 sampled
windows (plain 32 hex digits): :func:`sampled_fingerprint` still computes it,
so such a session opens and is upgraded to the full hash (see
``Session._check_data``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from ghosttui.dirs import data_dir
from ghosttui.errors import DataError

PREFIX = "xxh3-128:"
BLOCK = 8 * 1024 * 1024
QUIET_SECONDS = 2.0
RECORDS = "fingerprints"
# the former, sampled fingerprint (sessions made before full hashing)
WHOLE_FILE_LIMIT = 64 * 1024 * 1024
SAMPLE_BYTES = 64 * 1024
SAMPLES = 33

Progress = Callable[[int, int], None]


def is_full_fingerprint(value: str) -> bool:
    return value.startswith(PREFIX)


def _identity(st: os.stat_result) -> dict[str, int]:
    return {
        "dev": st.st_dev,
        "ino": st.st_ino,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
    }


def _record_path(st: os.stat_result) -> Path:
    return data_dir() / RECORDS / f"{st.st_dev:x}-{st.st_ino:x}.json"


def recorded_fingerprint(path: str | Path) -> str | None:
    """The recorded hash of ``path`` if the file is unchanged since it was hashed, else None."""
    try:
        st = os.stat(path)
        record = json.loads(_record_path(st).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("stat") != _identity(st):
        return None
    quiet_since = max(st.st_mtime_ns, st.st_ctime_ns) / 1e9
    if record.get("started", 0) - quiet_since < QUIET_SECONDS:
        return None  # racy: the file was being written just before the hash began
    value = record.get("fingerprint")
    return value if isinstance(value, str) and is_full_fingerprint(value) else None


def _record(path: Path, before: os.stat_result, started: float, fingerprint: str) -> None:
    from ghosttui.errors import GhostError
    from ghosttui.files import atomic_output

    record = {
        "path": str(path.resolve()),
        "stat": _identity(before),
        "started": started,
        "fingerprint": fingerprint,
    }
    target = _record_path(before)
    with contextlib.suppress(OSError, GhostError):  # a read-only home only costs a re-hash
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(target, guard=False, durable=False) as tmp:
            tmp.write_text(json.dumps(record), encoding="utf-8")


def hash_file(path: str | Path, progress: Progress | None = None) -> str:
    """The full content hash of ``path`` (no record consulted or written)."""
    import xxhash

    path = Path(path)
    digest = xxhash.xxh3_128()
    try:
        size = path.stat().st_size
        done = 0
        with open(path, "rb", buffering=0) as handle:
            buffer = bytearray(BLOCK)
            view = memoryview(buffer)
            while True:
                n = handle.readinto(buffer)
                if not n:
                    break
                digest.update(view[:n])
                done += n
                if progress is not None:
                    progress(done, size)
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror or exc})", path) from exc
    return PREFIX + digest.hexdigest()


def file_fingerprint(path: str | Path, progress: Progress | None = None) -> str:
    """The content fingerprint of ``path``: recorded if unchanged, else hashed (and recorded)."""
    path = Path(path)
    known = recorded_fingerprint(path)
    if known is not None:
        return known
    try:
        before = path.stat()
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror or exc})", path) from exc
    started = time.time()
    fingerprint = hash_file(path, progress)
    try:
        after = path.stat()
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror or exc})", path) from exc
    if _identity(after) != _identity(before):
        raise DataError("changed while it was being read; try again once it is complete", path)
    _record(path, before, started, fingerprint)
    return fingerprint


def sampled_fingerprint(path: str | Path) -> str:
    """The former fingerprint: whole small files, 33 windows of 64 KiB of large ones."""
    path = Path(path)
    try:
        size = path.stat().st_size
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"ghosttui-fingerprint-1:{size}:".encode())
        with open(path, "rb") as handle:
            if size <= WHOLE_FILE_LIMIT:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            else:
                last = size - SAMPLE_BYTES
                for i in range(SAMPLES):
                    handle.seek(last * i // (SAMPLES - 1))
                    digest.update(handle.read(SAMPLE_BYTES))
    except OSError as exc:
        raise DataError(f"cannot read file ({exc.strerror or exc})", path) from exc
    return digest.hexdigest()
