"""Where the model runs: CUDA when present, else CPU; overridable."""

from __future__ import annotations

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
