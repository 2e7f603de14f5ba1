"""One writer per session: an advisory lock held for the life of the process.

``flock`` is released by the kernel when the holder exits for any reason
(quit, crash, ``kill -9``), so a stale lock never blocks the next user. The
lock file records who holds it, so the second process can name the holder.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from ghosttui.errors import SessionError
from ghosttui.files import storage_error


class SessionLock:
    def __init__(self, path: str | Path, session: str) -> None:
        self.path = Path(path)
        self.session = session
        self._fd: int | None = None

    def acquire(self) -> SessionLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error(exc, self.path, "cannot take the session's lock") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._describe_holder(fd)
            os.close(fd)
            raise SessionError(f"session '{self.session}' is in use by {holder}") from None
        try:
            self._record_holder(fd)
        except OSError as exc:  # a full disk: who holds it is not recorded, the lock is held
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                os.close(fd)
                raise storage_error(exc, self.path, "cannot take the session's lock") from exc
        self._fd = fd
        return self

    @staticmethod
    def _record_holder(fd: int) -> None:
        os.ftruncate(fd, 0)
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": " ".join(
                os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv)
            )[:200],
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        os.write(fd, json.dumps(info).encode())
        os.fsync(fd)

    @staticmethod
    def _describe_holder(fd: int) -> str:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            info = json.loads(os.read(fd, 4096).decode() or "{}")
            return (
                f"pid {info.get('pid', '?')} on {info.get('host', '?')} "
                f"({info.get('command', '?')}, since {info.get('since', '?')})"
            )
        except (OSError, ValueError):
            return "another process"

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> SessionLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
