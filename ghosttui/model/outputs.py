"""Prediction files: class probabilities and class maps as HDF5, written atomically."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from ghosttui.errors import ModelError
from ghosttui.files import atomic_output, check_free_space, hdf5_file, storage_error


class PredictionWriter:
    """Writes one or more prediction groups to a temporary file, renamed on success.

    Each group holds ``probabilities`` (Rx, Ry, C) float32, ``classes`` (Rx, Ry)
    int8 (argmax) and ``confidence`` (Rx, Ry) float32, with the class names and
    round as attributes. If anything fails, the temporary file is removed and
    an existing file at ``path`` is left as it was.

    The output passes the session guard (:mod:`ghosttui.session.protect`) unless
    ``guard=False`` (a session writing its own ``predictions/``); ``inputs`` are the
    scans being classified, which the output may not replace.
    """

    def __init__(
        self,
        path: str | Path,
        classes: list[str],
        *,
        round: int,
        session: str,
        guard: bool = True,
        inputs: Iterable[str | Path] = (),
    ) -> None:
        self.path = Path(path)
        self.classes = list(classes)
        self.round = round
        self.session = session
        self.guard = guard
        self.inputs = list(inputs)
        self._stack = ExitStack()

    def __enter__(self) -> PredictionWriter:
        try:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise storage_error(exc, self.path.parent, "cannot create the folder") from exc
            tmp = self._stack.enter_context(
                atomic_output(self.path, guard=self.guard, inputs=self.inputs)
            )
            self._output = self._stack.enter_context(hdf5_file(tmp))
        except BaseException:
            # unwind with the error, so that the writer discards (and names) it
            if not self._stack.__exit__(*sys.exc_info()):
                raise
        self._file = self._output.file
        self._file.attrs["classes"] = ",".join(self.classes)
        self._file.attrs["round"] = self.round
        self._file.attrs["session"] = self.session
        self._file.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        return self

    def add(self, probabilities: np.ndarray, group: str | None = None, **attrs: Any) -> None:
        import h5py

        check_free_space(self.path, 2 * probabilities.nbytes)
        node = self._file.require_group(group) if group else self._file
        datasets = [
            node.create_dataset("probabilities", data=probabilities.astype(np.float32)),
            node.create_dataset("classes", data=probabilities.argmax(-1).astype(np.int8)),
            node.create_dataset("confidence", data=probabilities.max(-1).astype(np.float32)),
        ]
        for ds in datasets:
            ds.attrs["classes"] = ",".join(self.classes)
            ds.attrs["round"] = self.round
        node.attrs["class_names"] = np.array(self.classes, dtype=h5py.string_dtype())
        node.attrs["axes"] = "probabilities (Rx, Ry, C); classes, confidence (Rx, Ry)"
        for key, value in attrs.items():
            node.attrs[key] = value
        self._output.check()

    def __exit__(self, *exc: Any) -> None:
        self._stack.__exit__(*exc)


def write_probabilities(
    path: str | Path,
    probabilities: np.ndarray,
    classes: list[str],
    *,
    round: int,
    session: str,
    guard: bool = True,
) -> Path:
    with PredictionWriter(path, classes, round=round, session=session, guard=guard) as writer:
        writer.add(probabilities)
    return Path(path)


def read_probabilities(path: str | Path, group: str | None = None) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            node = f[group] if group else f
            return node["probabilities"][()]
    except (OSError, KeyError) as exc:
        raise ModelError(f"unreadable prediction file ({exc})", path) from exc
