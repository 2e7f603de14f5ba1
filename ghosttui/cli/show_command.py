"""``ghosttui show``: the pattern pane of one position as a PNG, pixel for pixel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ghosttui.cli import app
from ghosttui.cli.options import console
from ghosttui.cli.session_commands import SessionDir, SessionName
from ghosttui.errors import GhostError
from ghosttui.render.views import AVERAGES, VIEWS


def parse_pair(text: str, what: str, separator: str = ",") -> tuple[int, int]:
    """``"12,5"`` -> (12, 5); a clear error otherwise."""
    try:
        a, b = (int(v) for v in text.lower().split(separator))
    except ValueError:
        raise GhostError(
            f"{what} must look like A{separator}B with whole numbers (got {text!r})"
        ) from None
    return a, b


@app.command()
def show(
    name: SessionName,
    at: Annotated[str, typer.Option("--at", help="Probe position RX,RY.")],
    out: Annotated[Path, typer.Option("--out", help="PNG to write.")],
    view: Annotated[
        str | None,
        typer.Option("--view", help=f"View: {', '.join(VIEWS)} (default: the session's)."),
    ] = None,
    average: Annotated[
        int | None,
        typer.Option(
            "--average",
            help=f"Average the K x K positions around RX,RY, K in {AVERAGES} "
            "(default: the session's).",
        ),
    ] = None,
    zoom: Annotated[
        str | None, typer.Option("--zoom", help="1x, 2x, 4x or native (default: the session's).")
    ] = None,
    references: Annotated[
        str | None,
        typer.Option("--refs", help="labels, model or off (default: the session's)."),
    ] = None,
    variation: Annotated[
        str | None,
        typer.Option(
            "--variation",
            help="transpose, mean and local views: 'removed' (the scan's largest variations "
            "that the labels do not tie to a class are taken out, once two classes have 5 "
            "labels) or 'kept' (default: the session's).",
        ),
    ] = None,
    cells: Annotated[
        str,
        typer.Option(
            "--cells",
            help="Pane size COLSxROWS in terminal cells (default: the app's pattern pane in a "
            "160x48 terminal); 'full' draws the query at full resolution.",
        ),
    ] = "",
    directory: SessionDir = None,
) -> None:
    """Write exactly the pixels the app's pattern pane draws for a position: one PNG pixel per
    half-block pixel, the same colours, the same view settings."""
    from dataclasses import replace

    from PIL import Image

    from ghosttui.files import atomic_output
    from ghosttui.render.pane import APP_PANE_CELLS, PaneState, PatternPane
    from ghosttui.session.session import Session

    rx, ry = parse_pair(at, "--at")
    if out.suffix.lower() != ".png":
        raise GhostError("--out must name a .png file", out)
    if not out.parent.exists():
        raise GhostError("output folder does not exist", out.parent)
    if cells == "full":
        size = None
    else:
        cols, rows = parse_pair(cells, "--cells", "x") if cells else APP_PANE_CELLS
        if cols < 1 or rows < 1:
            raise GhostError(f"--cells must be positive (got {cells})")
        size = (2 * rows, cols)
    with Session.open(name, directory=directory, writable=False) as session:
        n_rx, n_ry = session.scan_shape
        if not (0 <= rx < n_rx and 0 <= ry < n_ry):
            raise GhostError(
                f"--at {rx},{ry} is outside the scan of session '{session.name}' "
                f"(rx 0..{n_rx - 1}, ry 0..{n_ry - 1})"
            )
        pane = PatternPane.for_session(session)
        changes = {
            "view": view,
            "average": average,
            "zoom": zoom,
            "references": references,
            "variation": variation,
        }
        state: PaneState = replace(
            pane.state, **{k: v for k, v in changes.items() if v is not None}
        )
        pane.state = state
        drawing = pane.draw(rx, ry, *size) if size else pane.draw(rx, ry)
    with atomic_output(out) as tmp:
        Image.fromarray(drawing.rgb).save(tmp, format="PNG")
    height, width = drawing.rgb.shape[:2]
    console.print(
        f"wrote {out}: {width}x{height} pixels · {drawing.caption[0]} · {drawing.caption[1]}"
    )
