"""The ``ghosttui`` command: a thin typer layer over the core functions."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from ghosttui import __version__
from ghosttui.cli.help_format import GhostTyper
from ghosttui.errors import GhostError
from ghosttui.session.home import describe_root

app = GhostTyper(
    name="ghosttui",
    help="Map ferroelectric domains in 4D-STEM scans: label diffraction patterns in the "
    "terminal, train a small CNN, paint the domain map.",
    epilog=f"Sessions live in {describe_root()}: set GHOSTTUI_SESSIONS to use another folder, "
    "`ghosttui sessions` lists them, --dir reaches one anywhere else. Pattern caches live in "
    "$GHOSTTUI_CACHE_DIR (default ~/.cache/ghosttui).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ghosttui {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """ghosttui: active-learning domain mapping for 4D-STEM."""


def _register() -> None:
    from ghosttui.cli import (  # noqa: F401
        app_commands,
        bench_command,
        data_commands,
        model_commands,
        session_commands,
        show_command,
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors become one line on stderr and exit status 2.

    Usage errors are click's own (standalone mode: message and exit status 2);
    a :class:`GhostError` raised by any command is caught here.
    """
    _register()
    try:
        app(args=argv, prog_name="ghosttui", standalone_mode=True)
    except GhostError as exc:
        typer.echo(f"ghosttui: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # disk full, permission denied, ... while writing results
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"ghosttui: error: {where}{exc.strerror or exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("ghosttui: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("GHOSTTUI_DEBUG"):
            raise
        typer.echo(
            f"ghosttui: internal error: {type(exc).__name__}: {exc} "
            "(set GHOSTTUI_DEBUG=1 for the traceback)",
            err=True,
        )
        sys.exit(1)
