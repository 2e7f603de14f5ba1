"""Prediction files: class probabilities and class maps as HDF5, written atomically."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ghosttui.errors import ModelError


class PredictionWriter:
    """Writes one or more prediction groups to a temporary file, renamed on success.

    Each group holds ``probabilities`` (Rx, Ry, C) float32, ``classes`` (Rx, Ry)
    int8 (argmax) and ``confidence`` (Rx, Ry) float32, with the class names and
    round as attributes. If anything fails, the temporary file is removed and
    an existing file at ``path`` is left as it was.
    """

    def __init__(self, path: str | Path, classes: list[str], *, round: int, session: str) -> None:
        self.path = Path(path)
        self.classes = list(classes)
        self.round = round
        self.session = session
        self.tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")

    def __enter__(self) -> PredictionWriter:
        import h5py

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = h5py.File(self.tmp, "w")
        self._file.attrs["classes"] = ",".join(self.classes)
        self._file.attrs["round"] = self.round
        self._file.attrs["session"] = self.session
        self._file.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        return self

    def add(self, probabilities: np.ndarray, group: str | None = None, **attrs: Any) -> None:
        node = self._file.require_group(group) if group else self._file
        write_prediction_node(node, probabilities, self.classes, self.round, **attrs)

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self._file.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        elif self.tmp.exists():
            self.tmp.unlink()


def write_prediction_node(
    node: Any, probabilities: np.ndarray, classes: list[str], round: int, **attrs: Any
) -> None:
    """One scan's predictions in an HDF5 group (or the file's root): the layout every
    prediction file uses.

    ``probabilities`` (Rx, Ry, C) float32, ``classes`` (Rx, Ry) int8 (argmax) and
    ``confidence`` (Rx, Ry) float32, with the class names and round as attributes.
    """
    import h5py

    datasets = [
        node.create_dataset("probabilities", data=probabilities.astype(np.float32)),
        node.create_dataset("classes", data=probabilities.argmax(-1).astype(np.int8)),
        node.create_dataset("confidence", data=probabilities.max(-1).astype(np.float32)),
    ]
    for ds in datasets:
        ds.attrs["classes"] = ",".join(classes)
        ds.attrs["round"] = round
    node.attrs["class_names"] = np.array(classes, dtype=h5py.string_dtype())
    node.attrs["axes"] = "probabilities (Rx, Ry, C); classes, confidence (Rx, Ry)"
    for key, value in attrs.items():
        node.attrs[key] = value


def write_probabilities(
    path: str | Path, probabilities: np.ndarray, classes: list[str], *, round: int, session: str
) -> Path:
    with PredictionWriter(path, classes, round=round, session=session) as writer:
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
