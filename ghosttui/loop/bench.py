"""``ghosttui bench``: the labelling loop with a simulated labeller, scored against the truth.

Each run is a real session in a scratch folder, driven by the very controller
the terminal app drives (:class:`~ghosttui.loop.controller.LabellingController`):
the schedule plans rounds, a :class:`SimulatedLabeller` answers each query from
the truth map (optionally wrong at a given rate, like a tired human), and every
training job the controller asks for is run inline with
:func:`~ghosttui.loop.rounds.train_model`, exactly as the app runs it in a
worker thread. Accuracy is measured against the truth: on the whole map, on the
positions never labelled, inside domains and at walls.
"""

from __future__ import annotations

import json
import math
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ghosttui.data.options import LoadOptions
from ghosttui.errors import GhostError
from ghosttui.files import atomic_output, write_text_atomic
from ghosttui.loop.controller import Current, LabellingController
from ghosttui.loop.promotion import absent_classes
from ghosttui.loop.report import mean_text
from ghosttui.loop.rounds import missing_classes, train_model
from ghosttui.patterns.settings import PreprocessSettings
from ghosttui.sampling.schedule import check_strategy, choose_grid_step
from ghosttui.session.session import Session
from ghosttui.session.settings import ModelSpec, SamplingSpec, make_classes


@dataclass
class BenchRun:
    strategy: str
    budget: int
    seed: int
    learner: str
    accuracy: float
    accuracy_unlabelled: float
    accuracy_domains: float
    accuracy_walls: float
    seconds: float
    labels: int
    holdout: int
    rounds: int
    models: int
    train_seconds: float
    holdout_estimate: float | None = None
    train_average: int = 1  # [model] train_average (the linear learner's neighbourhood)
    mean_share: float = 1.0  # [model] mean_share (the means' fit in the linear blend)
    input_blur: float = 0.0  # [model] input_blur (the linear learner's input blur, pixels)
    input_symmetry: str = "auto"  # [model] input_symmetry (the setting, not what auto took)
    # the final model's inputs ("none" / "mirror"; no model: None)
    symmetry_taken: str | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)
    no_model: str | None = None  # why the budget ran out before any model (accuracy NaN)
    absent_classes: list[str] = field(default_factory=list)  # no label of these in the model


class SimulatedLabeller:
    """Answers queries from a truth map, wrong with probability ``noise`` (seeded)."""

    def __init__(self, truth: np.ndarray, classes: list[str], noise: float = 0.0, seed: int = 0):
        self.truth, self.classes, self.noise = truth, classes, noise
        self.rng = np.random.default_rng([seed, 99])

    def answer(self, current: Current) -> str:
        index = int(self.truth[current.rx, current.ry])
        if self.noise > 0 and self.rng.random() < self.noise:
            index = int(self.rng.choice([c for c in range(len(self.classes)) if c != index]))
        return self.classes[index]


