"""``ghosttui bench``: the whole labelling loop with a simulated labeller.

Each run is a real session in a scratch folder: the session's sampler queues
queries exactly as in ``ghosttui label``, a labeller answers them from the
truth map (optionally wrong at a given rate, like a tired human), and
:func:`ghosttui.loop.rounds.train_round` retrains whenever the schedule needs a
model, then once more at the end. Accuracy is measured against the truth on
the whole map and on the positions that were never labelled.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ghosttui.data.options import LoadOptions
from ghosttui.errors import GhostError
from ghosttui.files import atomic_output, write_text_atomic
from ghosttui.loop.rounds import train_round
from ghosttui.patterns.settings import PreprocessSettings
from ghosttui.sampling.sampler import SessionSampler
from ghosttui.sampling.schedule import check_strategy, choose_grid_step
from ghosttui.session.session import Session
from ghosttui.session.settings import ModelSpec, SamplingSpec, make_classes


@dataclass
class BenchRun:
    strategy: str
    budget: int
    seed: int
    accuracy: float
    accuracy_unlabelled: float
    seconds: float
    labels: int
    rounds: int
    train_seconds: float
    curve: list[tuple[int, float]] = field(default_factory=list)


def load_truth(
    data: Path, truth: Path | None, scan_shape: tuple[int, int], n_classes: int
) -> np.ndarray:
    """The truth map (Rx, Ry) of class indices: from ``--truth`` .npy or the file's ``/truth``."""
    if truth is not None:
        try:
            array = np.load(truth, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise GhostError(f"cannot read truth map ({exc})", truth) from exc
        where = truth
    else:
        import h5py

        try:
            with h5py.File(data, "r") as f:
                array = f["truth"][()]
        except (OSError, KeyError) as exc:
            raise GhostError("holds no /truth map; give one with --truth TRUTH.npy", data) from exc
        where = data
    if array.shape != tuple(scan_shape):
        raise GhostError(f"truth map is {array.shape}, but the scan is {tuple(scan_shape)}", where)
    if array.dtype.kind not in "iu":
        raise GhostError(f"truth map must hold integer class indices (got {array.dtype})", where)
    if array.min() < 0 or array.max() >= n_classes:
        raise GhostError(
            f"truth map holds classes {int(array.min())}..{int(array.max())}, outside 0..{n_classes - 1}",
            where,
        )
    return array.astype(np.int64)


def run_once(
    data: Path,
    truth: np.ndarray,
    classes: list[str],
    strategy: str,
    budget: int,
    seed: int,
    *,
    workdir: Path,
    options: LoadOptions | None = None,
    preprocess: PreprocessSettings | None = None,
    label_noise: float = 0.0,
    grid_step: int = 0,
    round_size: int = 0,
    epochs: int | None = None,
) -> BenchRun:
    """One strategy x budget x seed: label until the budget is spent, train, score."""
    started = time.perf_counter()
    sampling = SamplingSpec(strategy=strategy, budget=budget, seed=seed, grid_step=grid_step)
    sampling.round_size = round_size
    name = f"bench-{strategy}-{budget}-{seed}"
    session = Session.create(
        name,
        data,
        options=options,
        classes=make_classes(classes),
        preprocess=preprocess,
        model=ModelSpec(seed=seed),
        sampling=sampling,
        directory=workdir / name,
    )
    noise_rng = np.random.default_rng([seed, 99])
    curve: list[tuple[int, float]] = []
    train_seconds = 0.0
    with session:
        sampler = SessionSampler(session)
        probabilities = None
        while True:
            plan = sampler.refill(probabilities)
            if plan.train_first:
                result = train_round(session, epochs=epochs)
                train_seconds += result.metrics["seconds_train"] + result.metrics["seconds_predict"]
                probabilities = result.probabilities
                curve.append((result.metrics["labels"], _accuracy(probabilities, truth)))
                continue
            pending = session.store.pending()
            if not pending:
                break
            for item in pending:
                answer = int(truth[item.rx, item.ry])
                if label_noise > 0 and noise_rng.random() < label_noise:
                    answer = int(noise_rng.choice([c for c in range(len(classes)) if c != answer]))
                session.store.label(
                    item.rx, item.ry, classes[answer], item.source, queue_item=item.id
                )
        if not sampler.model_is_current():
            result = train_round(session, epochs=epochs)
            train_seconds += result.metrics["seconds_train"] + result.metrics["seconds_predict"]
            probabilities = result.probabilities
            curve.append((result.metrics["labels"], _accuracy(probabilities, truth)))
        labelled = np.zeros(truth.shape, bool)
        for rx, ry in session.store.labels():
            labelled[rx, ry] = True
        predicted = probabilities.argmax(-1)
        rounds = len(session.trained_rounds())
        n_labels = len(session.store.labels())
    return BenchRun(
        strategy=strategy,
        budget=budget,
        seed=seed,
        accuracy=float(np.mean(predicted == truth)),
        accuracy_unlabelled=float(np.mean(predicted[~labelled] == truth[~labelled])),
        seconds=round(time.perf_counter() - started, 2),
        labels=n_labels,
        rounds=rounds,
        train_seconds=round(train_seconds, 2),
        curve=curve,
    )


def _accuracy(probabilities: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(probabilities.argmax(-1) == truth))


def check_bench_options(
    strategies: list[str],
    budgets: list[int],
    scan_shape: tuple[int, int],
    label_noise: float = 0.0,
    grid_step: int = 0,
) -> None:
    """Fail before any work (cache, training) on options no run could use."""
    for strategy in strategies:
        check_strategy(strategy)
    positions = int(scan_shape[0]) * int(scan_shape[1])
    for budget in budgets:
        if not 1 <= budget <= positions:
            raise GhostError(
                f"--budget {budget} must be between 1 and the scan's {positions} positions"
            )
    if not 0.0 <= label_noise < 1.0:
        raise GhostError(f"--label-noise must be in [0, 1) (got {label_noise})")
    if grid_step:
        for budget in budgets:  # say which step would fit
            choose_grid_step(SamplingSpec(budget=budget, grid_step=grid_step), tuple(scan_shape))


def run_bench(
    data: Path,
    truth: np.ndarray,
    classes: list[str],
    strategies: list[str],
    budgets: list[int],
    seeds: list[int],
    *,
    options: LoadOptions | None = None,
    preprocess: PreprocessSettings | None = None,
    label_noise: float = 0.0,
    grid_step: int = 0,
    epochs: int | None = None,
    on_run: Callable[[BenchRun], None] | None = None,
) -> list[BenchRun]:
    check_bench_options(strategies, budgets, truth.shape, label_noise, grid_step)
    runs = []
    with tempfile.TemporaryDirectory(prefix="ghosttui-bench-") as scratch:
        for budget in budgets:
            for strategy in strategies:
                for seed in seeds:
                    run = run_once(
                        data,
                        truth,
                        classes,
                        strategy,
                        budget,
                        seed,
                        workdir=Path(scratch),
                        options=options,
                        preprocess=preprocess,
                        label_noise=label_noise,
                        grid_step=grid_step,
                        epochs=epochs,
                    )
                    runs.append(run)
                    if on_run is not None:
                        on_run(run)
    return runs


def summary_table(
    runs: list[BenchRun],
) -> tuple[list[str], list[int], dict[tuple[int, str], tuple[float, float, int]]]:
    """(strategies, budgets, {(budget, strategy): (mean, std, n)}) of whole-map accuracy."""
    strategies = list(dict.fromkeys(r.strategy for r in runs))
    budgets = sorted({r.budget for r in runs})
    cells = {}
    for budget in budgets:
        for strategy in strategies:
            values = [r.accuracy for r in runs if r.budget == budget and r.strategy == strategy]
            if values:
                cells[(budget, strategy)] = (
                    float(np.mean(values)),
                    float(np.std(values)),
                    len(values),
                )
    return strategies, budgets, cells


def write_json(path: Path, runs: list[BenchRun], settings: dict[str, Any]) -> None:
    doc = {
        "runs": [asdict(r) for r in runs],
        "settings": settings,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
    }
    write_text_atomic(path, json.dumps(doc, indent=2))


def plot_curves(path: Path, runs: list[BenchRun], title: str) -> None:
    """Accuracy against labels: mean and spread per strategy, and every hybrid round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategies, budgets, cells = summary_table(runs)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    colours = {
        "random": "#888888",
        "grid-boundary": "#1f77b4",
        "hybrid": "#d62728",
        "uncertainty": "#2ca02c",
    }
    for strategy in strategies:
        colour = colours.get(strategy)
        for run in runs:
            if run.strategy == strategy and len(run.curve) > 1:
                xs, ys = zip(*run.curve, strict=True)
                ax.plot(xs, np.array(ys) * 100, color=colour, alpha=0.25, lw=0.8)
        xs = [b for b in budgets if (b, strategy) in cells]
        means = [cells[(b, strategy)][0] * 100 for b in xs]
        stds = [cells[(b, strategy)][1] * 100 for b in xs]
        ax.errorbar(
            xs, means, yerr=stds, marker="o", capsize=3, color=colour, label=strategy, lw=1.8
        )
    ax.set_xlabel("labels")
    ax.set_ylabel("whole-map accuracy vs truth (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_output(path) as tmp:  # keeps the suffix: matplotlib picks the format from it
        fig.savefig(tmp)
    plt.close(fig)
