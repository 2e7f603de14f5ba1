"""Commands that open the terminal app: label and demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ghosttui.cli import app
from ghosttui.cli.options import console, progress_bar
from ghosttui.cli.session_commands import Repoint, SessionDir, SessionName

Render = Annotated[
    str,
    typer.Option(
        "--render",
        help="auto (sixel/kitty if the terminal has them, else half blocks), sixel, "
        "kitty, halfblock, ascii or external.",
    ),
]
Viewer = Annotated[
    str | None,
    typer.Option(
        "--viewer", help="External viewer command (default $GHOSTTUI_VIEWER); {} is the PNG path."
    ),
]


def run_app(
    name: str, directory: Path | None, data: Path | None, render: str, viewer: str | None
) -> None:
    from ghosttui.session.session import Session
    from ghosttui.tui.render_mode import resolve_render

    mode = resolve_render(render)  # asks the terminal before Textual takes it over
    session = Session.open(name, directory=directory, data=data)
    try:
        with progress_bar("cache") as update:
            session.cache(progress=update)
        from ghosttui.tui.app import create_app

        create_app(session, render=mode, viewer=viewer).run()
    finally:
        session.close()
    with Session.open(name, directory=directory, writable=False) as saved:
        console.print(f"session '{name}' saved in {saved.dir}: {len(saved.store.labels())} labels")


@app.command()
def label(
    name: SessionName,
    render: Render = "auto",
    viewer: Viewer = None,
    directory: SessionDir = None,
    data: Repoint = None,
) -> None:
    """Label patterns in the terminal; resumes where the session stopped."""
    run_app(name, directory, data, render, viewer)


@app.command()
def demo(
    render: Render = "auto",
    viewer: Viewer = None,
    geometry: Annotated[str, typer.Option("--geometry", help="wall, stripes or needles.")] = "wall",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated scan.")] = 0,
) -> None:
    """Simulate the default scan (once), create the 'demo' session and open it."""
    from ghosttui.numbers import whole
    from ghosttui.session.session import Session, sessions_root
    from ghosttui.session.settings import make_classes
    from ghosttui.simulate import SimulationSettings, simulate

    whole(seed, "--seed", 0, 2**32 - 1)
    name = f"demo-{geometry}-{seed}" if (geometry, seed) != ("wall", 0) else "demo"
    root = sessions_root()
    data = root / ".data" / f"{geometry}-seed{seed}.h5"
    if not (root / name / "session.toml").exists():
        if not data.exists():
            data.parent.mkdir(parents=True, exist_ok=True)
            with progress_bar("simulating") as update:
                simulate(
                    data,
                    SimulationSettings(geometry=geometry, seed=seed),
                    progress=update,
                    truth_npy=data.with_suffix(".truth.npy"),
                )
        Session.create(name, data, classes=make_classes()).close()
        console.print(f"created session '{name}' in {root / name} on {data}")
    run_app(name, None, None, render, viewer)
