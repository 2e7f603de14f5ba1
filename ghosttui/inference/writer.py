"""The prediction file of a series: one writer, one group per scan, in order, resumable.

A series of hundreds of scans takes hours, so the file is not written under a
temporary name and renamed at the end (a killed run would lose everything).
Instead each scan is written into the final file as its own group (the file's
root for a single scan), flushed, and only then marked finished with the
attribute ``complete``; the file is flushed again. A killed run therefore leaves
every finished scan intact and readable; a group without ``complete`` is a scan
that was being written, and the next run deletes it before doing anything else.

A re-run with the same model and settings (the file's ``run_key``) skips every
finished scan of the same file content and goes on with the rest; a file from
another model is refused, and so is a finished scan of the same name from
another file. With ``overwrite`` the run starts over: the old file is replaced,
atomically, when the new run's first scan is finished, so a run that fails
before that leaves it as it was.
HDF5 gives no formal guarantee for a process killed while it writes; in a
test of 60 kill -9 during continuous writing the file always opened and every
``complete`` group held its data (docs/scaling.md).

Safety (:mod:`ghosttui.files`): the output passes the session guard (never a
session's file, nor one of the scans read) before it is created or resumed; a new
file, and the replacement under ``overwrite``, are created through
:func:`~ghosttui.files.atomic_output` and :func:`~ghosttui.files.hdf5_file` with
the first scan in them; later scans are appended in place (the point of the
design), after a free-space check for each, so a full disk stops the run between
scans; write errors become one :class:`~ghosttui.errors.StorageError`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ghosttui.errors import ModelError
from ghosttui.files import atomic_output, check_free_space, hdf5_file, storage_error
from ghosttui.inference.series import ScanRef
from ghosttui.model.outputs import write_prediction_node

DATASETS = ("probabilities", "classes", "confidence")


class SeriesWriter:
    """Writes finished scans into ``path``; ``done(ref)`` says which are already there."""

    def __init__(
        self,
        path: str | Path,
        classes: list[str],
        *,
        run_key: str,
        round: int,
        session: str,
        layout: str,
        overwrite: bool = False,
        inputs: Iterable[str | Path] = (),
    ) -> None:
        self.path = Path(path)
        self.classes = list(classes)
        self.run_key = run_key
        self.round = round
        self.session = session
        self.layout = layout  # "scan": results at the root; "series": a group per scan
        self.overwrite = overwrite
        self.inputs = list(inputs)  # the scans classified: the output may not replace one
        self.dropped: list[str] = []  # unfinished scans removed when the file was opened
        self._file: Any = None
        self._replace_pending = False

    # -- opening ------------------------------------------------------------------------
    def __enter__(self) -> SeriesWriter:
        import h5py

        from ghosttui.session.protect import check_output

        # resuming writes into the file itself: the session guard applies before that too
        check_output(self.path, inputs=self.inputs)
        if self.path.is_dir():
            raise ModelError("is a directory; --out needs a file name", self.path)
        if self.path.exists():
            if self.overwrite:
                # the old file stays as it is until the first scan of this run is finished
                self._replace_pending = True
            else:
                try:
                    handle = h5py.File(self.path, "r")  # looked at without changing a byte
                except OSError as exc:
                    raise ModelError(
                        f"exists but cannot be opened as a prediction file ({exc}); "
                        "move it away or give --overwrite",
                        self.path,
                    ) from exc
                with handle:
                    self._check_resumable(handle)
                self._file = self._open_for_append()
                self._drop_unfinished()
        else:
            self._create()
            self._file = self._open_for_append()
        return self

    def _open_for_append(self) -> Any:
        import h5py

        try:
            return h5py.File(self.path, "a")
        except OSError as exc:
            raise storage_error(exc, self.path, "cannot open for writing") from exc

    def _check_resumable(self, handle: Any) -> None:
        """Refuse ``handle`` unless it holds this run's predictions (same model and settings)."""
        attrs = handle.attrs
        if attrs.get("run_key") == self.run_key and attrs.get("layout") == self.layout:
            return
        if attrs.get("run_key") is None:
            why = "holds no resumable predictions (written by another command or version)"
        elif attrs.get("layout") != self.layout:
            why = f"holds predictions laid out as a {attrs.get('layout')}, not a {self.layout}"
        else:
            why = (
                f"holds predictions of another model or settings (session "
                f"{attrs.get('session')}, round {attrs.get('round')})"
            )
        raise ModelError(
            f"{why}; give --overwrite to replace it or choose another --out", self.path
        )

    def _create(self, first: tuple[ScanRef, np.ndarray, dict[str, Any]] | None = None) -> None:
        """A new prediction file (with ``first`` scan in it), created atomically."""

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, self.path.parent, "cannot create the folder") from exc
        reserve = 0 if first is None else 2 * first[1].nbytes
        with (
            atomic_output(self.path, reserve=reserve, inputs=self.inputs) as tmp,
            hdf5_file(tmp) as output,
        ):
            handle = output.file
            attrs = handle.attrs
            attrs["classes"] = ",".join(self.classes)
            attrs["round"] = self.round
            attrs["session"] = self.session
            attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
            attrs["run_key"] = self.run_key
            attrs["layout"] = self.layout
            if first is not None:
                self._write_node(handle, *first)
            output.check()

    def _drop_unfinished(self) -> None:
        handle = self._file
        if self.layout == "scan":
            if not handle.attrs.get("complete", False) and any(k in handle for k in DATASETS):
                for key in DATASETS:
                    if key in handle:
                        del handle[key]
                self.dropped.append("(root)")
        else:
            for name in list(handle.keys()):
                if not handle[name].attrs.get("complete", False):
                    del handle[name]
                    self.dropped.append(name)
        handle.flush()

    # -- writing ------------------------------------------------------------------------
    def _node_name(self, ref: ScanRef) -> str | None:
        if (ref.name is None) != (self.layout == "scan"):
            raise ValueError(f"scan {ref.label} does not fit a {self.layout} layout")
        return ref.name

    def done(self, ref: ScanRef) -> bool:
        """Whether ``ref`` is already in the file, finished, from the same file content."""
        name = self._node_name(ref)
        if self._replace_pending:
            return False
        node = self._file if name is None else self._file.get(name)
        if node is None or not node.attrs.get("complete", False):
            return False
        same = node.attrs.get("fingerprint") == ref.fingerprint and int(
            node.attrs.get("series_index", -1)
        ) == (-1 if ref.options.series_index is None else ref.options.series_index)
        if not same:
            where = f"scan {name}" if name else "a scan"
            raise ModelError(
                f"already holds {where} from {node.attrs.get('source')} (other content than "
                f"{ref.label}); give --overwrite to replace the file or choose another --out",
                self.path,
            )
        return True

    def write(self, ref: ScanRef, probabilities: np.ndarray, **attrs: Any) -> None:
        """Write one finished scan, flushed before and after it is marked ``complete``.

        Free space for the scan is checked first, so a full disk stops the run between
        scans (every finished scan intact) rather than inside one.
        """
        if self._replace_pending:
            self._create((ref, probabilities, attrs))
            self._replace_pending = False
            self._file = self._open_for_append()
            return
        check_free_space(self.path, 2 * probabilities.nbytes)
        try:
            self._write_node(self._file, ref, probabilities, attrs)
        except OSError as exc:
            raise storage_error(exc, self.path) from exc

    def _write_node(
        self, handle: Any, ref: ScanRef, probabilities: np.ndarray, attrs: dict[str, Any]
    ) -> None:
        name = self._node_name(ref)
        node = handle if name is None else handle.create_group(name)
        extra = {
            "source": ref.path,
            "fingerprint": ref.fingerprint,
            "series_index": -1 if ref.options.series_index is None else ref.options.series_index,
            **attrs,
        }
        if ref.options.dataset:
            extra["dataset"] = ref.options.dataset
        write_prediction_node(node, probabilities, self.classes, self.round, **extra)
        handle.flush()
        node.attrs["complete"] = True
        handle.flush()

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
