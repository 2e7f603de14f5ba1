"""Commands about sessions: new, labels import/export, status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ghosttui.cli import app
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
    str, typer.Argument(help="Session name (a folder under sessions/) or a session folder.")
]
SessionDir = Annotated[
    Path | None, typer.Option("--dir", help="Session folder, instead of sessions/NAME.")
]
Repoint = Annotated[
    Path | None,
    typer.Option("--data", help="Re-point the session at a moved copy of its data (same content)."),
]

labels_app = typer.Typer(
    help="Import and export labels (CSV; the paper's YAML on import).", no_args_is_help=True
)
app.add_typer(labels_app, name="labels")


def _split(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",")] if text else None


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="Session name.")],
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


@app.command()
def status(name: SessionName, directory: SessionDir = None) -> None:
    """Labels per class and source, rounds, held-out accuracy and the stopping signal."""
    from ghosttui.sampling.stopping import stability
    from ghosttui.session.session import Session

    with Session.open(name, directory=directory, writable=False) as session:
        labels = session.store.labels().values()
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
            f"queue: {len(session.store.pending())} pending; labelling round {session.store.round}"
        )
        rounds = session.trained_rounds()
        if not rounds:
            console.print(
                "no model yet: run `ghosttui train` or press the retrain key in `ghosttui label`"
            )
            return
        table = Table(title="rounds", title_justify="left")
        for col in (
            "round",
            "labels",
            "val acc",
            "holdout acc (95% CI)",
            "changed",
            "kappa",
            "epochs",
            "train s",
        ):
            table.add_column(col, justify="right")
        for r in rounds:
            m = r["metrics"]
            holdout = "-"
            if "holdout_accuracy" in m:
                lo, hi = m["holdout_ci"]
                holdout = f"{m['holdout_accuracy']:.1%} ({lo:.0%}-{hi:.0%}, n={m['holdout_n']})"
            table.add_row(
                str(r["round"]),
                str(m.get("labels", "")),
                f"{m['val_accuracy']:.1%}" if m.get("val_accuracy") is not None else "-",
                holdout,
                f"{m['changed_fraction']:.2%}" if "changed_fraction" in m else "-",
                f"{m['kappa_previous']:.3f}" if "kappa_previous" in m else "-",
                str(m.get("epochs_run", "")),
                f"{m.get('seconds_train', 0):.1f}",
            )
        console.print(table)
        signal = stability(rounds)
        console.print(f"stopping signal: [bold]{signal.verdict}[/] ({signal.reason})")
