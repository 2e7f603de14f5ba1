"""The one atomic writer: replaced whole or not at all, errors name the target, leftovers go."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

import ghosttui.files as files
from ghosttui.errors import StorageError
from ghosttui.files import (
    HOST_TAG,
    atomic_output,
    hdf5_file,
    remove_stale_temporaries,
    temporary_name,
    write_text_atomic,
)


def dead_pid() -> int:
    """The id of a process that has just ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporary_names_carry_pid_host_and_suffix(tmp_path):
    first = temporary_name(tmp_path / "map.png")
    second = temporary_name(tmp_path / "map.png")
    assert first != second  # two writers in one process never share one
    assert first.name.startswith(f".map.png.tmp-{os.getpid()}-{HOST_TAG}-")
    assert first.suffix == ".png"  # libraries that pick a format by suffix still can


def test_success_replaces_failure_keeps(tmp_path):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    write_text_atomic(target, "new")
    assert target.read_text() == "new"


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        (errno.ENOSPC, "disk full"),
        (errno.EDQUOT, "disk full"),
        (errno.EROFS, "read-only file system"),
        (errno.EACCES, "permission denied"),
        (errno.EIO, "Input/output error"),
    ],
)
def test_os_errors_become_one_storage_error_naming_the_target(
    tmp_path, monkeypatch, code, fragment
):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "old")

    def fail(path):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(files, "_fsync_file", fail)
    with pytest.raises(StorageError) as info:
        write_text_atomic(target, "new")
    assert info.value.path == target  # the file the user named, not the temporary
    assert fragment in info.value.message and "\n" not in str(info.value)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_an_input_error_is_not_blamed_on_the_output(tmp_path):
    source = tmp_path / "missing-input.bin"
    with pytest.raises(FileNotFoundError) as info, atomic_output(tmp_path / "out.bin") as tmp:
        tmp.write_bytes(source.read_bytes())
    assert info.value.filename == str(source)


def test_free_space_is_checked_before_a_large_write(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "free_bytes", lambda where: 10 * 1024 * 1024)
    started = []
    with (
        pytest.raises(StorageError, match=r"not enough free space: needs about 1\.0 GiB"),
        atomic_output(tmp_path / "big.h5", reserve=1 << 30) as tmp,
    ):
        started.append(tmp)
    assert started == []  # refused before a byte was written
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    pid = dead_pid()
    stale_file = tmp_path / f".labels.csv.tmp-{pid}-{HOST_TAG}-0"
    stale_file.write_text("half")
    stale_dir = tmp_path / f".export.tmp-{pid}-{HOST_TAG}-3"
    stale_dir.mkdir()
    (stale_dir / "domain_map.png").write_bytes(b"half")
    legacy = tmp_path / f".session.toml.tmp-{pid}"  # written by earlier ghosttui versions
    legacy.write_text("half")
    alive = tmp_path / f".mine.h5.tmp-{os.getppid()}-{HOST_TAG}-0.h5"  # a live writer's
    alive.write_text("in progress")
    other_host = tmp_path / f".x.csv.tmp-{pid}-abcdef-0"  # another machine's, recent
    other_host.write_text("theirs")
    user_file = tmp_path / "notes.tmp-12.txt"
    user_file.write_text("not ours")

    removed = remove_stale_temporaries(tmp_path)  # a user's folder: only tagged names
    assert sorted(p.name for p in removed) == sorted([stale_file.name, stale_dir.name])
    assert legacy.exists()
    removed = remove_stale_temporaries(tmp_path, legacy=True)  # a folder ghosttui owns
    assert [p.name for p in removed] == [legacy.name]
    assert alive.exists() and other_host.exists() and user_file.exists()
    # and every write cleans its folder on the way
    stale_file.write_text("half")
    write_text_atomic(tmp_path / "labels.csv", "rx,ry,label\n")
    assert not stale_file.exists()


def test_an_interrupted_folder_swap_is_finished_by_the_next_run(tmp_path):
    """Where RENAME_EXCHANGE is missing, a death between the two renames loses nothing."""
    target = tmp_path / "export"
    aside = tmp_path / f".export.old-{dead_pid()}-{HOST_TAG}-0"
    aside.mkdir()
    (aside / "domain_map.png").write_text("the old export")
    remove_stale_temporaries(tmp_path)
    assert (target / "domain_map.png").read_text() == "the old export"
    assert not aside.exists()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_folders_are_swapped_whole(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    target = tmp_path / "export"
    with atomic_output(target, folder=True) as tmp:
        (tmp / "a.txt").write_text("1")
        (tmp / "b.txt").write_text("1")
    with atomic_output(target, folder=True) as tmp:
        (tmp / "a.txt").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert (target / "a.txt").read_text() == "2"
    with pytest.raises(RuntimeError), atomic_output(target, folder=True) as tmp:
        (tmp / "a.txt").write_text("3")
        raise RuntimeError("killed half-way")
    assert (target / "a.txt").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_a_full_disk_inside_hdf5_is_an_error_not_a_crash(tmp_path, monkeypatch):
    """libhdf5 cannot survive a failed write; the shield keeps the failure away from it."""
    target = tmp_path / "cube.h5"
    real_write = files._ShieldedFile.write
    written = []

    def filling(self, data):
        written.append(memoryview(data).nbytes)
        if sum(written) > 200_000:  # the disk fills part-way through
            self.error = self.error or OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)

    monkeypatch.setattr(files._ShieldedFile, "write", filling)
    stopped_at = None
    with (
        pytest.raises(StorageError, match="disk full") as info,
        atomic_output(target) as tmp,
        hdf5_file(tmp) as out,
    ):
        data = out.file.create_dataset("a", (40, 64, 64), dtype="f4", chunks=(1, 64, 64))
        for i in range(40):
            data[i] = np.full((64, 64), i, np.float32)
            out.file.flush()
            try:
                out.check()
            except OSError:
                stopped_at = i
                raise
    assert info.value.path == target
    assert stopped_at is not None and stopped_at < 39  # the writer stopped early
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    with atomic_output(target) as tmp, hdf5_file(tmp) as out:  # and HDF5 still works
        out.file["a"] = np.arange(3)
    with h5py.File(target) as f:
        assert f["a"][()].tolist() == [0, 1, 2]
