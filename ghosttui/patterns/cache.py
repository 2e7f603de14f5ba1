"""The pattern cache: every pattern of a scan, preprocessed for the model.

One HDF5 file per (source content, what the load options select,
preprocessing settings), named by a hash of the three, so re-opening an
unchanged scan reuses it (whatever options name the same patterns, see
:func:`ghosttui.data.formats.load_identity`) and changing anything builds a
new one. The content is the file's full hash (:mod:`ghosttui.data.fingerprint`):
a changed pattern anywhere gives another cache. Built in one streaming pass with bounded
memory (blocks of ~32 MiB, the next block read while the current one is
processed); the same pass stores virtual bright-field and annular dark-field
images for navigation. Written through :func:`ghosttui.files.atomic_output`
(free space checked first, renamed when complete): a failed or interrupted
build never leaves a cache behind, and a full disk is one error line.

Layout: ``/patterns`` (Rx, Ry, S, S) float16 (float32 when not normalised, as
counts overflow float16), chunked by scan row;
``/vbf`` and ``/adf`` (Rx, Ry) float32; ``/mean_pattern`` (Qx, Qy) float32.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ghosttui import __version__
from ghosttui.data.fingerprint import file_fingerprint
from ghosttui.data.formats import load_identity, open_scan
from ghosttui.data.layout import read_flat, write_flat
from ghosttui.data.options import LoadOptions
from ghosttui.data.scan import Calibration, Scan
from ghosttui.errors import DataError
from ghosttui.files import atomic_output, hdf5_file, remove_stale_temporaries, storage_error
from ghosttui.patterns.detector import DetectorSurvey
from ghosttui.patterns.settings import PreprocessSettings

CACHE_FORMAT = 1
BLOCK_BYTES = 32 * 1024 * 1024
FLOAT16_MAX = float(np.finfo(np.float16).max)
Progress = Callable[[int, int], None]


def default_cache_dir() -> Path:
    """``$GHOSTTUI_CACHE_DIR``, else ``$XDG_CACHE_HOME/ghosttui``, else ``~/.cache/ghosttui``."""
    if os.environ.get("GHOSTTUI_CACHE_DIR"):
        return Path(os.environ["GHOSTTUI_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ghosttui"


def cache_key(fingerprint: str, identity: dict[str, Any], settings: PreprocessSettings) -> str:
    """The cache's name: content, what the load options select, preprocessing settings."""
    blob = json.dumps(
        {
            "format": CACHE_FORMAT,
            "source": fingerprint,
            "load": identity,
            "pre": settings.key(),
        },
        sort_keys=True,
    )
    return hashlib.blake2b(blob.encode(), digest_size=12).hexdigest()


def storage_dtype(settings: PreprocessSettings) -> type[np.floating]:
    """How the cache stores model inputs: robust-normalised inputs (about 0..1) fit float16;
    un-normalised counts may not."""
    return np.float16 if settings.normalise == "robust" else np.float32


def as_stored(model_input: np.ndarray, settings: PreprocessSettings) -> np.ndarray:
    """Model inputs in the cache's storage dtype (float16 values clipped to its range)."""
    store = storage_dtype(settings)
    if store is np.float16:
        model_input = np.clip(model_input, -FLOAT16_MAX, FLOAT16_MAX)
    return model_input.astype(store)


def stored_precision(model_input: np.ndarray, settings: PreprocessSettings) -> np.ndarray:
    """Model inputs rounded exactly as a cache round trip rounds them, as float32.

    Classifying raw patterns through this gives the same probabilities as classifying
    the same patterns read back from their cache.
    """
    return as_stored(model_input, settings).astype(np.float32)


def cache_bytes(scan: Scan, settings: PreprocessSettings) -> int:
    """About how many bytes the cache of ``scan`` takes (for the free-space check)."""
    itemsize = np.dtype(storage_dtype(settings)).itemsize
    patterns = scan.n_patterns * settings.size * settings.size * itemsize
    return patterns + scan.n_patterns * 8 + scan.shape[2] * scan.shape[3] * 4 + (1 << 20)


