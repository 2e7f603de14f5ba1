"""``ghosttui bench``: strategies x budgets x seeds with a simulated labeller."""

from __future__ import annotations

import time
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
    Size,
    console,
    err_console,
    load_options,
    preprocess_settings,
)
from ghosttui.patterns.settings import DEFAULT_SIZE


def _ints(text: str, what: str) -> list[int]:
    from ghosttui.errors import GhostError

    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise GhostError(f"{what} must be comma-separated integers (got {text!r})") from None
    if not values:
        raise GhostError(f"{what} is empty")
    return values


@app.command()
def bench(
    data: Annotated[Path, typer.Argument(help="A 4D-STEM file with a known truth map.")],
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth", help="Truth .npy (Rx, Ry) of class indices; default: DATA's /truth."
        ),
    ] = None,
    strategy: Annotated[
        str,
        typer.Option(
            "--strategy", help="Comma-separated: random, grid-boundary, hybrid, uncertainty."
        ),
    ] = "random,grid-boundary,hybrid",
    budget: Annotated[
        str, typer.Option("--budget", help="Comma-separated label budgets.")
    ] = "50,100,250",
    seed: Annotated[str, typer.Option("--seed", help="Comma-separated seeds.")] = "0,1,2",
    classes: Annotated[
        str, typer.Option("--classes", help="Class names the truth indexes.")
    ] = "horizontal,vertical,none",
    learner: Annotated[
        str | None,
        typer.Option(
            "--learner",
            help="auto (the default: logistic regression unless the CNN beats it "
            "significantly in cross-validation on the labels), cnn, logreg (the baseline).",
        ),
    ] = None,
    train_average: Annotated[
        int | None,
        typer.Option(
            "--train-average",
            help="The linear learner fits each label as the mean of the KxK positions "
            "around it (odd; 1: the pattern alone; default: the session setting, 3).",
        ),
    ] = None,
    mean_share: Annotated[
        float | None,
        typer.Option(
            "--mean-share",
            help="The linear learner blends a fit on the neighbourhood means with one on the "
            "patterns themselves: the means' share of the weights (0 to 1; 1: the means alone; "
            "default: the session setting, 0.5).",
        ),
    ] = None,
    input_blur: Annotated[
        float | None,
        typer.Option(
            "--input-blur",
            help="The linear learner fits inputs blurred by a Gaussian of this many input "
            "pixels (0: not blurred; default: the session setting, 1).",
        ),
    ] = None,
    input_symmetry: Annotated[
        str | None,
        typer.Option(
            "--input-symmetry",
            help="The linear learner's inputs: none (as they are), mirror (averaged with their "
            "mirror images about the beam), auto (each round the one whose fit is surer over "
            "the scan; default: the session setting, auto).",
        ),
    ] = None,
    label_noise: Annotated[
        float,
        typer.Option("--label-noise", help="Chance that the simulated labeller answers wrong."),
    ] = 0.0,
    grid_step: Annotated[
        int, typer.Option("--grid-step", help="Grid step (0: chosen from the budget).")
    ] = 0,
    epochs: Annotated[
        int | None, typer.Option("--epochs", help="Maximum epochs per training round.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write every run as JSON.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the learning curves as PNG.")
    ] = None,
    size: Size = DEFAULT_SIZE,
    dataset: Dataset = None,
    scan: ScanShape = None,
    detector: Detector = None,
    dtype: Dtype = None,
    offset: Offset = 0,
    format: Format = None,
) -> None:
    """Run the labelling loop with a simulated labeller and compare strategies against the truth."""
    from rich.table import Table

    from ghosttui.cli.options import progress_bar
    from ghosttui.data import open_scan
    from ghosttui.loop.bench import (
        cell_text,
        check_bench_options,
        load_truth,
        plot_curves,
        run_bench,
        summary_table,
        write_json,
    )
    from ghosttui.loop.report import count
    from ghosttui.model.learners import check_learner
    from ghosttui.numbers import whole
    from ghosttui.patterns.cache import open_or_build
    from ghosttui.sampling.schedule import check_strategy
    from ghosttui.session.protect import check_output
    from ghosttui.session.settings import ModelSpec

    strategies = [check_strategy(s.strip()) for s in strategy.split(",") if s.strip()]
    if learner is not None:
        check_learner(learner)
    linear = {
        "train_average": train_average,
        "mean_share": mean_share,
        "input_blur": input_blur,
        "input_symmetry": input_symmetry,
    }
    ModelSpec(**{k: v for k, v in linear.items() if v is not None})  # refused now, not later
    budgets = _ints(budget, "--budget")
    seeds = [whole(s, "--seed", 0, 2**32 - 1) for s in _ints(seed, "--seed")]
    whole(grid_step, "--grid-step (0: chosen from the budget)", 0)
    if epochs is not None:
        whole(epochs, "--epochs", 1, 100_000)
    names = [c.strip() for c in classes.split(",") if c.strip()]
    options = load_options(dataset, scan, detector, dtype, offset, format)
    settings = preprocess_settings(size)
    for output in (json_out, plot):  # refused now, not after the runs
        if output is not None:
            check_output(output, inputs=[data])
    with open_scan(data, options) as opened:
        scan_shape = opened.scan_shape
    truth_map = load_truth(data, truth, scan_shape, len(names))
    check_bench_options(strategies, budgets, scan_shape, label_noise, grid_step)
    with progress_bar("cache") as update:
        open_or_build(data, options, settings, progress=update).close()
    total = len(strategies) * len(budgets) * len(seeds)
    console.print(
        f"bench: {count(len(strategies), 'strategy', 'strategies')} x "
        f"{count(len(budgets), 'budget')} x {count(len(seeds), 'seed')} = {count(total, 'run')}"
    )
    started = time.perf_counter()

    def report(run) -> None:
        scored = (
            f"no model within the budget ({run.no_model})"
            if run.no_model is not None
            else f"accuracy {run.accuracy:.2%} (domains {run.accuracy_domains:.2%}, walls "
            f"{run.accuracy_walls:.2%}, unlabelled {run.accuracy_unlabelled:.2%})"
        )
        if run.absent_classes:
            scored += f" [yellow]without a label of {', '.join(run.absent_classes)}[/]"
        learner = run.learner + (", mirror-symmetric" if run.symmetry_taken == "mirror" else "")
        err_console.print(
            f"  {run.strategy:>13} budget {run.budget:>4} seed {run.seed} ({learner}): "
            f"{scored}; {run.labels} training + {run.holdout} holdout labels, "
            f"{count(run.rounds, 'round')}, {count(run.models, 'model')}, {run.seconds:.0f} s"
        )

    runs = run_bench(
        data,
        truth_map,
        names,
        strategies,
        budgets,
        seeds,
        options=options,
        preprocess=settings,
        learner=learner,
        train_average=train_average,
        mean_share=mean_share,
        input_blur=input_blur,
        input_symmetry=input_symmetry,
        label_noise=label_noise,
        grid_step=grid_step,
        epochs=epochs,
        on_run=report,
    )
    elapsed = time.perf_counter() - started
    order, budget_rows, _ = summary_table(runs)
    spread = "mean ± std over seeds" if len(seeds) > 1 else "1 seed"
    table = Table(
        title=f"whole-map accuracy against the truth ({spread}) by training labels",
        title_justify="left",
    )
    table.add_column("labels", justify="right")
    for name in order:
        table.add_column(name, justify="right")
    for b in budget_rows:
        table.add_row(
            str(b),
            *[cell_text([r for r in runs if r.budget == b and r.strategy == s]) for s in order],
        )
    console.print(table)
    per_strategy = {s: sum(r.seconds for r in runs if r.strategy == s) for s in order}
    console.print(
        "time: "
        + ", ".join(f"{s} {t:.0f} s" for s, t in per_strategy.items())
        + f"; total {elapsed:.0f} s"
    )
    settings_doc = {
        "data": str(data),
        "strategies": strategies,
        "budgets": budgets,
        "seeds": seeds,
        "classes": names,
        "label_noise": label_noise,
        "grid_step": grid_step,
        "input_size": size,
        "total_seconds": round(elapsed, 1),
    }
    if json_out is not None:
        write_json(json_out, runs, settings_doc)
        console.print(f"wrote {json_out}")
    if plot is not None:
        plot_curves(plot, runs, f"{data.name}: {', '.join(order)} ({count(len(seeds), 'seed')})")
        console.print(f"wrote {plot}")
