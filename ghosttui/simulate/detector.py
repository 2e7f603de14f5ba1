"""The pixelated detector both simulators record with: per-pixel and per-quadrant gain,
dead and hot pixels, and Poisson counting noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Detector:
    gain: np.ndarray  # (Q, Q)
    hot_index: np.ndarray  # flat indices
    hot_counts: np.ndarray
    dead_index: np.ndarray

    def record(self, expected: torch.Tensor, seed: np.random.SeedSequence) -> np.ndarray:
        """Counts (uint16, (n, Q, Q)) for ``expected`` electrons per pixel (float32, (n, Q, Q)):
        gain, dead pixels, Poisson noise from a generator seeded by ``seed``, hot pixels."""
        n = expected.shape[0]
        lam = expected * torch.from_numpy(self.gain)
        lam.view(n, -1)[:, torch.from_numpy(self.dead_index)] = 0.0
        generator = torch.Generator().manual_seed(int(seed.generate_state(1)[0]))
        counts = torch.poisson(lam, generator=generator)
        hot = torch.from_numpy(self.hot_counts)
        counts.view(n, -1)[:, torch.from_numpy(self.hot_index)] += torch.poisson(
            hot.expand(n, -1).contiguous(), generator=generator
        )
        return counts.clamp_(0, 65535).to(torch.int32).numpy().astype(np.uint16)


def detector_model(size: int, seed: int) -> Detector:
    """A ``size`` x ``size`` detector's defects, deterministic per ``seed``."""
    q = size
    rng = np.random.default_rng([seed, 4])
    gain = np.clip(rng.normal(1.0, 0.04, (q, q)), 0.8, 1.2)
    quads = rng.uniform(0.97, 1.03, 4)
    h = q // 2
    gain[:h, :h] *= quads[0]
    gain[:h, h:] *= quads[1]
    gain[h:, :h] *= quads[2]
    gain[h:, h:] *= quads[3]
    n_hot = max(4, round(q * q * 2e-4))
    n_dead = max(2, round(q * q * 5e-5))
    picks = rng.choice(q * q, n_hot + n_dead, replace=False)
    return Detector(
        gain=gain.astype(np.float32),
        hot_index=picks[:n_hot],
        hot_counts=rng.uniform(100, 2000, n_hot).astype(np.float32),
        dead_index=picks[n_hot:],
    )
