"""Training one model: on the labels as they stood at one event, then predicting the whole scan.

A :class:`TrainingJob` names a snapshot of the labels (the event log up to
``up_to_event``, usually the event that ended a round). :func:`train_model`
trains on every non-holdout label of that snapshot (no validation split: the
random holdout and the learner's cross-validation estimate the accuracy),
predicts every pattern and writes the checkpoint and the prediction file. It
does not decide whether the model is used: the controller does
(:mod:`ghosttui.loop.promotion`).

The terminal app runs jobs in a worker thread, ``ghosttui train`` and
``ghosttui bench`` run them inline: the same function either way.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ghosttui.errors import ModelError
from ghosttui.session.session import Session
from ghosttui.session.store import Label


@dataclass(frozen=True)
class TrainingJob:
    """What to train: the labels as of event ``up_to_event``, recorded as a model of ``round``."""

    round: int
    up_to_event: int
    reason: str
    epochs: int | None = None
    device: str | None = None
    seed: int | None = None


@dataclass
class RoundUpdate:
    """Progress of a job, for a progress bar or a status line."""

    stage: str  # "cache", "train" or "predict"
    done: int
    total: int
    message: str = ""


@dataclass
class TrainedModel:
    job: TrainingJob
    checkpoint: Path
    predictions: Path
    probabilities: np.ndarray
    labels_digest: str
    metrics: dict[str, Any] = field(default_factory=dict)


class TrainingCancelled(Exception):
    """The job was asked to stop; nothing was recorded."""


# labels drawn without regard to any model: what a choice between inputs is scored on
REPRESENTATIVE_SOURCES = ("grid", "random")


def training_labels(labels: dict[tuple[int, int], Label]) -> dict[tuple[int, int], Label]:
    return {pos: lab for pos, lab in labels.items() if lab.source != "holdout"}


def holdout_positions(session: Session, labels: dict[tuple[int, int], Label]) -> np.ndarray:
    """(k, 2) holdout positions, labelled in ``labels`` or still queued: no training input
    may contain their patterns."""
    held = {pos for pos, lab in labels.items() if lab.source == "holdout"}
    held |= {(q.rx, q.ry) for q in session.store.pending() if q.source == "holdout"}
    return np.array(sorted(held), dtype=np.int64).reshape(-1, 2)


def missing_classes(
    session: Session, labels: dict[tuple[int, int], Label] | None = None
) -> list[str]:
    """Classes without a single training label (a model trained now has never seen them)."""
    labels = session.store.labels() if labels is None else labels
    present = {lab.cls for lab in training_labels(labels).values()}
    return [name for name in session.classes if name not in present]


def trainable(session: Session, labels: dict[tuple[int, int], Label]) -> bool:
    """Whether a model can be trained on ``labels``: training labels of two classes or more."""
    return len(session.classes) - len(missing_classes(session, labels)) >= 2


def check_trainable(session: Session, labels: dict[tuple[int, int], Label]) -> None:
    """Refuse training without labels of at least two classes (one class is not a classifier).

    A class without labels does not stop training: the model is trained on the classes
    that have labels, and says which it lacks (``absent_classes`` in its metrics)."""
    training = training_labels(labels)
    if not training:
        raise ModelError(f"session '{session.name}' has no training labels yet")
    if not trainable(session, labels):
        only = next(iter(training.values())).cls
        missing = [c for c in session.classes if c != only]
        raise ModelError(
            f"only {only} has labels; a model needs labels of at least two classes "
            f"(label a pattern of {' or '.join(missing)})"
        )


def train_model(
    session: Session,
    job: TrainingJob,
    *,
    progress: Callable[[RoundUpdate], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    threads: int | None = None,
) -> TrainedModel:
    """Train on the job's snapshot, predict the scan, write checkpoint and predictions.

    Raises :class:`TrainingCancelled` when ``should_stop`` fires (nothing is written).
    """
    from ghosttui.model.checkpoint import save_checkpoint
    from ghosttui.model.device import cpu_threads, resolve_device
    from ghosttui.model.learners import fit_learner
    from ghosttui.model.predict import predict_cache

    session._require_writable()
    snapshot = session.store.labels_at(job.up_to_event)
    check_trainable(session, snapshot)
    spec = session.settings.model
    device = resolve_device(job.device or spec.device)  # a missing GPU fails before the cache
    report = progress or (lambda update: None)
    stop = should_stop or (lambda: False)
    cache = session.cache(
        progress=lambda d, t: report(RoundUpdate("cache", d, t, "building cache"))
    )
    positions, labels, sources = session.store.label_arrays(labels=snapshot)
    representative = np.isin(sources, REPRESENTATIVE_SOURCES)
    digest = session.store.training_digest(snapshot)

    import torch
    from threadpoolctl import threadpool_limits

    n_threads = threads or cpu_threads()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    # numpy's, scipy's and scikit-learn's BLAS / OpenMP pools too: left at one thread per
    # core, they spin against a busy neighbour process and a linear round takes 2x longer
    blas = threadpool_limits(limits=n_threads)
    try:
        started = time.perf_counter()
        fitted = fit_learner(
            spec,
            session.classes,
            cache.gather(positions),
            labels,
            cache=cache,
            positions=positions,
            hidden=holdout_positions(session, snapshot),
            representative=representative,
            device=device,
            seed=spec.seed if job.seed is None else job.seed,
            epochs=job.epochs,
            progress=lambda done, total, text: report(RoundUpdate("train", done, total, text)),
            should_stop=stop,
        )
        seconds_train = time.perf_counter() - started
        started = time.perf_counter()
        probabilities = predict_cache(
            fitted.network,
            cache,
            device,
            progress=lambda d, t: report(RoundUpdate("predict", d, t, "predicting the scan")),
            should_stop=stop,
        )
        seconds_predict = time.perf_counter() - started
    finally:
        torch.set_num_threads(previous_threads)
        blas.restore_original_limits()
    if probabilities is None or stop():
        raise TrainingCancelled()

    counts = np.bincount(labels, minlength=len(session.classes))
    metrics: dict[str, Any] = dict(fitted.metrics)
    metrics.update(
        seconds_train=round(seconds_train, 3),
        seconds_predict=round(seconds_predict, 3),
        patterns_per_second=round(cache.n_patterns / max(seconds_predict, 1e-9), 1),
        threads=n_threads,
        labels=len(labels),
        label_counts={c: int(n) for c, n in zip(session.classes, counts, strict=True)},
        absent_classes=[c for c, n in zip(session.classes, counts, strict=True) if n == 0],
    )
    stem = f"r{job.round:04d}-e{job.up_to_event:06d}-{secrets.token_hex(3)}"
    meta = {
        "arch": fitted.arch,
        "arch_config": fitted.arch_config,
        "input_size": cache.size,
        "classes": session.classes,
        "preprocess": session.settings.preprocess.to_dict(),
        "round": job.round,
        "up_to_event": job.up_to_event,
        "labels_digest": digest,
        "session_id": session.settings.id,
        "session_name": session.name,
        "data_fingerprint": session.settings.data.fingerprint,
        "metrics": metrics,
        "learner": fitted.learner,
    }
    checkpoint = save_checkpoint(
        session.dir / "checkpoints" / f"{stem}.pt", fitted.network.state_dict(), meta
    )
    predictions = session.save_predictions(stem, job.round, probabilities)
    return TrainedModel(job, checkpoint, predictions, probabilities, digest, metrics)
