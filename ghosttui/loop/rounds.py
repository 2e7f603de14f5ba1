"""One round of the loop: train on the session's labels, checkpoint, predict the scan.

The CLI's ``train``, the TUI's background worker and ``bench`` all call
:func:`train_round`, so a benchmark measures exactly what a user gets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ghosttui.errors import ModelError
from ghosttui.metrics import changed_fraction, cohen_kappa, wilson_interval
from ghosttui.model.checkpoint import save_checkpoint
from ghosttui.model.device import resolve_device
from ghosttui.model.predict import predict_cache
from ghosttui.model.train import TrainConfig, TrainProgress, train
from ghosttui.session.session import Session


@dataclass
class RoundUpdate:
    """Progress of a round, for a progress bar or a status line."""

    stage: str  # "cache", "train" or "predict"
    done: int
    total: int
    message: str = ""


@dataclass
class RoundResult:
    round: int
    checkpoint: Path
    predictions: Path
    probabilities: np.ndarray
    metrics: dict[str, Any] = field(default_factory=dict)


def model_config(
    session: Session,
    *,
    epochs: int | None = None,
    device: str | None = None,
    seed: int | None = None,
) -> TrainConfig:
    spec = session.settings.model
    swap = []
    for a, b in spec.rotation_swap:
        swap.append((session.settings.class_index(a), session.settings.class_index(b)))
    return TrainConfig(
        arch=spec.arch,
        width=spec.width,
        epochs=spec.epochs if epochs is None else epochs,  # 0 is an error, not 'default'
        patience=spec.patience,
        keep=spec.keep,
        seed=spec.seed if seed is None else seed,
        device=device or spec.device,
        rotation_swap=swap,
    )


def missing_classes(session: Session) -> list[str]:
    """Classes without a single training label (training needs every class)."""
    _, labels, _ = session.store.label_arrays()
    counts = np.bincount(labels, minlength=len(session.classes))
    return [name for name, n in zip(session.classes, counts, strict=True) if n == 0]


def check_trainable(session: Session) -> None:
    positions, _, _ = session.store.label_arrays()
    if len(positions) == 0:
        raise ModelError(f"session '{session.name}' has no training labels yet")
    missing = missing_classes(session)
    if missing:
        raise ModelError(
            f"class{'es' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"{'have' if len(missing) > 1 else 'has'} no labels; label at least one pattern of each class"
        )


def holdout_metrics(session: Session, predicted: np.ndarray) -> dict[str, Any]:
    """Accuracy on the holdout labels (never trained on), with a 95% Wilson interval."""
    positions, labels, sources = session.store.label_arrays(include_holdout=True)
    mask = np.array([s == "holdout" for s in sources], bool)
    if not mask.any():
        return {}
    hits = int(np.sum(predicted[positions[mask, 0], positions[mask, 1]] == labels[mask]))
    total = int(mask.sum())
    low, high = wilson_interval(hits, total)
    return {"holdout_accuracy": hits / total, "holdout_n": total, "holdout_ci": [low, high]}


def train_round(
    session: Session,
    *,
    epochs: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    warm_start: bool | None = None,
    progress: Callable[[RoundUpdate], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> RoundResult:
    """Train on every non-holdout label, save checkpoint and whole-scan probabilities.

    ``warm_start`` (default: the session's ``[model] warm_start``) starts from the
    previous round's weights with half the epochs; from scratch otherwise, which
    measured better with early stopping (docs/benchmarks.md).

    Raises :class:`~ghosttui.model.train.TrainingCancelled` when ``should_stop``
    fires; then nothing is written and the round does not advance.
    """
    session._require_writable()
    check_trainable(session)
    # settings and the previous model first: a bad one fails before minutes of cache building
    config = model_config(session, epochs=epochs, device=device, seed=seed)
    resolve_device(config.device)  # a missing GPU is reported now, not after the cache
    if warm_start is None:
        warm_start = session.settings.model.warm_start
    previous = session.latest_checkpoint() if warm_start else None
    report = progress or (lambda update: None)
    cache = session.cache(
        progress=lambda d, t: report(RoundUpdate("cache", d, t, "building cache"))
    )
    snapshot = session.store.labels()  # one snapshot: the app may label while this trains
    positions, labels, _ = session.store.label_arrays(labels=snapshot)
    digest = session.store.training_digest(snapshot)
    patterns = cache.gather(positions)
    init_state = None
    if (
        previous is not None
        and previous.meta.get("arch") == config.arch
        and previous.meta.get("input_size") == cache.size
    ):
        init_state = previous.state_dict
        if epochs is None:
            config.epochs = max(20, config.epochs // 2)

    def on_epoch(p: TrainProgress) -> None:
        detail = f"epoch {p.epoch}/{p.epochs} loss {p.train_loss:.3f}"
        if p.val_accuracy is not None:
            detail += f" val acc {p.val_accuracy:.1%}"
        report(RoundUpdate("train", p.epoch, p.epochs, detail))

    round_number = session.store.round
    started = time.perf_counter()
    result = train(
        patterns,
        labels,
        len(session.classes),
        config,
        init_state=init_state,
        progress=on_epoch,
        should_stop=should_stop,
    )
    seconds_train = time.perf_counter() - started
    model = _build(result)
    started = time.perf_counter()
    probabilities = predict_cache(
        model,
        cache,
        resolve_device(config.device),
        progress=lambda d, t: report(RoundUpdate("predict", d, t, "predicting the scan")),
        should_stop=should_stop,
    )
    if probabilities is None:
        from ghosttui.model.train import TrainingCancelled

        raise TrainingCancelled()
    seconds_predict = time.perf_counter() - started
    predicted = probabilities.argmax(-1)

    metrics: dict[str, Any] = result.metrics()
    metrics.update(
        seconds_train=round(seconds_train, 3),
        seconds_predict=round(seconds_predict, 3),
        patterns_per_second=round(cache.n_patterns / max(seconds_predict, 1e-9), 1),
        warm_start=init_state is not None,
        labels_digest=digest,
        labels=len(labels),
        label_counts={
            c: int(n)
            for c, n in zip(
                session.classes, np.bincount(labels, minlength=len(session.classes)), strict=True
            )
        },
    )
    metrics.update(holdout_metrics(session, predicted))
    earlier = session.load_predictions()
    if earlier is not None:
        before = earlier[0].argmax(-1)
        metrics["changed_fraction"] = changed_fraction(before, predicted)
        metrics["kappa_previous"] = cohen_kappa(before, predicted, len(session.classes))

    meta = {
        "arch": result.arch,
        "arch_config": result.arch_config,
        "input_size": result.input_size,
        "classes": session.classes,
        "preprocess": session.settings.preprocess.to_dict(),
        "round": round_number,
        "session_id": session.settings.id,
        "session_name": session.name,
        "data_fingerprint": session.settings.data.fingerprint,
        "metrics": metrics,
        "train_config": config.to_dict(),
    }
    checkpoint = save_checkpoint(session.checkpoint_path(round_number), result.state_dict, meta)
    predictions = session.save_predictions(round_number, probabilities)
    session.store.finish_round(round_number, str(checkpoint.relative_to(session.dir)), metrics)
    return RoundResult(round_number, checkpoint, predictions, probabilities, metrics)


def _build(result: Any) -> Any:
    from ghosttui.model.network import build_network

    model = build_network(result.arch, result.n_classes, result.input_size, **result.arch_config)
    model.load_state_dict(result.state_dict)
    return model.eval()
