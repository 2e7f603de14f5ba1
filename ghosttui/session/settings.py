"""A session's settings, kept human-readable in ``session.toml``."""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tomli_w

from ghosttui import __version__
from ghosttui.errors import SessionError
from ghosttui.patterns.settings import PreprocessSettings
from ghosttui.render.colour import EXTRA_COLOURS, PAPER_COLOURS
from ghosttui.session.keys import taken_characters, user_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_CLASSES = 9
DEFAULT_CLASSES = ("horizontal", "vertical", "none")
DEFAULT_KEYS = {"horizontal": "h", "vertical": "v", "none": "n"}
SOURCES = ("grid", "boundary", "uncertainty", "random", "manual", "holdout", "import")


@dataclass
class ClassSpec:
    name: str
    key: str
    colour: str


@dataclass
class DataSpec:
    path: str
    fingerprint: str
    shape: list[int]
    format: str
    load: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelSpec:
    arch: str = "ghostnet"
    width: int = 16
    epochs: int = 50
    keep: str = "last"  # or "best": early stopping on the validation split (see TrainConfig)
    patience: int = 20
    seed: int = 0
    device: str = "auto"
    warm_start: bool = False  # measured: from-scratch rounds beat warm starts (docs/benchmarks.md)
    rotation_swap: list[list[str]] = field(
        default_factory=list
    )  # e.g. [["horizontal", "vertical"]]

    def __post_init__(self) -> None:
        if self.keep not in ("best", "last"):
            raise ValueError(f"model.keep must be 'best' or 'last' (got {self.keep!r})")


@dataclass
class SamplingSpec:
    """The active-learning schedule (see ghosttui.sampling)."""

    strategy: str = "hybrid"
    budget: int = 100
    grid_step: int = 0  # 0: chosen from the budget and the scan size
    boundary_share: float = 0.7  # of the budget left after the grid (hybrid)
    round_size: int = 0  # uncertainty queries per round; 0: max(10, budget // 6)
    diversity_radius: int = 3  # no two uncertainty queries closer than this (positions)
    uncertainty: str = "margin"  # or "entropy"
    holdout: int = 0  # random positions labelled for an unbiased accuracy estimate
    seed: int = 0

    @property
    def round_length(self) -> int:
        """Queries per uncertainty (or random) round."""
        return self.round_size if self.round_size > 0 else max(10, self.budget // 6)


@dataclass
class SessionSettings:
    name: str
    data: DataSpec
    classes: list[ClassSpec]
    preprocess: PreprocessSettings = field(default_factory=PreprocessSettings)
    model: ModelSpec = field(default_factory=ModelSpec)
    sampling: SamplingSpec = field(default_factory=SamplingSpec)
    # the app's key bindings that differ from the defaults, by action id (ghosttui.session.keys)
    keys: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )
    ghosttui: str = __version__

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def class_index(self, name: str) -> int:
        try:
            return self.class_names.index(name)
        except ValueError:
            raise SessionError(
                f"unknown class {name!r} (classes: {', '.join(self.class_names)})"
            ) from None

    def to_toml(self) -> str:
        doc: dict[str, Any] = {
            "name": self.name,
            "id": self.id,
            "created": self.created,
            "ghosttui": self.ghosttui,
            "data": _drop_none(asdict(self.data)),
            "preprocess": _drop_none(self.preprocess.to_dict()),
            "model": asdict(self.model),
            "sampling": asdict(self.sampling),
            "keys": dict(self.keys),
            "classes": [asdict(c) for c in self.classes],
        }
        header = (
            "# ghosttui session settings. Edit with care: classes, keys, model and sampling\n"
            "# settings may be changed; [data] and [preprocess] describe the cached scan.\n"
            '# [keys] rebinds the app\'s actions by id, e.g. skip = "space,x" (? in the app\n'
            "# lists every id and its keys).\n"
        )
        return header + tomli_w.dumps(doc)

    @classmethod
    def from_toml(cls, text: str, path: Path | None = None) -> SessionSettings:
        try:
            doc = tomllib.loads(text)
            return cls(
                name=doc["name"],
                id=doc["id"],
                created=doc.get("created", ""),
                ghosttui=doc.get("ghosttui", ""),
                data=DataSpec(**doc["data"]),
                classes=[ClassSpec(**c) for c in doc["classes"]],
                preprocess=PreprocessSettings.from_dict(doc.get("preprocess", {})),
                model=ModelSpec(**doc.get("model", {})),
                sampling=SamplingSpec(**doc.get("sampling", {})),
                keys=user_keys(doc.get("keys", {})),
            )
        except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SessionError(
                f"session settings cannot be read ({type(exc).__name__}: {exc})", path
            ) from exc


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def make_classes(
    names: list[str] | None = None, keys: list[str] | None = None, colours: list[str] | None = None
) -> list[ClassSpec]:
    """Class specs with keys and colours; validated (1..9 classes, unique names and keys)."""
    names = [n.strip() for n in (names or list(DEFAULT_CLASSES)) if n.strip()]
    if not 2 <= len(names) <= MAX_CLASSES:
        raise SessionError(f"need between 2 and {MAX_CLASSES} classes (got {len(names)})")
    if len(set(names)) != len(names):
        raise SessionError(f"class names must be unique (got {', '.join(names)})")
    taken = taken_characters()
    if keys is None:
        keys = []
        for name in names:
            choices = [
                DEFAULT_KEYS.get(name, ""),
                *list(name.lower()),
                *list("abcdefghijklmnopstvxy"),
            ]
            keys.append(
                next(k for k in choices if k.isalpha() and k not in keys and k not in taken)
            )
    keys = [k.strip() for k in keys]
    if len(keys) != len(names):
        raise SessionError(f"--keys gives {len(keys)} keys for {len(names)} classes")
    for key in keys:
        if len(key) != 1 or not key.isprintable() or key.isspace():
            raise SessionError(f"class keys must be single printable characters (got {key!r})")
        if key.isdigit():
            raise SessionError(f"digit keys are taken: 1..9 always label class 1..9 (got {key!r})")
    if len(set(keys)) != len(keys):
        raise SessionError(f"class keys must be unique (got {','.join(keys)})")
    clash = sorted(set(keys) & taken)
    if clash:
        raise SessionError(f"class keys {','.join(clash)} clash with action keys; choose others")
    colours = colours or _default_colours(names)
    return [ClassSpec(n, k, c) for n, k, c in zip(names, keys, colours, strict=True)]


def _default_colours(names: list[str]) -> list[str]:
    """The paper's colours for its class names; distinct spare colours for the rest.

    Up to 9 classes of any names: the 7 extra colours, then the paper colours
    that no paper-named class uses.
    """
    wanted = [PAPER_COLOURS.get(name) for name in names]
    spare = iter([c for c in [*EXTRA_COLOURS, *PAPER_COLOURS.values()] if c not in wanted])
    return [colour or next(spare) for colour in wanted]


def write_settings(path: Path, settings: SessionSettings) -> None:
    """Atomic write: a crash leaves the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(settings.to_toml())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_settings(path: Path) -> SessionSettings:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SessionError(f"cannot read session settings ({exc.strerror})", path) from exc
    return SessionSettings.from_toml(text, path)
