"""Open 4D-STEM files of every format microscopists have, lazily.

``.npy`` is memory-mapped; HDF5 (plain, py4DSTEM/emdfile EMD, Berkeley EMD)
is read through h5py without loading the cube; raw binary is memory-mapped
from the shape and dtype the user gives. Gatan ``.dm3/.dm4``, Merlin ``.mib``,
EMPAD ``.raw`` and Gatan K2 ``.gtg/.bin`` go through py4DSTEM's own readers in
memory-map mode; py4DSTEM is imported only then (it takes seconds).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ghosttui.data.options import LoadOptions
from ghosttui.data.scan import Calibration, Scan, clean_units
from ghosttui.errors import DataError

HDF5_SUFFIXES = {".h5", ".hdf5", ".hdf", ".emd", ".py4dstem", ".nxs"}
PY4DSTEM_TYPES = {
    ".dm3": "dm",
    ".dm4": "dm",
    ".dm": "dm",
    ".mib": "mib",
    ".raw": "empad",
    ".gtg": "gatan_K2_bin",
    ".bin": "gatan_K2_bin",
}
FORMAT_NAMES = {
    "npy": "NumPy .npy",
    "hdf5": "HDF5",
    "raw": "raw binary",
    "dm": "Gatan DM",
    "mib": "Merlin MIB",
    "empad": "EMPAD raw",
    "gatan_K2_bin": "Gatan K2 bin",
}
KNOWN = ".npy, .h5/.hdf5/.emd, .dm3/.dm4, .mib, .raw (EMPAD), .gtg/.bin (K2), raw with --detector"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class DatasetInfo:
    """One array in a file: its HDF5 path (None for a file that is one array), shape, dtype."""

    name: str | None
    shape: tuple[int, ...]
    dtype: str


class AmbiguousScan(DataError):
    """The file holds data, but which 4D scan it is needs an option (``option``).

    ``datasets`` are the arrays that could be the scan, so that ``ghosttui info`` can
    describe the file instead of only refusing it.
    """

    def __init__(self, message: str, path: Path, datasets: list[DatasetInfo], option: str) -> None:
        super().__init__(message, path)
        self.datasets = datasets
        self.option = option


def detect_format(path: Path, options: LoadOptions) -> str:
    """The reader to use: from ``--format``, ``--detector`` or the extension."""
    if options.format:
        fmt = options.format
        aliases = {"h5": "hdf5", "emd": "hdf5", "dm4": "dm", "dm3": "dm", "k2": "gatan_K2_bin"}
        fmt = aliases.get(fmt, fmt)
        if fmt not in FORMAT_NAMES:
            raise DataError(
                f"unknown --format {options.format!r} (known: {', '.join(FORMAT_NAMES)})"
            )
        return fmt
    if options.detector is not None:
        return "raw"
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return "npy"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if suffix in PY4DSTEM_TYPES:
        return PY4DSTEM_TYPES[suffix]
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        if handle.read(8) == _HDF5_MAGIC:
            return "hdf5"
    raise DataError(f"unknown format {suffix or '(no extension)'!r}; known: {KNOWN}", path)


def open_scan(path: str | Path, options: LoadOptions | None = None) -> Scan:
    """Open ``path`` as a 4D scan (Rx, Ry, Qx, Qy) without reading the cube."""
    options = options or LoadOptions()
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError("no such file", path)
    if path.is_dir():
        raise DataError("is a directory, not a data file", path)
    if not os.access(path, os.R_OK):
        raise DataError("not readable (permission denied)", path)
    if path.stat().st_size == 0:
        raise DataError("is empty (0 bytes)", path)
    fmt = detect_format(path, options)
    opener: Callable[[Path, LoadOptions], Scan]
    if fmt == "npy":
        opener = _open_npy
    elif fmt == "hdf5":
        opener = _open_hdf5
    elif fmt == "raw":
        opener = _open_raw
    else:
        return _open_py4dstem(path, options, fmt)
    return opener(path, options)


CHEAP_TO_OPEN = ("npy", "hdf5", "raw")


def load_identity(path: str | Path, options: LoadOptions | None = None) -> dict[str, Any]:
    """What ``options`` select in ``path``, however they were spelled (part of cache keys).

    ``--dataset /data`` and no ``--dataset`` (the only 4D dataset found), ``--format
    h5`` and the extension, a ``--scan`` equal to the file's own scan shape: each
    names the same patterns, so each gives the same identity. Files that open in
    milliseconds (.npy, HDF5, raw) are opened to resolve the options; the formats
    read through py4DSTEM (seconds to import) use the options, normalised.
    """
    options = options or LoadOptions()
    path = Path(path).expanduser()
    fmt = detect_format(path, options) if path.is_file() else None
    if fmt is None or fmt in CHEAP_TO_OPEN:
        with open_scan(path, options) as scan:
            identity: dict[str, Any] = {
                "reader": fmt or scan.format,
                "dataset": scan.dataset,
                "shape": list(scan.shape),
                "dtype": scan.dtype.str,
            }
        if fmt == "raw":
            identity["offset"] = options.offset
        return identity
    return {"reader": fmt, "scan": list(options.scan) if options.scan else None}


# -- shape rules shared by all readers -----------------------------------------
def _to_4d(
    path: Path,
    shape: tuple[int, ...],
    scan: tuple[int, int] | None,
    dtype: Any,
    where: str = "",
) -> tuple:
    """Decide the 4D shape and whether the source is a flat stack.

    Returns ``(shape4d, flat)``. A 3D stack (N, Qx, Qy) needs ``scan``; a 4D
    array may be re-shaped by ``scan`` when the pattern counts agree. A shape
    with a zero-length axis holds no pattern and is refused.
    """
    at = f" at {where}" if where else ""
    if len(shape) in (3, 4) and 0 in tuple(shape):
        raise DataError(
            f"data{at} has a zero-length axis {tuple(shape)}: it holds no patterns", path
        )
    if len(shape) == 4:
        n = shape[0] * shape[1]
        if scan is None or tuple(scan) == tuple(shape[:2]):
            return tuple(shape), False
        if scan[0] * scan[1] != n:
            raise DataError(
                f"--scan {scan[0]}x{scan[1]} gives {scan[0] * scan[1]} patterns but the data{at}"
                f" holds {n} ({shape[0]}x{shape[1]})",
                path,
            )
        return (scan[0], scan[1], shape[2], shape[3]), True
    if len(shape) == 3:
        if scan is None:
            raise AmbiguousScan(
                f"holds a stack of {shape[0]} patterns{at} (N, Qx, Qy) = {shape}; "
                "give the scan shape with --scan RXxRY",
                path,
                [DatasetInfo(where or None, tuple(shape), str(np.dtype(dtype)))],
                "--scan RXxRY",
            )
        if scan[0] * scan[1] != shape[0]:
            raise DataError(
                f"--scan {scan[0]}x{scan[1]} gives {scan[0] * scan[1]} patterns but the stack{at}"
                f" holds {shape[0]}",
                path,
            )
        return (scan[0], scan[1], shape[1], shape[2]), True
    raise DataError(f"data{at} is {len(shape)}D {tuple(shape)}, not a 4D-STEM scan", path)


def _reshaped_source(source: Any, shape4d: tuple, flat_from_4d: bool) -> Any:
    """A 4D numpy array re-shaped by --scan is read as a flat stack."""
    if flat_from_4d and getattr(source, "ndim", 0) == 4:
        return source.reshape(-1, *source.shape[2:])
    return source


# -- .npy ------------------------------------------------------------------------
def _open_npy(path: Path, options: LoadOptions) -> Scan:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        text = str(exc)
        if "mmap length is greater than file size" in text or "cannot mmap" in text:
            raise DataError("truncated .npy file (shorter than its header says)", path) from exc
        if "Python objects" in text or "Object arrays" in text:
            raise DataError(".npy holds Python objects, not numbers", path) from exc
        if "pickled data" in text:
            raise DataError("not a .npy file (no NumPy header)", path) from exc
        raise DataError(f"not a valid .npy file ({text})", path) from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"not a valid .npy file ({exc})", path) from exc
    if not isinstance(array, np.ndarray):
        raise DataError("is an .npz archive or not a single array", path)
    shape4d, flat = _to_4d(path, array.shape, options.scan, array.dtype)
    source = _reshaped_source(array, shape4d, flat)
    return Scan(path, FORMAT_NAMES["npy"], source, shape4d, flat=flat or source.ndim == 3)


# -- raw binary ------------------------------------------------------------------
def _open_raw(path: Path, options: LoadOptions) -> Scan:
    if options.detector is None or options.dtype is None or options.scan is None:
        raise DataError("raw binary needs --scan RXxRY, --detector QXxQY and --dtype", path)
    dtype = np.dtype(options.dtype)
    frame = options.detector[0] * options.detector[1] * dtype.itemsize
    size = path.stat().st_size - options.offset
    n = options.scan[0] * options.scan[1]
    if size < n * frame:
        raise DataError(
            f"holds {max(size, 0) // frame} frames of {options.detector[0]}x{options.detector[1]}"
            f" {dtype} after offset {options.offset}, but --scan needs {n}",
            path,
        )
    source = np.memmap(
        path, dtype=dtype, mode="r", offset=options.offset, shape=(n, *options.detector)
    )
    shape4d = (*options.scan, *options.detector)
    return Scan(path, FORMAT_NAMES["raw"], source, shape4d, flat=True)


# -- HDF5 / EMD --------------------------------------------------------------------
def _hdf5_kind(handle: Any) -> str:
    attrs = handle.attrs
    if attrs.get("emd_group_type") == "file":
        return "py4DSTEM EMD"
    for value in handle.values():
        if "emd_group_type" in getattr(value, "attrs", {}):
            return "EMD"
    return "HDF5"


def _candidates(handle: Any) -> tuple[list[str], list[str], dict[str, DatasetInfo]]:
    """The numeric 4D and 3D datasets (HDF5 paths), and what each of them is."""
    import h5py

    four: list[str] = []
    three: list[str] = []
    info: dict[str, DatasetInfo] = {}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "uifb" and obj.ndim in (3, 4):
            path = "/" + name
            (four if obj.ndim == 4 else three).append(path)
            info[path] = DatasetInfo(path, tuple(obj.shape), str(obj.dtype))

    handle.visititems(visit)
    return four, three, info


def _attr_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, np.ndarray):
        value = value.item() if value.size == 1 else str(value)
    return str(value)


def _hdf5_calibration(dataset: Any) -> Calibration:
    """Calibration from the dataset's own attributes or its emdfile dim vectors."""
    attrs = dataset.attrs
    if "R_pixel_size" in attrs or "Q_pixel_size" in attrs:
        return Calibration(
            r_pixel_size=float(attrs["R_pixel_size"]) if "R_pixel_size" in attrs else None,
            r_units=clean_units(_attr_text(attrs.get("R_pixel_units"))),
            q_pixel_size=float(attrs["Q_pixel_size"]) if "Q_pixel_size" in attrs else None,
            q_units=clean_units(_attr_text(attrs.get("Q_pixel_units"))),
        )
    group = dataset.parent
    dims = []
    for first in (0, 1):
        names = [f"dim{first + i}" for i in range(4)]
        if all(name in group for name in names):
            dims = [group[name] for name in names]
            break
    if not dims:
        return Calibration()

    def step(dim: Any) -> tuple[float | None, str | None]:
        if dim.ndim != 1 or dim.shape[0] < 2:
            return None, None
        values = dim[:2]
        units = clean_units(_attr_text(dim.attrs.get("units")))
        return float(values[1] - values[0]), units

    r_size, r_units = step(dims[0])
    q_size, q_units = step(dims[2])
    return Calibration(r_size, r_units, q_size, q_units)


