"""Commands about the model: train, predict, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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
        Path, typer.Option("--out", help="Output HDF5 with probabilities and class maps.")
    ],
    data: Annotated[
        list[Path] | None,
        typer.Option("--data", help="Other scans to classify (repeat for a series)."),
    ] = None,
    round: Annotated[
        int | None, typer.Option("--round", help="Use this round's model (default: latest).")
    ] = None,
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
    from ghosttui.errors import ModelError
    from ghosttui.model.checkpoint import load_checkpoint
    from ghosttui.model.device import resolve_device
    from ghosttui.model.outputs import PredictionWriter
    from ghosttui.model.predict import predict_cache
    from ghosttui.patterns.cache import open_or_build
    from ghosttui.session.session import Session

    with Session.open(name, directory=directory, writable=False) as session:
        if round is None:
            checkpoint = session.latest_checkpoint()
            if checkpoint is None:
                raise ModelError(
                    f"session '{session.name}' has no trained model; run `ghosttui train` first"
                )
        else:
            checkpoint = load_checkpoint(
                session.checkpoint_path(round),
                session_id=session.settings.id,
                classes=session.classes,
            )
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
