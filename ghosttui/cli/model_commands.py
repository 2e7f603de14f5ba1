"""Commands about the model: train, predict, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ghosttui.cli import app
from ghosttui.cli.options import (
    Dataset,
    Detector,
    Dtype,
    Format,
    Offset,
    ScanShape,
    console,
    err_console,
    load_options,
    progress_bar,
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
    from ghosttui.loop.report import accuracy_text, count, cv_text, seconds_text
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
            f"model {record.id} (round {job.round}, {m['learner']}): trained on {m['labels']} labels "
            f"in {seconds_text(m['seconds_train'])} on {where}",
            (
                "now the model in use"
                + (" (--promote)" if promote and not verdict.take else f": {verdict.reason}")
                if used
                else f"[yellow]kept as a candidate[/]: {verdict.reason}; "
                f"`ghosttui promote {session.name}` takes it anyway"
            ),
        ]
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
        Path, typer.Option("--out", help="Output HDF5 with probabilities and class maps.")
    ],
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="Other scans to classify (repeat for a series)."),
    ] = None,
    round: Annotated[
        int | None,
        typer.Option(
            "--round", help="Use the last model of this round (default: the model in use)."
        ),
    ] = None,
    model_id: Annotated[int | None, typer.Option("--model", help="Use this model id.")] = None,
    device: Device = None,
    directory: SessionDir = None,
    dataset: Dataset = None,
    scan: ScanShape = None,
    detector: Detector = None,
    dtype: Dtype = None,
    offset: Offset = 0,
    format: Format = None,
) -> None:
    """Apply the session's model to its own scan or to other scans (each streamed)."""
    from ghosttui.model.device import resolve_device
    from ghosttui.model.outputs import PredictionWriter
    from ghosttui.model.predict import predict_cache
    from ghosttui.patterns.cache import open_or_build
    from ghosttui.session.session import Session

    with Session.open(name, directory=directory, writable=False) as session:
        checkpoint = session.load_model(session.find_model(round, model_id))
        model = checkpoint.build()
        torch_device = resolve_device(device or session.settings.model.device)
        targets = data or [Path(session.settings.data.path)]
        options = (
            load_options(dataset, scan, detector, dtype, offset, format)
            if data
            else session.load_options
        )
        names: dict[str, int] = {}
        with PredictionWriter(
            out, session.classes, round=checkpoint.round, session=session.name, inputs=targets
        ) as writer:
            for path in targets:
                with progress_bar(f"cache {path.name}") as update:
                    cache = open_or_build(
                        path, options, session.settings.preprocess, progress=update
                    )
                with cache, progress_bar(f"predict {path.name}") as update:
                    probabilities = predict_cache(model, cache, torch_device, progress=update)
                group = None
                if len(targets) > 1:
                    stem = path.stem
                    names[stem] = names.get(stem, 0) + 1
                    group = stem if names[stem] == 1 else f"{stem}_{names[stem]}"
                writer.add(probabilities, group=group, source=str(path.resolve()))
                shares = (probabilities.argmax(-1)[..., None] == range(len(session.classes))).mean(
                    (0, 1)
                )
                summary = ", ".join(
                    f"{c} {s:.1%}" for c, s in zip(session.classes, shares, strict=True)
                )
                console.print(
                    f"{path}: {probabilities.shape[0]}x{probabilities.shape[1]} -> {summary}"
                )
    console.print(f"wrote {out} (round {checkpoint.round} model)")


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