def _open_hdf5(path: Path, options: LoadOptions) -> Scan:
    import h5py

    with contextlib.suppress(ImportError):
        import hdf5plugin  # noqa: F401  (registers bitshuffle/LZ4 filters for detector files)
    try:
        handle = h5py.File(path, "r", rdcc_nbytes=64 * 1024 * 1024)
    except OSError as exc:
        reason = str(exc).split("(", 1)[-1].rstrip(")") if "(" in str(exc) else str(exc)
        raise DataError(f"not a readable HDF5 file (truncated or corrupt: {reason})", path) from exc
    try:
        kind = _hdf5_kind(handle)
        if options.dataset:
            name = options.dataset if options.dataset.startswith("/") else "/" + options.dataset
            if name not in handle or not isinstance(handle[name], h5py.Dataset):
                four, three, _ = _candidates(handle)
                listed = ", ".join(four + three) or "none"
                raise DataError(f"has no dataset {name} (4D/3D datasets: {listed})", path)
        else:
            four, three, info = _candidates(handle)
            if len(four) == 1:
                name = four[0]
            elif len(four) > 1:
                raise AmbiguousScan(
                    f"holds several 4D datasets ({', '.join(four)}); choose one with --dataset",
                    path,
                    [info[n] for n in four + three],
                    "--dataset PATH",
                )
            elif len(three) == 1 and options.scan is not None:
                name = three[0]
            elif three:
                raise AmbiguousScan(
                    f"holds no 4D dataset; 3D stacks: {', '.join(three)} "
                    "(choose with --dataset and give --scan RXxRY)",
                    path,
                    [info[n] for n in three],
                    "--scan RXxRY" if len(three) == 1 else "--dataset PATH --scan RXxRY",
                )
            else:
                raise DataError("holds no 4D dataset (Rx, Ry, Qx, Qy)", path)
        dataset = handle[name]
        if dataset.dtype.kind not in "uifb":
            raise DataError(f"dataset {name} holds {dataset.dtype}, not numbers", path)
        shape4d, flat = _to_4d(path, dataset.shape, options.scan, dataset.dtype, name)
        if flat and dataset.ndim == 4:
            raise DataError(
                f"dataset {name} is 4D {dataset.shape}; --scan cannot re-shape an HDF5 4D dataset",
                path,
            )
        calibration = _hdf5_calibration(dataset)
    except DataError:
        handle.close()
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        handle.close()
        raise DataError(f"HDF5 structure cannot be read ({exc})", path) from exc
    return Scan(
        path,
        kind,
        dataset,
        shape4d,
        flat=dataset.ndim == 3,
        calibration=calibration,
        dataset=name,
        on_close=handle.close,
    )


