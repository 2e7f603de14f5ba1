"""Writing files safely: one atomic writer for every file ghosttui produces.

:func:`atomic_output` writes a file (or a whole folder) under a temporary name
beside its target and puts it in place only when complete, so a crash, a full
disk or ``kill -9`` leaves either the old file or the new one, never half of
one. On the way it:

* refuses targets that belong to a session (:mod:`ghosttui.session.protect`),
  unless the caller writes a session's own file (``guard=False``);
* checks free space before a large write (``reserve=`` bytes) and turns every
  ``OSError`` of the write into one :class:`~ghosttui.errors.StorageError`
  naming the target, not the temporary file;
* makes the result durable (``fsync`` of the file, then of its folder after the
  rename) where it matters (``durable=True``, the default);
* removes temporaries that killed runs left beside the target.

Temporary names are ``.NAME.tmp-PID-HOST-N[.suffix]``: the process id and a
short tag of the host name tell whether the writer is still alive, so stale
temporaries of dead processes on this host can be removed safely (those of
other hosts sharing the folder are left alone for a week).

A folder is swapped into place with ``renameat2(RENAME_EXCHANGE)`` where the
kernel and file system offer it (one atomic step); elsewhere the old folder
is first renamed aside (``.NAME.old-...``) and restored by the next run if
the process died between the two renames.

HDF5 files are written through :func:`hdf5_file`: the HDF5 library cannot
survive a failed write (a full disk leaves it in a state that crashes the
process later), so its writes go through a file object that records the first
``OSError`` instead of handing it to HDF5; the error is raised once HDF5 has
closed the file cleanly.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import itertools
import os
import re
import shutil
import socket
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ghosttui.errors import StorageError

HOST_TAG = hashlib.blake2b(socket.gethostname().encode(), digest_size=3).hexdigest()
FREE_SPACE_MARGIN = 16 * 1024 * 1024  # bytes kept free beyond a large write's estimate
FOREIGN_TEMP_AGE = 7 * 24 * 3600  # seconds before another host's temporary counts as stale
_TEMP = re.compile(
    r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)(?:-(?P<host>[0-9a-f]{6})-\d+)?(?:\.[\w]+)?$"
)
_sequence = itertools.count()


# -- temporary names and stale leftovers -------------------------------------------------------
def temporary_name(path: str | Path, kind: str = "tmp") -> Path:
    """A fresh name beside ``path`` for this process to write before renaming (suffix kept)."""
    path = Path(path)
    tag = f"{kind}-{os.getpid()}-{HOST_TAG}-{next(_sequence)}"
    return path.with_name(f".{path.name}.{tag}{path.suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stale_temporaries(directory: str | Path, *, legacy: bool = False) -> list[Path]:
    """Remove temporaries that dead ghosttui processes left in ``directory``; returns them.

    A temporary is stale when its writer (pid in the name) no longer runs on this
    host, or when it comes from another host and is older than a week. An aside
    copy of a folder (``.NAME.old-...``) whose target is missing is put back
    instead: the process died between the two renames of a folder swap.

    ``legacy``: also names without a host tag (``.NAME.tmp-PID``, written by earlier
    ghosttui versions); only for folders ghosttui owns (sessions, the cache), since in
    a user's folder another program might name its files that way.
    """
    directory = Path(directory)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None:
            continue
        pid, host = int(match["pid"]), match["host"]
        if host is None and not legacy:
            continue
        if host in (None, HOST_TAG):
            if _alive(pid) and pid != os.getpid():
                continue
            if pid == os.getpid():
                continue  # ours, in use
        else:
            with contextlib.suppress(OSError):
                if now - entry.stat(follow_symlinks=False).st_mtime < FOREIGN_TEMP_AGE:
                    continue
        path = Path(entry.path)
        target = directory / match["name"]
        try:
            if match["kind"] == "old" and not target.exists():
                os.rename(path, target)  # finish the interrupted swap the safe way round
                continue
            _remove(path)
        except OSError:
            continue
        removed.append(path)
    return removed


# -- errors and space ----------------------------------------------------------------------
def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def free_bytes(directory: str | Path) -> int | None:
    """Bytes an unprivileged user may still write in ``directory`` (None when unknown)."""
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def storage_error(exc: OSError, target: str | Path, action: str = "cannot write") -> StorageError:
    """One line naming ``target`` and what went wrong."""
    target = Path(target)
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        free = free_bytes(target.parent)
        left = f"; {_human(free)} free" if free is not None else ""
        reason = f"disk full (no space left on the device{left})"
    elif code == errno.EROFS:
        reason = "read-only file system"
    elif code in (errno.EACCES, errno.EPERM):
        reason = "permission denied"
    elif code == errno.ENOENT:
        reason = "folder does not exist"
    else:
        reason = (exc.strerror or str(exc)).splitlines()[0]
    return StorageError(f"{action}: {reason}", target)


def check_free_space(target: str | Path, nbytes: int) -> None:
    """Raise a StorageError before a write of about ``nbytes`` that cannot fit.

    Beyond the estimate, as much again is kept free for small writes and up to
    ``FREE_SPACE_MARGIN`` for large ones (metadata, other writers, the estimate's error).
    """
    target = Path(target)
    free = free_bytes(target.parent if not target.is_dir() else target)
    if free is not None and free < nbytes + min(nbytes, FREE_SPACE_MARGIN):
        raise StorageError(
            f"not enough free space: needs about {_human(nbytes)}, {_human(free)} free", target
        )


def fsync_directory(directory: str | Path) -> None:
    """Make a rename in ``directory`` durable (where the platform allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename still happened
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            _fsync_file(Path(root) / name)
        fsync_directory(root)


# -- swapping folders ------------------------------------------------------------------------
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False when not available here."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_folder(new: Path, target: Path) -> None:
    """Put the complete folder ``new`` at ``target``; the old ``target`` is removed."""
    if not target.exists():
        os.rename(new, target)
        return
    if _exchange(new, target):
        _remove(new)  # now holds the old folder
        return
    aside = temporary_name(target, "old")
    os.rename(target, aside)
    os.rename(new, target)
    _remove(aside)


# -- the writer ------------------------------------------------------------------------------
@contextmanager
def atomic_output(
    path: str | Path,
    *,
    reserve: int = 0,
    durable: bool = True,
    guard: bool = True,
    folder: bool = False,
    inputs: Iterable[str | Path] = (),
) -> Iterator[Path]:
    """``with atomic_output(target) as tmp:`` write ``tmp``; it replaces ``target`` on success.

    ``reserve``: bytes the write will take about (checked against free space first);
    ``durable``: fsync before and after the rename (off for caches, which are rebuilt);
    ``guard``: refuse targets a session depends on (off only for a session's own files
    and ghosttui's internal files); ``folder``: ``tmp`` is a folder, swapped in whole;
    ``inputs``: files the caller reads, which the output must not replace.

    On any exception the temporary is removed and ``target`` is left as it was; an
    ``OSError`` becomes a :class:`StorageError` naming ``target``.
    """
    target = Path(path)
    if guard:
        from ghosttui.session.protect import check_output

        check_output(target, inputs=inputs)
    remove_stale_temporaries(target.parent)
    if reserve:
        check_free_space(target, reserve)
    tmp = temporary_name(target)
    try:
        if folder:
            tmp.mkdir()
        yield tmp
        if durable:
            _fsync_tree(tmp) if folder else _fsync_file(tmp)
        if folder:
            _swap_folder(tmp, target)
        else:
            os.replace(tmp, target)
        if durable:
            fsync_directory(target.parent)
    except OSError as exc:
        named = Path(exc.filename) if isinstance(exc.filename, str) else None
        if named is not None and named != tmp and tmp not in named.parents:
            raise  # about another file (an input): the caller's own handler names it
        raise storage_error(exc, target) from exc
    finally:
        with contextlib.suppress(OSError):
            if tmp.exists() or tmp.is_symlink():
                _remove(tmp)


def write_bytes_atomic(path: str | Path, data: bytes, **options: Any) -> Path:
    """Write ``data`` atomically (see :func:`atomic_output` for ``options``)."""
    options.setdefault("reserve", len(data))
    with atomic_output(path, **options) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str, **options: Any) -> Path:
    """Write ``text`` (UTF-8) atomically and durably."""
    return write_bytes_atomic(path, text.encode("utf-8"), **options)


# -- HDF5 -----------------------------------------------------------------------------------
class _ShieldedFile:
    """A binary file for h5py's ``fileobj`` driver that never hands HDF5 a write error.

    The first ``OSError`` (a full disk, a quota, an I/O error) is recorded and later
    writes are dropped; :meth:`check` raises it. HDF5 thus finishes and closes the
    file normally (the file is then discarded), instead of failing mid-write.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "wb+")  # noqa: SIM115 (closed by close())
        self.error: OSError | None = None

    def _guard(self, call: Any, *args: Any, default: Any = None) -> Any:
        if self.error is not None:
            return default
        try:
            return call(*args)
        except OSError as exc:
            self.error = exc
            return default

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self._guard(self._handle.write, data)
        return size

    def truncate(self, size: int | None = None) -> int:
        return self._guard(self._handle.truncate, size, default=size or 0)

    def flush(self) -> None:
        self._guard(self._handle.flush)

    def readinto(self, buffer: Any) -> int:
        return self._handle.readinto(buffer)

    def read(self, size: int = -1) -> bytes:
        return self._handle.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def check(self) -> None:
        """Raise the recorded write error, if any."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self._guard(self._handle.flush)
        try:
            self._handle.close()
        except OSError as exc:
            if self.error is None:
                self.error = exc


class Hdf5Output:
    """An HDF5 file being written (``.file``); ``check()`` raises a failed write early."""

    def __init__(self, shield: _ShieldedFile, file: Any) -> None:
        self._shield = shield
        self.file = file

    def check(self) -> None:
        self._shield.check()


@contextmanager
def hdf5_file(tmp: str | Path) -> Iterator[Hdf5Output]:
    """Create the HDF5 file ``tmp`` (the temporary of :func:`atomic_output`).

    A write error anywhere (data or metadata) is raised as the original ``OSError``
    after the file is closed, so :func:`atomic_output` reports it against the target.
    Long writers call ``out.check()`` between blocks to stop early.
    """
    import h5py

    shield = _ShieldedFile(Path(tmp))
    try:
        handle = h5py.File(shield, "w")
    except BaseException:
        shield.close()
        raise
    out = Hdf5Output(shield, handle)
    try:
        yield out
    except Exception as exc:
        _close_hdf5(handle, shield)
        if shield.error is not None:  # the real cause: a write that failed earlier
            raise shield.error from exc
        raise
    except BaseException:
        _close_hdf5(handle, shield)
        raise
    _close_hdf5(handle, shield)
    shield.check()


def _close_hdf5(handle: Any, shield: _ShieldedFile) -> None:
    try:
        handle.close()
    finally:
        shield.close()
