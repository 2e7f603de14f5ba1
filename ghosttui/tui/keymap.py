"""The app's key bindings: static bindings from the action table, the session's keymap.

Every action in :data:`ghosttui.session.keys.ACTIONS` is a static binding whose
id is the action id; class labels are nine static slots ``label_1`` ..
``label_9`` bound to the digits. :func:`session_keymap` turns ``session.toml``
into the keymap Textual applies over them: the class keys join their slots, the
``[keys]`` overrides replace defaults, and a class key always wins over an
action key it collides with (the action keeps its other keys, or is disabled).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.binding import Binding, BindingType

from ghosttui.session.keys import ACTIONS, DEFAULT_ACTION_KEYS, key_character
from ghosttui.session.settings import MAX_CLASSES, SessionSettings

LABEL_GROUP = Binding.Group("label")


def app_bindings() -> list[BindingType]:
    """The static bindings: every action, the nine label slots, ctrl+c."""
    bindings: list[BindingType] = [
        Binding(a.keys, a.action, a.short, show=a.footer, id=a.id) for a in ACTIONS
    ]
    bindings += [
        Binding(str(i + 1), f"label({i})", f"class {i + 1}", id=label_id(i), group=LABEL_GROUP)
        for i in range(MAX_CLASSES)
    ]
    bindings.append(Binding("ctrl+c", "quit", "quit", show=False, priority=True))
    return bindings


def label_id(index: int) -> str:
    return f"label_{index + 1}"


@dataclass
class SessionKeymap:
    """What :func:`session_keymap` found."""

    keymap: dict[str, str]  # binding id -> keys, for App.set_keymap
    keys: dict[str, list[str]]  # action id -> the keys it answers to now
    disabled: set[str] = field(default_factory=set)  # action ids left without a key
    problems: list[str] = field(default_factory=list)  # for a notification


def session_keymap(settings: SessionSettings) -> SessionKeymap:
    class_chars = {spec.key: spec.name for spec in settings.classes}
    keymap: dict[str, str] = {}
    keys: dict[str, list[str]] = {}
    disabled: set[str] = set()
    problems: list[str] = []
    unknown = sorted(set(settings.keys) - set(DEFAULT_ACTION_KEYS))
    if unknown:
        problems.append(f"session.toml [keys] names unknown actions: {', '.join(unknown)}")
    for action in ACTIONS:
        wanted = settings.keys.get(action.id, action.keys)
        chosen = [k.strip() for k in wanted.split(",") if k.strip()]
        kept = [k for k in chosen if key_character(k) not in class_chars]
        for k in chosen:
            if k not in kept:
                problems.append(
                    f"key {key_character(k)!r} labels {class_chars[key_character(k)]}, "
                    f"so it no longer does {action.id}"
                )
        keys[action.id] = kept
        if not kept:
            disabled.add(action.id)
        elif ",".join(kept) != action.keys:
            keymap[action.id] = ",".join(kept)
    for i, spec in enumerate(settings.classes):
        keymap[label_id(i)] = f"{spec.key},{i + 1}"
    return SessionKeymap(keymap, keys, disabled, problems)
