"""The labelling app's actions: one table of ids, default keys and what each does.

The single source of truth for key bindings. The app builds its static bindings
from it (binding id = action id); ``session.toml``'s ``[keys]`` table overrides
any of them by id (``skip = "space,s"``), applied with Textual's keymap. Class
keys come from ``[[classes]]``; the digits 1..9 always label class 1..9. Plain
data: no Textual here, so the session settings can check keys without a UI.
"""

from __future__ import annotations

from dataclasses import dataclass

PAGE = 10  # positions per page jump of the map cursor


@dataclass(frozen=True)
class Action:
    id: str  # binding id, and the name used in session.toml [keys]
    keys: str  # default keys: Textual key names, comma-separated
    short: str  # footer label
    description: str  # help text
    footer: bool = False  # shown in the footer
    call: str = ""  # the Textual action it runs (default: the id)

    @property
    def action(self) -> str:
        return self.call or self.id


ACTIONS: tuple[Action, ...] = (
    Action("skip", "space", "skip", "skip this query", True),
    Action("undo", "u", "undo", "undo the last label (repeat to go further back)", True),
    Action(
        "retrain", "r", "retrain", "train a model on the labels so far, in the background", True
    ),
    Action(
        "promote",
        "p",
        "promote",
        "use the newest candidate model (one that measured worse) anyway",
    ),
    Action(
        "view",
        "d",
        "view",
        "next pattern view: raw, − scan mean, − local mean, − rotated, − transposed, − mirrored",
        True,
    ),
    Action("view_back", "D", "view back", "previous pattern view"),
    Action(
        "average",
        "a",
        "average",
        "average the k x k positions around the query (k = 1, 3, 5); the label still "
        "goes to the query",
        True,
    ),
    Action(
        "references",
        "b",
        "refs",
        "class references beside the query: mean of the labelled patterns, of confident "
        "predictions, or none",
    ),
    Action("smooth", "s", "smooth", "difference views: average over the probe's disk, on / off"),
    Action(
        "variation",
        "X",
        "scan var",
        "transpose, mean, local views: remove the scan's largest variations that the labels "
        "do not tie to a class (thickness, tilt), or keep them",
    ),
    Action("zoom", "z", "zoom", "zoom: 1x, 2x, 4x around the direct beam, native detector pixels"),
    Action("contrast", "c", "contrast", "cycle contrast: linear, log, gamma"),
    Action("clip", "bracketright", "clip", "cycle the white point (raw) or the difference scale"),
    Action("external", "o", "viewer", "open the pattern in an external viewer"),
    Action("layer", "m", "layer", "cycle map layer: labels, domain map, confidence, ADF", True),
    Action("map_zoom", "Z", "map zoom", "cycle map zoom: fit, 1:1, 2:1 around the cursor"),
    Action("cursor_up", "up,K", "up", "move the map cursor (manual labelling)", call="move(-1,0)"),
    Action("cursor_down", "down,J", "down", "move the map cursor", call="move(1,0)"),
    Action("cursor_left", "left,H", "left", "move the map cursor", call="move(0,-1)"),
    Action("cursor_right", "right,L", "right", "move the map cursor", call="move(0,1)"),
    Action(
        "page_up",
        "pageup,shift+up",
        "page up",
        f"move the map cursor {PAGE} positions",
        call=f"move(-{PAGE},0)",
    ),
    Action(
        "page_down",
        "pagedown,shift+down",
        "page down",
        f"move the map cursor {PAGE} positions",
        call=f"move({PAGE},0)",
    ),
    Action(
        "page_left",
        "shift+left",
        "page left",
        f"move the map cursor {PAGE} positions",
        call=f"move(0,-{PAGE})",
    ),
    Action(
        "page_right",
        "shift+right",
        "page right",
        f"move the map cursor {PAGE} positions",
        call=f"move(0,{PAGE})",
    ),
    Action("goto", "g", "go to", "move the map cursor to a position: type rx, ry"),
    Action("leave_manual", "escape", "queue", "leave manual mode, back to the queue"),
    Action("budget", "plus", "+budget", "raise the label budget by one round"),
    Action("help", "question_mark", "help", "show this help", True),
    Action("quit", "q", "quit", "quit (every label is already saved)", True),
)
ACTION_IDS = tuple(a.id for a in ACTIONS)
DEFAULT_ACTION_KEYS: dict[str, str] = {a.id: a.keys for a in ACTIONS}

# Defaults of earlier versions, written in full into every session.toml then: read back,
# they are not the user's choices, so the current defaults apply instead.
LEGACY_DEFAULT_KEYS: dict[str, str] = {
    "raw": "w",  # the raw-detector toggle became the native zoom
    "cursor_up": "up",
    "cursor_down": "down",
    "cursor_left": "left",
    "cursor_right": "right",
}

# Textual key names of printable characters used above
KEY_CHARACTERS = {
    "bracketright": "]",
    "plus": "+",
    "question_mark": "?",
    "space": " ",
}


def key_character(key: str) -> str | None:
    """The character a Textual key name types, if it is one printable character."""
    key = key.strip()
    if len(key) == 1:
        return key
    return KEY_CHARACTERS.get(key)


def taken_characters() -> set[str]:
    """Characters the default action keys use (class keys must avoid them)."""
    out = set()
    for action in ACTIONS:
        for key in action.keys.split(","):
            char = key_character(key)
            if char is not None:
                out.add(char)
    return out


def user_keys(keys: dict[str, str]) -> dict[str, str]:
    """The entries of a ``[keys]`` table that differ from the defaults (current or legacy)."""
    return {
        action: value
        for action, value in keys.items()
        if value != DEFAULT_ACTION_KEYS.get(action) and value != LEGACY_DEFAULT_KEYS.get(action)
    }
