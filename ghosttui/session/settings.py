"""A session's settings, kept human-readable in ``session.toml``."""

from __future__ import annotations

import sys
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tomli_w

from ghosttui import __version__
from ghosttui.errors import GhostError, SessionError
from ghosttui.files import write_text_atomic
from ghosttui.numbers import choice, real, whole
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
# ARCHITECTURES: the names ghosttui.model.network.build_network knows
# (kept here so that reading settings never imports torch; a unit test keeps them equal)
ARCHITECTURES = ("ghostnet", "paper")
# LEARNERS: the names ghosttui.model.learners.fit_learner knows
LEARNERS = ("auto", "cnn", "logreg")
# INPUT_SYMMETRIES: the linear learner's inputs (ghosttui.model.learners.PixelStandardiser)
INPUT_SYMMETRIES = ("auto", "none", "mirror")
STRATEGIES = ("hybrid", "grid-boundary", "random", "uncertainty")


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
    learner: str = "auto"  # see ghosttui.model.learners
    arch: str = "ghostnet"  # the network of the cnn learner
    width: int = 16
    epochs: int = 50
    seed: int = 0
    device: str = "auto"
    rotation_swap: list[list[str]] = field(
        default_factory=list
    )  # e.g. [["horizontal", "vertical"]]
    # the linear learner fits each label as the mean of the k x k probe positions around it
    # (odd; 1: the pattern alone). Predictions stay per pattern. See docs/learners.md.
    train_average: int = 3
    # ... and blends that fit with one on the patterns themselves: the share of the means' fit
    # in the averaged weights (1: the means alone, 0: the patterns alone). See docs/learners.md.
    mean_share: float = 0.5
    # ... on inputs blurred by a Gaussian of this many input pixels (0: not blurred), folded
    # into the one linear layer it fits. See docs/learners.md.
    input_blur: float = 1.0
    # ... on the inputs as they are ("none"), or on their mean with their mirror images about
    # the direct beam ("mirror": left-right, up-down and 180 degrees, which keep a polar axis
    # along the detector's rows or columns); "auto" (the default): both fitted each round and
    # the one whose fit is surer over the scan's own patterns taken, unless the other
    # cross-validates significantly better on the grid and random labels. See docs/learners.md.
    input_symmetry: str = "auto"

    # written by ghosttui 0.1, no longer used: every round trains from scratch on every label
    RETIRED = ("keep", "patience", "warm_start")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        return cls(**{k: v for k, v in data.items() if k not in cls.RETIRED})

    def __post_init__(self) -> None:
        choice(self.learner, "[model] learner", LEARNERS)
        choice(self.arch, "[model] arch", ARCHITECTURES)
        whole(self.width, "[model] width", 1, 512)
        whole(self.epochs, "[model] epochs", 1, 100_000)
        whole(self.seed, "[model] seed", 0, 2**32 - 1)
        whole(self.train_average, "[model] train_average", 1, 15)
        if self.train_average % 2 == 0:
            raise GhostError(
                f"[model] train_average must be odd: 1, 3, 5, ... (got {self.train_average})"
            )
        self.mean_share = real(self.mean_share, "[model] mean_share", 0.0, 1.0)
        self.input_blur = real(self.input_blur, "[model] input_blur", 0.0, 8.0)
        choice(self.input_symmetry, "[model] input_symmetry", INPUT_SYMMETRIES)
        if not isinstance(self.device, str) or not self.device:
            raise GhostError(
                f"[model] device must be a name such as auto, cpu or cuda (got {self.device!r})"
            )
        pairs = self.rotation_swap
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(c, str) for c in p)
            for p in pairs
        ):
            raise GhostError(
                f"[model] rotation_swap must be pairs of class names, e.g. "
                f'[["horizontal", "vertical"]] (got {pairs!r})'
            )


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
    # random positions labelled in the first round and never trained on, for an unbiased
    # accuracy estimate; -1: 10% of the budget (at least 5)
    holdout: int = -1
    seed: int = 0

    def __post_init__(self) -> None:
        choice(self.strategy, "[sampling] strategy", STRATEGIES)
        whole(self.budget, "[sampling] budget", 1)
        whole(self.grid_step, "[sampling] grid_step (0: chosen from the budget)", 0)
        real(self.boundary_share, "[sampling] boundary_share", 0.0, 1.0)
        whole(self.round_size, "[sampling] round_size (0: automatic)", 0)
        whole(self.diversity_radius, "[sampling] diversity_radius", 0)
        choice(self.uncertainty, "[sampling] uncertainty", ("margin", "entropy"))
        whole(self.holdout, "[sampling] holdout (-1: 10% of the budget)", -1)
        whole(self.seed, "[sampling] seed", 0, 2**32 - 1)

    @property
    def holdout_size(self) -> int:
        """Holdout positions to queue (on top of the training budget)."""
        return self.holdout if self.holdout >= 0 else max(5, round(0.1 * self.budget))

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
                model=ModelSpec.from_dict(doc.get("model", {})),
                sampling=SamplingSpec(**doc.get("sampling", {})),
                keys=user_keys(doc.get("keys", {})),
            )
        except GhostError as exc:  # a value out of range: name the setting and the file
            raise SessionError(exc.message, path) from exc
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
    """Atomic and durable: a crash leaves the old file or the new one, never half of one."""
    write_text_atomic(path, settings.to_toml(), guard=False)  # the session's own file


def read_settings(path: Path) -> SessionSettings:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SessionError(f"cannot read session settings ({exc.strerror})", path) from exc
    return SessionSettings.from_toml(text, path)
