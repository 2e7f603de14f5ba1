"""The scans of a series: what ``--data`` names, as plain data that can travel to workers.

An input is a file, a glob (``'runs/*.h5'``, quoted so the shell leaves it alone),
or a folder (every data file in it). Files and folder entries are taken in
natural order (``scan_2`` before ``scan_10``). An HDF5 file whose dataset is 5D
(T, Rx, Ry, Qx, Qy) is a series of T scans. Anything but one plain 4D file is a
series: its results go to one HDF5 group per scan, named after the file (and
``_tNNNN`` for the members of a 5D series).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ghosttui.data.fingerprint import file_fingerprint
from ghosttui.data.formats import HDF5_SUFFIXES, PY4DSTEM_TYPES, hdf5_series_length, open_scan
from ghosttui.data.options import LoadOptions
from ghosttui.data.scan import Scan
from ghosttui.errors import DataError

# what a folder contributes: data files only (.bin are the pieces of a K2 .gtg; .hdr
# are Merlin headers read beside their .mib)
FOLDER_SUFFIXES = ({".npy"} | HDF5_SUFFIXES | set(PY4DSTEM_TYPES)) - {".bin"}
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ScanRef:
    """One scan of a series: where it is and what it holds (paths and numbers, no handles)."""

    path: str
    options: LoadOptions
    shape: tuple[int, int, int, int]
    itemsize: int
    fingerprint: str
    name: str | None = None  # its group in the output file; None: the file's root

    @property
    def n_patterns(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def label(self) -> str:
        """How messages name it: the path, and the index of a 5D series member."""
        index = self.options.series_index
        return self.path if index is None else f"{self.path}[{index}]"

    def open(self) -> Scan:
        """Open the scan (on whichever machine runs this) and check it is still the same."""
        scan = open_scan(self.path, self.options)
        if tuple(scan.shape) != tuple(self.shape):
            scan.close()
            raise DataError(
                f"holds a scan of shape {tuple(scan.shape)}, not {tuple(self.shape)} as when "
                "the series was listed (was the file replaced?)",
                self.path,
            )
        return scan


def natural_key(path: Path) -> list[object]:
    """Sort key that puts ``scan_2`` before ``scan_10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def is_pattern(text: str) -> bool:
    return bool(_GLOB_CHARS.search(text)) and not Path(text).exists()


def expand_inputs(
    inputs: Sequence[str | Path], exclude: Sequence[str | Path] = ()
) -> tuple[list[Path], bool]:
    """The files ``inputs`` name, in order, and whether they form a series.

    ``exclude`` (e.g. the output file) is never taken from a glob or a folder.
    """
    skip = {Path(p).expanduser().absolute() for p in exclude}
    files: list[Path] = []
    series = len(inputs) != 1
    for item in inputs:
        text = str(item)
        path = Path(text).expanduser()
        if is_pattern(text):
            series = True
            matches = [
                Path(m).absolute()
                for m in glob.glob(str(path), recursive=True)
                if Path(m).is_file() and not Path(m).name.startswith(".")
            ]
            matches = sorted((m for m in matches if m not in skip), key=natural_key)
            if not matches:
                raise DataError(f"no files match {text!r}")
            files.extend(matches)
        elif path.is_dir():
            series = True
            entries = sorted(
                (
                    p.absolute()
                    for p in path.iterdir()
                    if p.is_file()
                    and p.suffix.lower() in FOLDER_SUFFIXES
                    and not p.name.startswith(".")
                    and p.absolute() not in skip
                ),
                key=natural_key,
            )
            if not entries:
                raise DataError(f"holds no data files ({', '.join(sorted(FOLDER_SUFFIXES))})", path)
            files.extend(entries)
        else:
            files.append(path.absolute())
    return files, series


def unique_names(stems: Sequence[str]) -> list[str]:
    """``a, b, a`` -> ``a, b, a_2``: one HDF5 group name per scan."""
    seen: dict[str, int] = {}
    names = []
    for stem in stems:
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return names


def discover_series(
    inputs: Sequence[str | Path],
    options: LoadOptions | None = None,
    *,
    exclude: Sequence[str | Path] = (),
) -> list[ScanRef]:
    """Every scan the inputs name, opened once to check it and read its shape.

    A missing or unreadable file raises the one-line :class:`DataError` of
    :func:`ghosttui.data.open_scan`, naming it.
    """
    options = options or LoadOptions()
    files, series = expand_inputs(inputs, exclude)
    found: list[tuple[str, ScanRef]] = []
    for path in files:
        count = hdf5_series_length(path, options)
        members = (
            [replace(options, series_index=i) for i in range(count)]
            if count is not None
            else [options]
        )
        series = series or count is not None
        fingerprint = file_fingerprint(path) if path.is_file() else ""
        for member in members:
            with open_scan(path, member) as scan:
                ref = ScanRef(
                    path=str(path),
                    options=member,
                    shape=tuple(scan.shape),
                    itemsize=scan.dtype.itemsize,
                    fingerprint=fingerprint,
                )
            stem = path.stem if count is None else f"{path.stem}_t{member.series_index:04d}"
            found.append((stem, ref))
    if not series:
        return [ref for _, ref in found]
    names = unique_names([stem for stem, _ in found])
    return [replace(ref, name=name) for name, (_, ref) in zip(names, found, strict=True)]
