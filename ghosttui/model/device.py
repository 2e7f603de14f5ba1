"""Where the model runs: CUDA when present, else CPU; overridable."""

from __future__ import annotations

import os
import time

import torch

from ghosttui.errors import ModelError


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` picks ``cuda`` when available; ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` are explicit."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise ModelError(f"unknown --device {spec!r} (use auto, cpu, cuda, cuda:N or mps)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(
                "--device cuda asked for, but torch sees no CUDA GPU (try --device cpu)"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ModelError("--device mps asked for, but MPS is not available")
    return device


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA (bfloat16 where supported, else float16); none on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def busy_cores(sample: float = 0.1) -> float:
    """How many cores other processes kept busy over ``sample`` seconds (0 when unknown)."""

    def read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                fields = [int(v) for v in handle.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    own_before = time.process_time()
    first = read()
    time.sleep(sample)
    second = read()
    own = time.process_time() - own_before
    if first is None or second is None or second[0] == first[0]:
        return 0.0
    total, idle = second[0] - first[0], second[1] - first[1]
    cores = os.cpu_count() or 1
    busy = (total - idle) / total * cores
    return max(0.0, busy - own / sample)


def cpu_threads(reserve: int = 0) -> int:
    """Torch threads for training and prediction: the usable cores that are not busy.

    Torch's default (every core) slows down many times over when another process
    keeps a core busy, as its threads wait for each other; so the count is the
    cores this process may use, less those other processes keep busy right now,
    less ``reserve`` (the app keeps one for the interface), and at least one.
    """
    free = usable_cores() - round(busy_cores()) - reserve
    return max(1, min(usable_cores(), free))