class PatternCache:
    """Read access to a finished cache file."""

    def __init__(self, path: str | Path) -> None:
        import h5py

        self.path = Path(path)
        try:
            self._file = h5py.File(self.path, "r")
            attrs = self._file.attrs
            if int(attrs.get("cache_format", -1)) != CACHE_FORMAT:
                raise DataError(
                    "cache from another ghosttui version; it will be rebuilt", self.path
                )
            self._patterns = self._file["patterns"]
            self.vbf = self._file["vbf"][()]
            self.adf = self._file["adf"][()]
            self.mean_pattern = self._file["mean_pattern"][()]
            self.meta: dict[str, Any] = json.loads(attrs["meta"])
            self.beam_centre = tuple(float(v) for v in attrs["beam_centre"])  # detector pixels
            self.detector_shape = tuple(int(v) for v in attrs["detector_shape"])  # after crop
            self.beam_radius = float(attrs.get("beam_radius", 1.0))  # detector pixels
            self.hot_pixels = np.asarray(attrs.get("hot_pixels", []), np.int64)  # flat, cropped
        except (OSError, KeyError, ValueError) as exc:
            raise DataError(f"unreadable cache ({exc})", self.path) from exc
        self.shape = tuple(int(v) for v in self._patterns.shape)
        self.settings = PreprocessSettings.from_dict(self.meta["preprocess"])

    @property
    def scan_shape(self) -> tuple[int, int]:
        return self.shape[0], self.shape[1]

    @property
    def calibration(self) -> Calibration:
        """The source file's pixel sizes, as recorded when the cache was built."""
        return Calibration(**self.meta.get("calibration", {}))

    @property
    def n_patterns(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def size(self) -> int:
        return self.shape[2]

    def detector(self) -> DetectorSurvey:
        """The survey this cache was built with: hot pixels and direct beam (no mean pattern)."""
        attrs = self._file.attrs
        return DetectorSurvey(
            shape=self.detector_shape,
            hot_pixels=np.asarray(attrs["hot_pixels"], np.int64),
            beam_centre=self.beam_centre,
            beam_radius=float(attrs["beam_radius"]),
        )

    def read(self, start: int, stop: int) -> np.ndarray:
        """Model inputs for flat positions ``start..stop``: (n, S, S) float32."""
        return read_flat(self._patterns, start, stop, self.shape[1]).astype(np.float32)

    def pattern(self, rx: int, ry: int) -> np.ndarray:
        return self._patterns[rx, ry].astype(np.float32)

    def window(self, rows: slice, cols: slice) -> np.ndarray:
        """Model inputs of the block of positions ``rows`` x ``cols``: (n, S, S) float32,
        row-major (one read from the file)."""
        block = self._patterns[rows, cols]
        return block.reshape(-1, *self.shape[2:]).astype(np.float32)

    def gather(self, positions: np.ndarray) -> np.ndarray:
        """Model inputs at (k, 2) positions, in the given order."""
        positions = np.asarray(positions, dtype=np.int64).reshape(-1, 2)
        out = np.empty((len(positions), *self.shape[2:]), np.float32)
        order = np.lexsort((positions[:, 1], positions[:, 0]))
        for i in order:
            out[i] = self._patterns[positions[i, 0], positions[i, 1]]
        return out

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PatternCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_cache(
    scan: Scan,
    settings: PreprocessSettings,
    out: str | Path,
    *,
    fingerprint: str,
    options: LoadOptions,
    progress: Progress | None = None,
) -> Path:
    """Preprocess every pattern of ``scan`` into a new cache file at ``out``."""
    from ghosttui.patterns.preprocess import PatternPipeline, check_block, check_processed, survey

    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, out.parent, "cannot create the cache folder") from exc
    remove_stale_temporaries(out.parent, legacy=True)  # ghosttui's own folder
    detector = survey(scan, settings)
    pipeline = PatternPipeline(settings, detector)
    n_rx, n_ry = scan.scan_shape
    size = settings.size
    per_pattern = scan.shape[2] * scan.shape[3] * max(4, scan.dtype.itemsize)
    block = int(max(1, min(scan.n_patterns, BLOCK_BYTES // per_pattern)))
    store = storage_dtype(settings)
    started = time.perf_counter()
    with (
        atomic_output(out, reserve=cache_bytes(scan, settings), durable=False) as tmp,
        hdf5_file(tmp) as output,
        ThreadPoolExecutor(1) as reader,
    ):
        f = output.file
        patterns = f.create_dataset(
            "patterns",
            (n_rx, n_ry, size, size),
            dtype=store,
            chunks=(1, min(n_ry, 64), size, size),
        )
        vbf = np.zeros(scan.n_patterns, np.float32)
        adf = np.zeros(scan.n_patterns, np.float32)
        starts = list(range(0, scan.n_patterns, block))
        pending = reader.submit(scan.read, 0, min(block, scan.n_patterns))
        for i, start in enumerate(starts):
            raw = pending.result()
            if i + 1 < len(starts):
                nxt = starts[i + 1]
                pending = reader.submit(scan.read, nxt, min(nxt + block, scan.n_patterns))
            check_block(scan, start, raw, settings.allow_blank)
            model_input, virtual = pipeline(raw)
            check_processed(scan, start, model_input, virtual)
            write_flat(patterns, start, as_stored(model_input, settings), n_ry)
            output.check()  # a full disk stops the build here, not minutes later
            vbf[start : start + len(raw)] = virtual[:, 0]
            adf[start : start + len(raw)] = virtual[:, 1]
            if progress is not None:
                progress(start + len(raw), scan.n_patterns)
        f.create_dataset("vbf", data=vbf.reshape(n_rx, n_ry))
        f.create_dataset("adf", data=adf.reshape(n_rx, n_ry))
        f.create_dataset("mean_pattern", data=detector.mean_pattern)
        for key, value in detector.to_attrs().items():
            f.attrs[key] = value
        f.attrs["cache_format"] = CACHE_FORMAT
        f.attrs["meta"] = json.dumps(
            {
                "source": str(scan.path.resolve()),
                "fingerprint": fingerprint,
                "format": scan.format,
                "dataset": scan.dataset,
                "source_shape": list(scan.shape),
                "source_dtype": str(scan.dtype),
                "calibration": scan.calibration.to_dict(),
                "load": options.to_dict(),
                "preprocess": settings.to_dict(),
                "ghosttui": __version__,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    return out


def cache_path_for(
    path: str | Path,
    options: LoadOptions,
    settings: PreprocessSettings,
    cache_dir: str | Path | None = None,
) -> tuple[Path, str]:
    """Where the cache of this file with these settings lives, and the file's fingerprint."""
    fingerprint = file_fingerprint(path)
    identity = load_identity(path, options)
    directory = Path(cache_dir) if cache_dir else default_cache_dir()
    return directory / f"{cache_key(fingerprint, identity, settings)}.h5", fingerprint


def open_or_build(
    path: str | Path,
    options: LoadOptions,
    settings: PreprocessSettings,
    *,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    rebuild: bool = False,
) -> PatternCache:
    """The cache for ``path``: reused when the file and settings are unchanged, else built."""
    target, fingerprint = cache_path_for(path, options, settings, cache_dir)
    if target.exists() and not rebuild:
        try:
            return PatternCache(target)
        except DataError:
            pass  # stale or damaged: rebuilt below (the new file replaces it atomically)
    with open_scan(path, options) as scan:
        build_cache(
            scan, settings, target, fingerprint=fingerprint, options=options, progress=progress
        )
    return PatternCache(target)