# -- microscope formats through py4DSTEM ---------------------------------------------
@contextlib.contextmanager
def _quiet() -> Any:
    """py4DSTEM prints and warns while importing and reading; keep the terminal clean."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _mib_scan_from_hdr(path: Path) -> tuple[int, int] | None:
    header = path.with_suffix(".hdr")
    if not header.exists():
        return None
    values = {}
    with (
        contextlib.suppress(OSError, ValueError),
        open(header, encoding="utf-8", errors="replace") as f,
    ):
        for line in f:
            if "\t" in line:
                key, value = line.split("\t", 1)
                values[key.rstrip(":").strip()] = value.strip()
    try:
        return int(values["ScanY"]), int(values["ScanX"])
    except (KeyError, ValueError):
        return None


def _open_py4dstem(path: Path, options: LoadOptions, filetype: str) -> Scan:
    label = FORMAT_NAMES[filetype]
    try:
        with _quiet():
            import py4DSTEM  # noqa: F401
            from py4DSTEM.io import import_file
            from py4DSTEM.io.filereaders.read_mib import load_mib

            if filetype == "mib":
                data = load_mib(str(path), mem="MEMMAP", reshape=False)
            else:
                data = import_file(str(path), mem="MEMMAP", filetype=filetype)
    except DataError:
        raise
    except Exception as exc:  # py4DSTEM raises bare Exception/AssertionError/KeyError
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"could not be read as {label} by py4DSTEM ({text})", path) from exc
    array = getattr(data, "data", None)
    if array is None:
        raise DataError(f"py4DSTEM found no data array in this {label} file", path)
    shape = tuple(array.shape)
    scan = options.scan
    if filetype == "mib":
        array = array.reshape(shape[0], shape[2], shape[3])
        shape = tuple(array.shape)
        scan = scan or _mib_scan_from_hdr(path)
        if scan is None:
            raise AmbiguousScan(
                f"holds {shape[0]} frames of {shape[1]}x{shape[2]} and no scan size in its header;"
                " give it with --scan RXxRY",
                path,
                [DatasetInfo(None, shape, str(array.dtype))],
                "--scan RXxRY",
            )
    shape4d, flat = _to_4d(path, shape, scan, array.dtype)
    source = _reshaped_source(array, shape4d, flat)
    calibration = Calibration()
    cal = getattr(data, "calibration", None)
    if cal is not None and len(shape) == 4:
        with contextlib.suppress(Exception):
            calibration = Calibration(
                r_pixel_size=float(cal.get_R_pixel_size()),
                r_units=clean_units(str(cal.get_R_pixel_units())),
                q_pixel_size=float(cal.get_Q_pixel_size()),
                q_units=clean_units(str(cal.get_Q_pixel_units())),
            )
    return Scan(path, label, source, shape4d, flat=source.ndim == 3, calibration=calibration)
