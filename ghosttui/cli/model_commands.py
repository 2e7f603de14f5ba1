"""Commands about the model: train, predict, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
        int | None, typer.Option("--epochs", help="Epochs (cnn learner; default: session setting).")
    ] = None,
    device: Device = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Random seed (default: session setting).")
    ] = None,
    promote: Annotated[
        bool,
        typer.Option(
            "--promote", help="Use the new model even if it measures worse than the current one."
        ),
    ] = False,
    directory: SessionDir = None,
    data: Repoint = None,
) -> None:
    """Train a model on the labels as they stand; it replaces the model in use unless worse."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from ghosttui.loop.controller import LabellingController
    from ghosttui.loop.report import accuracy_text, count, cv_text, learner_text, seconds_text
    from ghosttui.loop.rounds import RoundUpdate, train_model
    from ghosttui.numbers import whole
    from ghosttui.session.session import Session

    if epochs is not None:
        whole(epochs, "--epochs", 1, 100_000)
    if seed is not None:
        whole(seed, "--seed", 0, 2**32 - 1)
    columns = (
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Session.open(name, directory=directory, data=data) as session:
        loop = LabellingController(session, resume=False)
        job = loop.request_training(epochs=epochs, device=device, seed=seed)
        with Progress(*columns, console=err_console) as progress:
            tasks: dict[str, int] = {}

            def update(u: RoundUpdate) -> None:
                if u.stage not in tasks:
                    tasks[u.stage] = progress.add_task(u.stage, total=u.total, detail="")
                progress.update(tasks[u.stage], completed=u.done, total=u.total, detail=u.message)

            loop.training_started(job)
            trained = train_model(session, job, progress=update)
        verdict = loop.training_finished(trained)
        record = session.store.models()[-1]
        if promote and not verdict.take:
            loop.promote(record.id)
        m = record.metrics
        used = verdict.take or promote
        device = str(m.get("device", "cpu"))
        threads = int(m.get("threads", 1))
        where = f"{device} ({count(threads, 'thread')})" if device == "cpu" else device
        lines = [
            f"model {record.id} (round {job.round}, {learner_text(m)}): trained on {m['labels']} labels "
            f"in {seconds_text(m['seconds_train'])} on {where}",
            (
                "now the model in use"
                + (" (--promote)" if promote and not verdict.take else f": {verdict.reason}")
                if used
                else f"[yellow]kept as a candidate[/]: {verdict.reason}; "
                f"`ghosttui promote {session.name}` takes it anyway"
            ),
        ]
        if m.get("absent_classes"):
            lines.append(
                f"[yellow]trained without a label of {', '.join(m['absent_classes'])}[/]: "
                "label some and train again"
            )
        if "choice_reason" in m:
            lines.append(f"learner auto took {m['learner']}: {m['choice_reason']}")
        if "symmetry_reason" in m:
            lines.append(f"input symmetry auto took {m['symmetry_reason']}")
        estimate = loop.estimate()
        holdout = estimate.holdout
        lines.append(
            "accuracy estimate of the model in use: "
            + accuracy_text(holdout.accuracy, holdout.ci95, holdout.total, what="holdout")
            + f"; cross-validated on this model's labels: {cv_text(m)}"
        )
        if "changed_fraction" in m:
            lines.append(
                f"map changed {m['changed_fraction']:.2%} (kappa {m['kappa_previous']:.3f})"
            )
        lines.append(
            f"predicted {trained.probabilities.shape[0]}x{trained.probabilities.shape[1]} positions "
            f"at {m['patterns_per_second']:,.0f} patterns/s -> {trained.predictions}"
        )
    for line in lines:
        console.print(line)


@app.command()
def promote(
    name: SessionName,
    model: Annotated[
        int | None, typer.Option("--model", help="Model id (default: the newest candidate).")
    ] = None,
    directory: SessionDir = None,
) -> None:
    """Use a candidate model (one that measured worse, or trained on changed labels) anyway."""
    from ghosttui.loop.controller import LabellingController
    from ghosttui.session.session import Session

    with Session.open(name, directory=directory) as session:
        record = LabellingController(session, resume=False).promote(model)
        console.print(f"model {record.id} (round {record.round}) is now the model in use")


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
        int | None,
        typer.Option(
            "--round", help="Use the last model of this round (default: the model in use)."
        ),
    ] = None,
    model_id: Annotated[int | None, typer.Option("--model", help="Use this model id.")] = None,
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
            model_id=model_id,
            device=device,
            overwrite=overwrite,
            cluster=spec,
            reporter=reporter,
        )
    if result.dropped:
        console.print(f"removed unfinished scans of an earlier run: {', '.join(result.dropped)}")
    console.print(
        f"wrote {out} (model {result.model_id}, round {result.round}): {len(result.outcomes)} scans classified"
        + (f", {len(result.skipped)} already there" if result.skipped else "")
    )


@app.command()
def export(
    name: SessionName,
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    round: Annotated[
        int | None,
        typer.Option(
            "--round", help="Export the last model of this round (default: the model in use)."
        ),
    ] = None,
    model_id: Annotated[int | None, typer.Option("--model", help="Export this model id.")] = None,
    directory: SessionDir = None,
) -> None:
    """Domain map (PNG, paper colours), confidence map, probabilities (HDF5), labels (CSV), model."""
    from ghosttui.export import export_session
    from ghosttui.session.session import Session

    with Session.open(name, directory=directory, writable=False) as session:
        written = export_session(session, out, round, model_id)
    for path in written:
        console.print(f"wrote {path}")
