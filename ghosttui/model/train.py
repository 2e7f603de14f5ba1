"""Training a classifier on a handful of labelled patterns.

* AdamW with a cosine schedule; class-balanced cross-entropy with light label
  smoothing.
* Label-preserving augmentation: mirror flips and small shifts keep every
  class; a 90-degree rotation swaps horizontal and vertical, so it is used only
  with the labels swapped (``rotation_swap``), and only when the session says
  which classes swap.
* A validation split drawn per class *before* any augmentation, by position:
  no pattern (nor a flipped copy of it) is ever both trained and validated on.
  Early stopping restores the epoch of lowest validation loss.
* Warm start from a previous round's weights; deterministic per seed; CUDA with
  mixed precision when present, CPU otherwise.
* Progress is reported through a callback; ``should_stop`` is checked between
  steps, and cancelling raises :class:`TrainingCancelled` with nothing saved.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ghosttui.errors import ModelError
from ghosttui.model.device import autocast_dtype, resolve_device
from ghosttui.model.network import ARCHITECTURES, build_network
from ghosttui.numbers import choice, real, whole


class TrainingCancelled(Exception):
    """Raised when ``should_stop`` asked training to end; nothing is saved."""


@dataclass
class TrainConfig:
    arch: str = "ghostnet"
    width: int = 16
    epochs: int = 50
    min_epochs: int = 12
    patience: int = 20
    batch_size: int = 32
    epoch_samples: int = 128  # an epoch shows at least this many samples (small sets repeat)
    lr: float = 1e-3
    weight_decay: float = 1e-2
    val_fraction: float = 0.2
    label_smoothing: float = 0.05
    augment: bool = True
    max_shift: int = 2
    rotation_swap: list[tuple[int, int]] = field(default_factory=list)  # class pairs; opt-in
    seed: int = 0
    device: str = "auto"
    # "last": the model at the end of the one-cycle schedule (validation only measures it);
    # "best": lowest validation loss after min_epochs, stopping early after patience epochs.
    # "last" is the default: with 10-50 labels the validation set is 2-10 patterns and picking
    # on it was measured to be a gamble (docs/benchmarks.md, "training: which model to keep").
    keep: str = "last"

    def __post_init__(self) -> None:
        choice(self.arch, "architecture", ARCHITECTURES)
        whole(self.width, "network width", 1, 512)
        whole(self.epochs, "epochs", 1, 100_000)
        whole(self.patience, "patience", 1)
        whole(self.batch_size, "batch size", 1)
        whole(self.seed, "seed", 0, 2**32 - 1)
        real(self.lr, "learning rate", 0.0)
        choice(self.keep, "keep", ("best", "last"))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rotation_swap"] = [list(p) for p in self.rotation_swap]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "rotation_swap" in data:
            data["rotation_swap"] = [tuple(p) for p in data["rotation_swap"]]
        return cls(**data)


@dataclass
class TrainProgress:
    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None
    val_accuracy: float | None
    best_epoch: int


@dataclass
class TrainResult:
    state_dict: dict[str, torch.Tensor]
    arch: str
    arch_config: dict[str, Any]
    input_size: int
    n_classes: int
    epochs_run: int
    best_epoch: int
    val_loss: float | None
    val_accuracy: float | None
    n_train: int
    n_val: int
    seconds: float
    device: str
    history: list[dict[str, float | None]]
    val_index: np.ndarray

    def metrics(self) -> dict[str, Any]:
        return {
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "seconds": round(self.seconds, 3),
            "device": self.device,
        }


def split_validation(
    labels: np.ndarray, fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): per class, ``fraction`` of its labels (at least one
    when the class has three or more) go to validation."""
    train, val = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = round(len(members) * fraction)
        if len(members) >= 3:
            n_val = max(1, n_val)
        n_val = min(n_val, len(members) - 1)
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(val, dtype=int))


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return torch.tensor(np.clip(weights, 0.0, 5.0), dtype=torch.float32)


