"""The action table and the keymap built from a session's settings."""

from __future__ import annotations

from ghosttui.session.keys import (
    ACTIONS,
    DEFAULT_ACTION_KEYS,
    LEGACY_DEFAULT_KEYS,
    taken_characters,
    user_keys,
)
from ghosttui.session.settings import SessionSettings, make_classes
from ghosttui.tui.keymap import app_bindings, session_keymap

OLD_TOML_KEYS = {  # what every session.toml held before the keymap: all defaults, written out
    "skip": "space",
    "undo": "u",
    "retrain": "r",
    "external": "o",
    "raw": "w",
    "contrast": "c",
    "clip": "bracketright",
    "zoom": "z",
    "layer": "m",
    "map_zoom": "Z",
    "cursor_up": "up",
    "cursor_down": "down",
    "cursor_left": "left",
    "cursor_right": "right",
    "leave_manual": "escape",
    "budget": "plus",
    "help": "question_mark",
    "quit": "q",
}


def test_every_action_has_one_id_default_keys_and_a_description():
    ids = [a.id for a in ACTIONS]
    assert len(ids) == len(set(ids))
    assert all(a.keys and a.description for a in ACTIONS)
    bound = {b.id for b in app_bindings()}
    assert set(ids) <= bound and {f"label_{i}" for i in range(1, 10)} <= bound


def test_an_old_session_keeps_no_overrides_and_gets_the_new_defaults():
    assert user_keys(OLD_TOML_KEYS) == {}
    assert set(LEGACY_DEFAULT_KEYS) - set(DEFAULT_ACTION_KEYS) == {"raw"}
    assert user_keys({"skip": "x", "cursor_up": "k"}) == {"skip": "x", "cursor_up": "k"}


def test_new_class_keys_avoid_every_action_character():
    taken = taken_characters()
    assert {"d", "a", "b", "g", "s", "K", "]", "?", "+"} <= taken
    keys = [spec.key for spec in make_classes(["domain", "boundary", "strain", "grain"])]
    assert not set(keys) & taken


def settings(classes, keys, overrides):
    doc = SessionSettings.from_toml(
        'name = "k"\nid = "x"\n[data]\npath = "/x.h5"\nfingerprint = "f"\nshape = [2, 2, 8, 8]\n'
        'format = "hdf5"\n[keys]\n'
        + "".join(f'{k} = "{v}"\n' for k, v in overrides.items())
        + "".join(
            f'[[classes]]\nname = "{c}"\nkey = "{k}"\ncolour = "#ffffff"\n'
            for c, k in zip(classes, keys, strict=True)
        )
    )
    return doc


def test_keymap_puts_class_keys_on_label_slots_and_applies_overrides():
    found = session_keymap(settings(["horizontal", "vertical"], ["h", "v"], {"skip": "x"}))
    assert found.keymap["label_1"] == "h,1" and found.keymap["label_2"] == "v,2"
    assert found.keymap["skip"] == "x" and found.keys["skip"] == ["x"]
    assert "view" not in found.keymap  # defaults stay defaults
    assert found.problems == [] and found.disabled == set()


def test_a_class_key_wins_over_an_action_key_and_unknown_ids_are_reported():
    found = session_keymap(
        settings(["alpha", "delta"], ["a", "d"], {"view": "d,x", "nonsense": "q"})
    )
    assert found.keys["view"] == ["x"]  # d labels delta; the view keeps x
    assert found.keys["average"] == [] and "average" in found.disabled  # a labels alpha
    assert any("nonsense" in p for p in found.problems)
    assert any("no longer does average" in p for p in found.problems)
