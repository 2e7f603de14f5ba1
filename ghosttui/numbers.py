"""Numbers a user gives (options, ``session.toml``): checked where they enter.

Each check raises a one-line :class:`~ghosttui.errors.GhostError` that names
the option or setting and the value, so a bad number never travels on into
training, sampling or a file and fails there as an internal error.
"""

from __future__ import annotations

import math
from typing import Any

from ghosttui.errors import GhostError


def whole(value: Any, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer within [minimum, maximum] (booleans and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise GhostError(f"{name} must be a whole number (got {value!r})")
    if minimum is not None and value < minimum:
        raise GhostError(f"{name} must be at least {minimum} (got {value})")
    if maximum is not None and value > maximum:
        raise GhostError(f"{name} must be at most {maximum} (got {value})")
    return value


def real(
    value: Any,
    name: str,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    above: float | None = None,
) -> float:
    """A finite number within [minimum, maximum] and, if given, strictly above ``above``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GhostError(f"{name} must be a number (got {value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise GhostError(f"{name} must be a finite number (got {value})")
    if above is not None and value <= above:
        raise GhostError(f"{name} must be greater than {above:g} (got {value:g})")
    if minimum is not None and value < minimum:
        raise GhostError(f"{name} must be at least {minimum:g} (got {value:g})")
    if maximum is not None and value > maximum:
        raise GhostError(f"{name} must be at most {maximum:g} (got {value:g})")
    return value


def choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise GhostError(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
    return value
