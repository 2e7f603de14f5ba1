"""How commands show their arguments in usage lines and help.

Typer 0.2x writes a required argument as ``{name}`` in usage lines (``Usage: ghosttui
label [OPTIONS] {name}``) and gives every flag a ``<bool>`` type in help, although a flag
takes no value. Every ghosttui command and group is made with :class:`GhostTyper`, whose
commands use the usual Unix conventions instead: ``NAME`` for a required argument,
``[NAME]`` for an optional one, ``NAME...`` for several, and nothing after a flag.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


def argument_usage(name: str, required: bool, nargs: int) -> str:
    """``NAME``, ``[NAME]`` or ``NAME...`` for the usage line."""
    text = name.upper()
    if nargs != 1:
        text += "..."
    return text if required else f"[{text}]"


def untyped_flags(params: list[Any]) -> list[Any]:
    """Give flags an empty metavar: the help's type column stays blank for them."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class GhostCommand(TyperCommand):
    """A typer command with conventional usage lines and flags shown without a type."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or param.name or "ARG"
                pieces.append(argument_usage(name, bool(param.required), param.nargs))
        return pieces

    def get_params(self, ctx: Any) -> list[Any]:
        return untyped_flags(super().get_params(ctx))


class GhostGroup(TyperGroup):
    """A typer group (``ghosttui``, ``ghosttui labels``) whose flags show no type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return untyped_flags(super().get_params(ctx))


class GhostTyper(typer.Typer):
    """A ``typer.Typer`` made of :class:`GhostGroup` and :class:`GhostCommand`."""

    def __init__(self, *args: Any, cls: type[TyperGroup] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, cls=cls or GhostGroup, **kwargs)

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or GhostCommand, **kwargs)
