"""Content fingerprints of data files.

A fingerprint identifies a file's *content*, not its path, so a session can be
re-pointed at a moved copy and a cache can be reused. Files of terabytes cannot
be hashed whole on every open: files up to ``WHOLE_FILE_LIMIT`` are hashed
entirely, larger ones by their size plus 64 KiB samples at 33 evenly spaced
offsets (head and tail included).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ghosttui.errors import DataError

WHOLE_FILE_LIMIT = 64 * 1024 * 1024
SAMPLE_BYTES = 64 * 1024
SAMPLES = 33


def file_fingerprint(path: str | Path) -> str:
    """Return a 32-hex-digit fingerprint of the file's content."""
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
