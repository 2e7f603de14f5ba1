"""How raw patterns become model inputs: the settings, plain data (no torch).

They are part of every cache's key and of ``session.toml``; the work itself is
in :mod:`ghosttui.patterns.preprocess`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ghosttui.errors import DataError

POOLINGS = ("sum", "max")
TRANSFORMS = ("log", "sqrt", "linear")
NORMALISATIONS = ("robust", "none")
DEFAULT_SIZE = 64


@dataclass(frozen=True)
class PreprocessSettings:
    """How raw patterns become model inputs; part of every cache's key."""

    size: int = DEFAULT_SIZE
    pooling: str = "sum"
    crop: tuple[int, int, int, int] | None = None  # qx0, qx1, qy0, qy1 (half-open)
    transform: str = "log"
    normalise: str = "robust"
    hot_pixels: bool = True
    hot_ratio: float = 3.0  # a hot pixel is this many times brighter than all 8 neighbours
    allow_blank: bool = False

    def __post_init__(self) -> None:
        if not 8 <= self.size <= 1024:
            raise DataError(f"--size must be between 8 and 1024 (got {self.size})")
        if self.pooling not in POOLINGS:
            raise DataError(f"--pooling must be one of {', '.join(POOLINGS)}")
        if self.transform not in TRANSFORMS:
            raise DataError(f"--transform must be one of {', '.join(TRANSFORMS)}")
        if self.normalise not in NORMALISATIONS:
            raise DataError(f"--normalise must be one of {', '.join(NORMALISATIONS)}")
        ratio = self.hot_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 1:
            raise DataError(f"hot_ratio must be a number above 1 (got {ratio!r})")
        if not isinstance(self.allow_blank, bool) or not isinstance(self.hot_pixels, bool):
            raise DataError("hot_pixels and allow_blank must be true or false")
        if self.crop is not None:
            qx0, qx1, qy0, qy1 = self.crop
            if not (0 <= qx0 < qx1 and 0 <= qy0 < qy1):
                raise DataError(
                    f"--crop must be QX0:QX1,QY0:QY1 with QX0<QX1, QY0<QY1 (got {self.crop})"
                )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["crop"] = list(self.crop) if self.crop else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSettings:
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if data.get("crop"):
            data["crop"] = tuple(int(v) for v in data["crop"])
        return cls(**data)

    def key(self) -> str:
        """Canonical text of the settings that change the cache's content."""
        data = self.to_dict()
        data.pop("allow_blank")
        return json.dumps(data, sort_keys=True)


def parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    """``"100:400,120:420"`` -> (100, 400, 120, 420)."""
    if not text:
        return None
    try:
        qx, qy = text.split(",")
        qx0, qx1 = (int(v) for v in qx.split(":"))
        qy0, qy1 = (int(v) for v in qy.split(":"))
    except ValueError as exc:
        raise DataError(f"--crop must look like QX0:QX1,QY0:QY1 (got {text!r})") from exc
    return qx0, qx1, qy0, qy1