def wall_mask(truth: np.ndarray, radius: int = 1) -> np.ndarray:
    """Positions within ``radius`` (Chebyshev) of a position of another class."""
    from scipy import ndimage

    size = 2 * radius + 1
    high = ndimage.maximum_filter(truth, size=size, mode="nearest")
    low = ndimage.minimum_filter(truth, size=size, mode="nearest")
    return high != low


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
    learner: str | None = None,
    train_average: int | None = None,
    mean_share: float | None = None,
    input_blur: float | None = None,
    input_symmetry: str | None = None,
    label_noise: float = 0.0,
    grid_step: int = 0,
    round_size: int = 0,
    epochs: int | None = None,
) -> BenchRun:
    """One strategy x budget x seed: label until the budget is spent, training every round."""
    started = time.perf_counter()
    sampling = SamplingSpec(strategy=strategy, budget=budget, seed=seed, grid_step=grid_step)
    sampling.round_size = round_size
    chosen = {
        "learner": learner,
        "train_average": train_average,
        "mean_share": mean_share,
        "input_blur": input_blur,
        "input_symmetry": input_symmetry,
    }
    model = ModelSpec(seed=seed, **{k: v for k, v in chosen.items() if v is not None})
    name = f"bench-{strategy}-{budget}-{seed}"
    session = Session.create(
        name,
        data,
        options=options,
        classes=make_classes(classes),
        preprocess=preprocess,
        model=model,
        sampling=sampling,
        directory=workdir / name,
    )
    labeller = SimulatedLabeller(truth, classes, label_noise, seed)
    curve: list[tuple[int, float]] = []
    train_seconds = 0.0
    with session:
        loop = LabellingController(session)
        drive(
            loop,
            labeller,
            epochs=epochs,
            on_model=lambda t: curve.append(
                (t.metrics["labels"], _accuracy(t.probabilities, truth))
            ),
        )
        train_seconds = sum(
            m.metrics.get("seconds_train", 0) + m.metrics.get("seconds_predict", 0)
            for m in session.store.models()
        )
        labelled = np.zeros(truth.shape, bool)
        for rx, ry in session.store.labels():
            labelled[rx, ry] = True
        no_model = None
        if loop.probabilities is None:  # e.g. a rare class never met within the budget
            missing = missing_classes(session, loop.labels)
            no_model = (
                f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no label"
                if missing
                else loop.message or "no model was trained"
            )
        walls = wall_mask(truth)
        estimate = loop.estimate().holdout.accuracy
        n_rounds = sum(1 for p in session.store.round_plans() if p.ended)
        n_models = len(session.store.models())
        n_labels = len(loop.labels)
        n_holdout = sum(1 for lab in loop.labels.values() if lab.source == "holdout")
        learner_name = session.settings.model.learner
        train_average = session.settings.model.train_average
        mean_share = session.settings.model.mean_share
        input_blur = session.settings.model.input_blur
        input_symmetry = session.settings.model.input_symmetry
        current = session.store.current_model()
        absent = absent_classes(current.metrics) if current is not None else []
        symmetry_taken = current.metrics.get("input_symmetry") if current is not None else None
        if current is not None and current.metrics.get("learner") not in (None, learner_name):
            learner_name = f"{learner_name}: {current.metrics['learner']}"  # what auto chose
    nan = float("nan")
    if no_model is None:
        hit = loop.probabilities.argmax(-1) == truth
        scores = (
            float(hit.mean()),
            float(hit[~labelled].mean()),
            float(hit[~walls].mean()),
            float(hit[walls].mean()) if walls.any() else nan,
        )
    else:
        scores = (nan, nan, nan, nan)
    return BenchRun(
        strategy=strategy,
        budget=budget,
        seed=seed,
        learner=learner_name,
        accuracy=scores[0],
        accuracy_unlabelled=scores[1],
        accuracy_domains=scores[2],
        accuracy_walls=scores[3],
        seconds=round(time.perf_counter() - started, 2),
        labels=n_labels - n_holdout,
        holdout=n_holdout,
        rounds=n_rounds,
        models=n_models,
        train_seconds=round(train_seconds, 2),
        holdout_estimate=estimate,
        train_average=train_average,
        mean_share=mean_share,
        input_blur=input_blur,
        input_symmetry=input_symmetry,
        symmetry_taken=symmetry_taken,
        curve=curve,
        no_model=no_model,
        absent_classes=absent,
    )


def drive(
    loop: LabellingController,
    labeller: SimulatedLabeller,
    *,
    epochs: int | None = None,
    on_model: Callable[[Any], None] | None = None,
) -> None:
    """Answer every query and run every training job the controller asks for, until done."""
    session = loop.session
    while True:
        job = loop.next_training()
        if job is not None:
            if epochs is not None:
                job = replace(job, epochs=epochs)
            loop.training_started(job)
            trained = train_model(session, job)
            loop.training_finished(trained)
            if on_model is not None:
                on_model(trained)
            continue
        current = loop.current()
        if current is None:
            if loop.done:
                return
            raise GhostError(f"the loop is stuck: {loop.message or 'no query and no job'}")
        loop.label(labeller.answer(current))


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
    learner: str | None = None,
    train_average: int | None = None,
    mean_share: float | None = None,
    input_blur: float | None = None,
    input_symmetry: str | None = None,
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
                        learner=learner,
                        train_average=train_average,
                        mean_share=mean_share,
                        input_blur=input_blur,
                        input_symmetry=input_symmetry,
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
    """(strategies, budgets, {(budget, strategy): (mean, std, n)}) of whole-map accuracy,
    over the runs that trained a model (n of them; runs without one: :func:`cell_text`)."""
    strategies = list(dict.fromkeys(r.strategy for r in runs))
    budgets = sorted({r.budget for r in runs})
    cells = {}
    for budget in budgets:
        for strategy in strategies:
            values = [
                r.accuracy
                for r in runs
                if r.budget == budget and r.strategy == strategy and r.no_model is None
            ]
            if values:
                cells[(budget, strategy)] = (
                    float(np.mean(values)),
                    float(np.std(values)),
                    len(values),
                )
    return strategies, budgets, cells


def cell_text(runs: list[BenchRun]) -> str:
    """``"98.7% ± 0.2% (3 seeds)"`` over the runs that trained a model, and how many did not:
    ``"94.5% (1 seed); 2 of 3 runs: no model"``."""
    trained = [r.accuracy for r in runs if r.no_model is None]
    failed = len(runs) - len(trained)
    text = mean_text(trained) if trained else "-"
    return f"{text}; {failed} of {len(runs)} runs: no model" if failed else text


def write_json(path: Path, runs: list[BenchRun], settings: dict[str, Any]) -> None:
    def plain(value: Any) -> Any:  # NaN (no model, no walls) as null: strict JSON
        return None if isinstance(value, float) and math.isnan(value) else value

    doc = {
        "runs": [{k: plain(v) for k, v in asdict(r).items()} for r in runs],
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
