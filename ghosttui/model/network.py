"""Networks that classify one-channel diffraction patterns.

``GhostNet`` is ghosttui's model: a small fully convolutional network with
batch normalisation and global average + max pooling. Convolutions find the
local signature of a ghost disk between two Bragg disks, wherever the pattern
sits on the detector (descan drift moves it); the global pooling makes the
decision translation-invariant and keeps the parameter count small (~0.2 M
at width 16), which is what a few dozen labels can support.

``PaperCNN`` is the paper's three-layer network (ghost-hunter's
ThreeLayerCnn): three 3x3 convolutions with max pooling and no normalisation,
then a dense layer that holds 99.7% of its 8.4 M parameters at 256x256 input.
It is here as the baseline the benchmarks compare against.

``LinearOnPixels`` is a linear classifier over standardised pixels: the shape
in which the logistic-regression baseline (:mod:`ghosttui.model.learners`) is
stored and applied.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

ARCHITECTURES = ("ghostnet", "paper", "linear")


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class GhostNet(nn.Module):
    def __init__(self, n_classes: int, width: int = 16, dropout: float = 0.2) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv(1, w),
            _conv(w, 2 * w, stride=2),
            _conv(2 * w, 2 * w),
            _conv(2 * w, 4 * w, stride=2),
            _conv(4 * w, 4 * w),
            _conv(4 * w, 6 * w, stride=2),
            _conv(6 * w, 6 * w),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(12 * w, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return self.head(pooled)


class PaperCNN(nn.Module):
    """ghost-hunter's ThreeLayerCnn, generalised to any input size and class count."""

    def __init__(self, n_classes: int, input_size: int = 256) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, 1, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, 1, padding=1)
        side = input_size // 8
        self.fc1 = nn.Linear(64 * side * side, 128)
        self.fc2 = nn.Linear(128, n_classes)
        self.pool = nn.MaxPool2d(2, 2)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.pool(self.relu(self.conv3(x)))
        x = self.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


class LinearOnPixels(nn.Module):
    """Logits = W (x - mean) / std + b over the flattened input."""

    def __init__(self, n_classes: int, input_size: int) -> None:
        super().__init__()
        d = input_size * input_size
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("scale", torch.ones(d))
        self.linear = nn.Linear(d, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x.flatten(1) - self.mean) / self.scale
        return self.linear(z)


def build_network(arch: str, n_classes: int, input_size: int, **config: Any) -> nn.Module:
    if arch == "ghostnet":
        return GhostNet(n_classes, **config)
    if arch == "paper":
        return PaperCNN(n_classes, input_size=input_size)
    if arch == "linear":
        return LinearOnPixels(n_classes, input_size)
    raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