def augment_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
    max_shift: int,
    swap: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random mirror flips, shifts and (with label swap) 90-degree rotations."""
    n = x.shape[0]
    rand = torch.rand((n, 3), generator=generator)
    flip_rows = rand[:, 0] < 0.5
    flip_cols = rand[:, 1] < 0.5
    x = torch.where(flip_rows[:, None, None, None], x.flip(-2), x)
    x = torch.where(flip_cols[:, None, None, None], x.flip(-1), x)
    if swap is not None:
        rotate = rand[:, 2] < 0.5
        x = torch.where(rotate[:, None, None, None], x.rot90(1, (-2, -1)), x)
        y = torch.where(rotate, swap[y], y)
    if max_shift > 0:
        shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).tolist()
        x = torch.stack(
            [torch.roll(x[i], shifts=tuple(shifts[i]), dims=(-2, -1)) for i in range(n)]
        )
    return x, y


def _swap_table(pairs: list[tuple[int, int]], n_classes: int) -> torch.Tensor | None:
    if not pairs:
        return None
    table = torch.arange(n_classes)
    for a, b in pairs:
        table[a], table[b] = b, a
    return table


def _evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    weights: torch.Tensor,
    device: torch.device,
) -> tuple[float, float]:
    model.eval()
    with torch.inference_mode():
        logits = model(x.to(device)).float()
        loss = F.cross_entropy(logits, y.to(device), weight=weights.to(device)).item()
        accuracy = (logits.argmax(1).cpu() == y).float().mean().item()
    return loss, accuracy


def train(
    patterns: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    config: TrainConfig,
    *,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train on ``patterns`` (n, S, S) with integer ``labels`` (n,) in [0, n_classes)."""
    started = time.perf_counter()
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ModelError("no labels to train on")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ModelError("labels outside the class list")
    device = resolve_device(config.device)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)

    use_val = config.val_fraction > 0 and len(labels) >= 10
    if use_val:
        train_idx, val_idx = split_validation(labels, config.val_fraction, rng)
    else:
        train_idx, val_idx = np.arange(len(labels)), np.zeros(0, int)

    size = patterns.shape[-1]
    arch_config = {"width": config.width} if config.arch == "ghostnet" else {}
    model = build_network(config.arch, n_classes, size, **arch_config)
    model.to(device)

    x_all = torch.from_numpy(np.ascontiguousarray(patterns, dtype=np.float32)).unsqueeze(1)
    y_all = torch.from_numpy(labels)
    x_train, y_train = x_all[train_idx], y_all[train_idx]
    x_val, y_val = x_all[val_idx], y_all[val_idx]
    weights = class_weights(labels[train_idx], n_classes)
    swap = _swap_table(config.rotation_swap, n_classes) if config.augment else None

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    per_epoch = max(len(train_idx), config.epoch_samples)
    steps_per_epoch = max(1, math.ceil(per_epoch / config.batch_size))
    total_steps = config.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=0.15, anneal_strategy="cos"
    )
    amp_dtype = autocast_dtype(device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    best_state = copy.deepcopy(model.state_dict())
    best = (math.inf, -1.0)
    best_epoch = 0
    history: list[dict[str, float | None]] = []
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        repeats = math.ceil(per_epoch / len(train_idx))
        order = torch.cat(
            [torch.randperm(len(train_idx), generator=generator) for _ in range(repeats)]
        )
        order = order[: steps_per_epoch * config.batch_size]
        running, seen = 0.0, 0
        for start in range(0, len(order), config.batch_size):
            if should_stop is not None and should_stop():
                raise TrainingCancelled()
            batch = order[start : start + config.batch_size]
            if len(batch) < 2 and len(order) >= 2:  # batch norm needs two samples
                batch = order[-2:]
            xb, yb = x_train[batch], y_train[batch]
            if config.augment:
                xb, yb = augment_batch(xb, yb, generator, config.max_shift, swap)
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                logits = model(xb)
                loss = F.cross_entropy(
                    logits.float(),
                    yb,
                    weight=weights.to(device),
                    label_smoothing=config.label_smoothing,
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            running += loss.item() * len(batch)
            seen += len(batch)
        train_loss = running / max(1, seen)
        val_loss = val_acc = None
        if use_val:
            val_loss, val_acc = _evaluate(model, x_val, y_val, weights, device)
            eligible = epoch >= min(config.min_epochs, config.epochs)
            if config.keep == "last" or (eligible and (val_loss, -val_acc) < (best[0], -best[1])):
                best = (val_loss, val_acc)
                best_epoch = epoch
                best_state = copy.deepcopy(model.state_dict())
        else:
            best_epoch = epoch
            best_state = copy.deepcopy(model.state_dict())
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_loss": val_loss,
                "val_accuracy": val_acc,
            }
        )
        if progress is not None:
            progress(TrainProgress(epoch, config.epochs, train_loss, val_loss, val_acc, best_epoch))
        if use_val and epoch >= config.min_epochs and epoch - best_epoch >= config.patience:
            break

    state = {k: v.detach().cpu().clone() for k, v in best_state.items()}
    return TrainResult(
        state_dict=state,
        arch=config.arch,
        arch_config=arch_config,
        input_size=size,
        n_classes=n_classes,
        epochs_run=epoch,
        best_epoch=best_epoch,
        val_loss=best[0] if use_val else None,
        val_accuracy=best[1] if use_val else None,
        n_train=len(train_idx),
        n_val=len(val_idx),
        seconds=time.perf_counter() - started,
        device=str(device),
        history=history,
        val_index=val_idx,
    )
