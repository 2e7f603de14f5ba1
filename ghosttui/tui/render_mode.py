"""How patterns reach the screen: terminal graphics, half blocks, ASCII or an external viewer.

``auto`` asks the terminal (through textual-image, before Textual starts, as its
queries need the raw terminal) for sixel or kitty graphics and otherwise uses
truecolor half blocks. Colour depth is checked separately: in 256 colours faint
ghost disks vanish, so the app warns and says how to get truecolor in tmux.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ghosttui.errors import GhostError

RENDERS = ("auto", "sixel", "kitty", "halfblock", "ascii", "external")
TRUECOLOR_HINT = (
    "this terminal offers only {system} colours, so faint ghost disks may vanish; "
    "run with COLORTERM=truecolor (in tmux also: set -ga terminal-overrides ',*:Tc')"
)


def resolve_render(requested: str) -> str:
    """The concrete renderer for ``requested`` (call before the app starts)."""
    if requested not in RENDERS:
        raise GhostError(f"unknown --render {requested!r} (known: {', '.join(RENDERS)})")
    if requested in ("halfblock", "ascii", "external"):
        return requested
    interactive = bool(
        sys.__stdout__ and sys.__stdout__.isatty() and sys.__stdin__ and sys.__stdin__.isatty()
    )
    if requested == "auto" and (not interactive or os.environ.get("TMUX")):
        return "halfblock"  # tmux 3.3 passes neither sixel nor kitty graphics through
    try:
        import textual_image.renderable as renderable
        import textual_image.widget  # noqa: F401  (caches the cell size while the terminal is raw)
    except ImportError as exc:  # pragma: no cover - a dependency
        raise GhostError("terminal graphics need the textual-image package") from exc
    found = {renderable.SixelImage: "sixel", renderable.TGPImage: "kitty"}.get(renderable.Image)
    if requested == "auto":
        return found or "halfblock"
    if found != requested:
        raise GhostError(
            f"--render {requested}: this terminal did not report {requested} graphics support "
            "(try --render auto or halfblock)"
        )
    return requested


def graphics_widget(mode: str) -> Any:
    from textual_image.widget import SixelImage, TGPImage

    widget_class = SixelImage if mode == "sixel" else TGPImage
    return widget_class(id="pattern-graphics")


def colour_warning(color_system: str | None) -> str | None:
    """A warning when the terminal cannot show truecolor, else None."""
    if color_system in (None, "truecolor", "windows"):
        return None
    return TRUECOLOR_HINT.format(
        system={"256": "256", "standard": "16"}.get(color_system, color_system)
    )
