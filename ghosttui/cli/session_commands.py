"""Commands about sessions: new, labels import/export, sessions, status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ghosttui.cli import app
from ghosttui.cli.help_format import GhostTyper
from ghosttui.cli.options import (
    AllowBlank,
    Crop,
    Dataset,
    Detector,
    Dtype,
    Format,
    HotPixels,
    Normalise,
    Offset,
    Pooling,
    ScanShape,
    Size,
    Transform,
    console,
    hash_progress,
    load_options,
    preprocess_settings,
)
from ghosttui.patterns.settings import DEFAULT_SIZE

SessionName = Annotated[
    str,
    typer.Argument(
        help="Session name (a folder in the sessions home: $GHOSTTUI_SESSIONS, default "
        "~/.local/share/ghosttui/sessions; `ghosttui sessions` lists them) or a session "
        "folder's path."
    ),
]
SessionDir = Annotated[
    Path | None,
    typer.Option("--dir", help="Session folder, instead of NAME in the sessions home."),
]
Repoint = Annotated[
    Path | None,
    typer.Option("--data", help="Re-point the session at a moved copy of its data (same content)."),
]

labels_app = GhostTyper(
    help="Import and export labels (CSV; the paper's YAML on import).", no_args_is_help=True
)
app.add_typer(labels_app, name="labels")


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",")] if text else None


@app.command()
def new(
    name: Annotated[
        str,
        typer.Argument(
            help="Session name; the session is made in the sessions home "
            "($GHOSTTUI_SESSIONS, default ~/.local/share/ghosttui/sessions) unless --dir is given."
        ),
    ],
    data: Annotated[Path, typer.Option("--data", help="The 4D-STEM file to label.")],
    classes: Annotated[
        str | None, typer.Option("--classes", help="Comma-separated class names (2-9).")
    ] = None,
    keys: Annotated[
        str | None, typer.Option("--keys", help="Comma-separated label keys, one per class.")
    ] = None,
    directory: SessionDir = None,
    dataset: Dataset = None,
    scan: ScanShape = None,
    detector: Detector = None,
    dtype: Dtype = None,
    offset: Offset = 0,
    format: Format = None,
    size: Size = DEFAULT_SIZE,
    pooling: Pooling = "sum",
    crop: Crop = None,
    transform: Transform = "log",
    normalise: Normalise = "robust",
    hot_pixels: HotPixels = True,
    allow_blank: AllowBlank = False,
) -> None:
    """Create a labelling session for a scan (default classes: horizontal, vertical, none)."""
    from ghosttui.session.session import Session
    from ghosttui.session.settings import make_classes

    specs = make_classes(_split(classes), _split(keys))
    options = load_options(dataset, scan, detector, dtype, offset, format)
    settings = preprocess_settings(
        size, pooling, crop, transform, normalise, hot_pixels, allow_blank
    )
    with hash_progress(data) as update:  # the first hash of a large file takes a while
        session = Session.create(
            name,
            data,
            options=options,
            classes=specs,
            preprocess=settings,
            directory=directory,
            hash_progress=update,
        )
    with session:
        rx, ry = session.scan_shape
        keys_text = ", ".join(f"{c.key}={c.name}" for c in specs)
        console.print(
            f"created session '{name}' in {session.dir}: {rx}x{ry} scan, classes {keys_text}"
        )


@labels_app.command("import")
def labels_import(
    name: SessionName,
    file: Annotated[
        Path, typer.Argument(help="CSV (rx, ry, label[, source]) or the paper's YAML.")
    ],
    directory: SessionDir = None,
    data: Repoint = None,
) -> None:
    """Add labels from a file (all or nothing: every row is checked first)."""
    from ghosttui.session.labels_io import import_labels
    from ghosttui.session.session import Session

    with Session.open(name, directory=directory, data=data) as session:
        count = import_labels(session.store, file)
        total = len(session.store.labels())
        console.print(f"imported {count} labels into '{session.name}' ({total} labelled positions)")


@labels_app.command("export")
def labels_export(
    name: SessionName,
    file: Annotated[Path, typer.Argument(help="Output CSV: rx, ry, label, source, round.")],
    directory: SessionDir = None,
) -> None:
    """Write the current labels as CSV."""
    from ghosttui.session.labels_io import export_labels
    from ghosttui.session.session import Session

    with Session.open(name, directory=directory, writable=False) as session:
        count = export_labels(session.store, file)
        console.print(f"wrote {count} labels to {file}")


@app.command("sessions")
def sessions_command() -> None:
    """List the sessions in the sessions home: scan, labels, models, data file."""
    from rich.markup import escape
    from rich.table import Table

    from ghosttui.session.home import describe_root, session_folders, summarise

    console.print(f"sessions home: {escape(describe_root())}")
    folders = session_folders()
    if not folders:
        console.print(
            "no sessions yet: `ghosttui new NAME --data FILE` makes one, `ghosttui demo` the demo; "
            "set GHOSTTUI_SESSIONS to use another folder"
        )
        return
    table = Table(title_justify="left")
    for column, justify in (
        ("name", "left"),
        ("scan", "right"),
        ("labels", "right"),
        ("models", "right"),
        ("data", "left"),
    ):
        table.add_column(column, justify=justify)
    for folder in folders:
        s = summarise(folder)
        data = escape(s.data) if s.data_present else f"[red]{escape(s.data)} (missing)[/]"
        if s.problem:
            data = f"{data if s.data else ''}  [red]{escape(s.problem)}[/]".strip()
        table.add_row(
            escape(folder.name),
            f"{s.scan_shape[0]}x{s.scan_shape[1]}",
            str(s.labels),
            str(s.models),
            data,
        )
    console.print(table)


@app.command()
def status(
    name: Annotated[
        str | None,
        typer.Argument(
            help="Session name or folder (as for `label`); without one, list the sessions."
        ),
    ] = None,
    directory: SessionDir = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the numbers as JSON, for scripts.")
    ] = False,
) -> None:
    """Labels, rounds, the model in use and its honest accuracy, and the stopping rule."""
    import json

    from rich.table import Table

    from ghosttui.loop.controller import LabellingController
    from ghosttui.loop.report import accuracy_text, cv_text, holdout_text, learner_text
    from ghosttui.session.session import Session

    if name is None and directory is None:
        sessions_command()
        return

    name = name or Path(directory).name
    with Session.open(name, directory=directory, writable=False) as session:
        loop = LabellingController(session, resume=False)
        summary = loop.summary()
        if json_out:
            typer.echo(json.dumps(summary, indent=2))
            return
        labels = list(session.store.labels().values())
        rx, ry = session.scan_shape
        console.print(
            f"[bold]{session.name}[/]  {session.settings.data.path}  ({rx}x{ry}, {session.settings.data.format})"
        )
        counts = Table(title="labels", title_justify="left")
        sources = sorted({lab.source for lab in labels})
        counts.add_column("class")
        for source in sources:
            counts.add_column(source, justify="right")
        counts.add_column("total", justify="right", style="bold")
        for spec in session.settings.classes:
            row = [lab for lab in labels if lab.cls == spec.name]
            counts.add_row(
                f"[{spec.colour}]■[/] {spec.name} ({spec.key})",
                *[str(sum(1 for lab in row if lab.source == s)) for s in sources],
                str(len(row)),
            )
        counts.add_row(
            "all",
            *[str(sum(1 for lab in labels if lab.source == s)) for s in sources],
            str(len(labels)),
            style="bold",
        )
        console.print(counts)
        console.print(
            f"round {summary['round']} ({summary['rounds']} ended); "
            f"{summary['pending']} queries pending; {summary['message']}"
        )
        models = session.store.models()
        if not models:
            console.print(
                "no model yet: one trains when the first round ends (or `ghosttui train`)"
            )
            return
        table = Table(title="models", title_justify="left")
        for col in (
            "model",
            "round",
            "labels",
            "state",
            "holdout acc",
            "cv acc",
            "changed",
            "train s",
        ):
            table.add_column(col, justify="right" if col not in ("state",) else "left")
        for m in models:
            metrics = m.metrics
            table.add_row(
                str(m.id),
                str(m.round),
                str(metrics.get("labels", "")),
                m.state,
                holdout_text(metrics),
                cv_text(metrics),
                f"{metrics['changed_fraction']:.2%}" if "changed_fraction" in metrics else "-",
                f"{metrics.get('seconds_train', 0):.1f}",
            )
        console.print(table)
        estimate = summary["accuracy_estimate"]
        fitted_with = learner_text(
            {
                key: summary[f"model_{key}"]
                for key in (
                    "learner",
                    "train_average",
                    "mean_share",
                    "input_blur",
                    "input_symmetry",
                )
            }
        )
        console.print(
            "model in use: "
            + (
                f"{summary['model_id']} (round {summary['model_round']}, {fitted_with})"
                if summary["model_id"] is not None
                else "none"
            )
            + (
                "  [yellow]stale: it trained on labels since undone or changed[/]"
                if summary["model_stale"]
                else ""
            )
            + (
                f"  [yellow]trained without a label of {', '.join(summary['model_absent_classes'])}[/]"
                if summary["model_absent_classes"]
                else ""
            )
        )
        for candidate in summary["candidates"]:
            console.print(
                f"[yellow]candidate[/] model {candidate['id']} (round {candidate['round']}): "
                f"{candidate['reason']}; `ghosttui train {session.name} --promote` takes it"
            )
        console.print(
            "accuracy estimate: "
            + accuracy_text(estimate["value"], estimate["ci95"], estimate["n"], what="holdout")
        )
        console.print(
            f"stopping: [bold]{'met' if summary['stable'] else 'not met'}[/] "
            f"({summary['stability']}: {summary['stability_reason']}); rule: {summary['stopping_rule']}"
        )
