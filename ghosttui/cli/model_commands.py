"""Commands about the model: train, predict, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ghosttui.cli import app
from ghosttui.cli.options import (
    DASK,
    ConnectTimeout,
    Dashboard,
    Dataset,
    Detector,
    Dtype,
    Format,
    Offset,
    ScanShape,
    Scheduler,
    TorchThreads,
    Workers,
    cluster_spec,
    console,
    err_console,
    load_options,
)
from ghosttui.cli.session_commands import Repoint, SessionDir, SessionName

Device = Annotated[
    str | None, typer.Option("--device", help="auto (CUDA when present), cpu, cuda, cuda:N.")
]


@app.command("train")
def train_command(
    name: SessionName,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Maximum epochs (default: session setting).")
    ] = None,
    device: Device = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (default: session setting).")
    ] = None,
    cold: Annotated[
        bool, typer.Option("--cold", help="Start from random weights, not the last round's.")
    ] = False,
    directory: SessionDir = None,
    data: Repoint = None,
) -> None:
    """Train on the session's labels; write a checkpoint and the whole-scan prediction."""
    from ghosttui.loop.rounds import RoundUpdate, train_round
    from ghosttui.session.session import Session

    columns = (
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with (
        Session.open(name, directory=directory, data=data) as session,
        Progress(*columns, console=err_console) as progress,
    ):
        tasks: dict[str, int] = {}

        def update(u: RoundUpdate) -> None:
            if u.stage not in tasks:
                tasks[u.stage] = progress.add_task(u.stage, total=u.total, detail="")
            progress.update(tasks[u.stage], completed=u.done, total=u.total, detail=u.message)

        result = train_round(
            session, epochs=epochs, device=device, seed=seed, warm_start=not cold, progress=update
        )
    m = result.metrics
    lines = [
        f"round {result.round}: trained on {m['n_train']} labels in {m['seconds_train']:.1f} s "
        f"({m['epochs_run']} epochs, best {m['best_epoch']}, {m['device']})"
    ]
    if m.get("val_accuracy") is not None:
        lines.append(
            f"held-out validation accuracy {m['val_accuracy']:.1%} on {m['n_val']} labels never trained on"
        )
    if "holdout_accuracy" in m:
        lo, hi = m["holdout_ci"]
        lines.append(
            f"holdout accuracy {m['holdout_accuracy']:.1%} (95% CI {lo:.1%}-{hi:.1%}, n={m['holdout_n']})"
        )
    if "changed_fraction" in m:
        lines.append(
            f"map changed {m['changed_fraction']:.2%} since the previous round (kappa {m['kappa_previous']:.3f})"
        )
    lines.append(
        f"predicted {result.probabilities.shape[0]}x{result.probabilities.shape[1]} positions at "
        f"{m['patterns_per_second']:,.0f} patterns/s -> {result.predictions}"
    )
    for line in lines:
        console.print(line)


@app.command()
def predict(
    name: SessionName,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output HDF5 with probabilities and class maps (a group per scan of a series); "
            "a re-run skips the scans already in it.",
        ),
    ],
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="Scans to classify instead of the session's: files, quoted globs "
            "('runs/*.h5'), folders, 5D HDF5 series; repeat for more.",
        ),
    ] = None,
    round: Annotated[
        int | None, typer.Option("--round", help="Use this round's model (default: latest).")
    ] = None,
    device: Device = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Start over instead of resuming: replace --out (once this run's first scan "
            "is finished).",
        ),
    ] = False,
    directory: SessionDir = None,
    dataset: Dataset = None,
    scan: ScanShape = None,
    detector: Detector = None,
    dtype: Dtype = None,
    offset: Offset = 0,
    format: Format = None,
    workers: Workers = None,
    scheduler: Scheduler = None,
    resources: Annotated[
        str | None,
        typer.Option(
            "--resources",
            help="Dask resources every classification task needs, e.g. GPU=1 (runs only on "
            "workers started with --resources GPU=1).",
            rich_help_panel=DASK,
        ),
    ] = None,
    resource_timeout: Annotated[
        float,
        typer.Option(
            "--resource-timeout",
            help="Seconds to wait for a worker with --resources.",
            rich_help_panel=DASK,
        ),
    ] = 30.0,
    torch_threads: TorchThreads = None,
    connect_timeout: ConnectTimeout = 10.0,
    dashboard: Dashboard = True,
) -> None:
    """Apply the session's model to its own scan or to a series of scans (each streamed)."""
    from ghosttui.cli.series_output import series_progress
    from ghosttui.inference.jobs import predict_session
    from ghosttui.session.session import Session

    spec = cluster_spec(
        workers,
        scheduler,
        resources=resources,
        torch_threads=torch_threads,
        connect_timeout=connect_timeout,
        resource_timeout=resource_timeout,
        dashboard=dashboard,
    )
    options = load_options(dataset, scan, detector, dtype, offset, format) if data else None
    with (
        Session.open(name, directory=directory, writable=False) as session,
        series_progress("predict", session.classes) as reporter,
    ):
        result = predict_session(
            session,
            out,
            inputs=data,
            options=options,
            round=round,
            device=device,
            overwrite=overwrite,
            cluster=spec,
            reporter=reporter,
        )
    if result.dropped:
        console.print(f"removed unfinished scans of an earlier run: {', '.join(result.dropped)}")
    console.print(
        f"wrote {out} (round {result.round} model): {len(result.outcomes)} scans classified"
        + (f", {len(result.skipped)} already there" if result.skipped else "")
    )


@app.command()
def export(
    name: SessionName,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    round: Annotated[
        int | None, typer.Option("--round", help="Export this round (default: latest).")
    ] = None,
    directory: SessionDir = None,
) -> None:
    """Domain map (PNG, paper colours), confidence map, probabilities (HDF5), labels (CSV), model."""
    from ghosttui.export import export_session
    from ghosttui.session.session import Session

    with Session.open(name, directory=directory, writable=False) as session:
        written = export_session(session, out, round)
    for path in written:
        console.print(f"wrote {path}")
