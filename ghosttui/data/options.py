"""How to open a data file: the options a user may give on the command line."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ghosttui.errors import DataError

_SHAPE_RE = re.compile(r"^\s*(\d+)\s*[xX,*]\s*(\d+)\s*$")


def parse_shape(text: str, what: str = "--scan") -> tuple[int, int]:
    """Parse ``"206x34"`` into ``(206, 34)``; both sides must be positive."""
    match = _SHAPE_RE.match(text or "")
    if not match:
        raise DataError(f"{what} must look like RXxRY, e.g. 206x34 (got {text!r})")
    a, b = int(match.group(1)), int(match.group(2))
    if a < 1 or b < 1:
        raise DataError(f"{what} sides must be positive (got {text!r})")
    return a, b


@dataclass(frozen=True)
class LoadOptions:
    """Everything beyond the path that decides how a file becomes a 4D scan.

    ``scan`` is (Rx, Ry); ``detector`` is (Qx, Qy) for raw binary files.
    ``series_index`` picks one scan of a 5D HDF5 series (T, Rx, Ry, Qx, Qy).
    """

    dataset: str | None = None
    scan: tuple[int, int] | None = None
    detector: tuple[int, int] | None = None
    dtype: str | None = None
    offset: int = 0
    format: str | None = None
    series_index: int | None = None

    def __post_init__(self) -> None:
        if self.dtype is not None:
            try:
                np.dtype(self.dtype)
            except TypeError as exc:
                raise DataError(f"--dtype {self.dtype!r} is not a numpy dtype") from exc
        if self.offset < 0:
            raise DataError("--offset must be zero or positive")
        if self.series_index is not None and self.series_index < 0:
            raise DataError("a series index must be zero or positive")

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (no None), for session files and cache keys."""
        out: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if value is None or (key == "offset" and value == 0):
                continue
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadOptions:
        kwargs = dict(data)
        for key in ("scan", "detector"):
            if kwargs.get(key) is not None:
                kwargs[key] = tuple(int(v) for v in kwargs[key])
        return cls(**kwargs)

    @classmethod
    def from_cli(
        cls,
        dataset: str | None = None,
        scan: str | None = None,
        detector: str | None = None,
        dtype: str | None = None,
        offset: int = 0,
        format: str | None = None,
    ) -> LoadOptions:
        return cls(
            dataset=dataset,
            scan=parse_shape(scan, "--scan") if scan else None,
            detector=parse_shape(detector, "--detector") if detector else None,
            dtype=dtype,
            offset=offset,
            format=format.lower() if format else None,
        )
