"""Check of the library's premise: for non-overlapping disks, a CBED pattern is the set of
plane-wave rocking curves read over the aperture.

    python benchmarks/multislice_vs_probe.py

Simulates the same PbTiO3 crystal (6.2 nm, 0.05 A sampling, a/2 slices, no phonons) twice
with abTEM: a 2.5 mrad probe CBED in a 12 x 13 cell supercell (the probe placed off any
symmetry point), and plane waves over a 0.25 mrad grid of directions filling the aperture
in a 3 x 3 cell, averaged per beam as the library does. Writes the disk intensities and
their ratio to benchmarks/results/multislice_vs_probe.json. About 2 min on 2 cores.
"""

from __future__ import annotations

import math
import time

import numpy as np
from common import save

from ghosttui.simulate.library import _fft_size
from ghosttui.simulate.structures import PTO, lab_cell, unit_cell

BEAMS = [(0, 0), (1, 0), (-1, 0), (0, 1), (2, 0), (-2, 0), (1, 1), (-1, 1), (3, 0), (-3, 0), (2, 2)]


def main() -> None:
    import abtem
    from abtem.core.energy import energy2wavelength

    abtem.config.set({"diagnostics.progress_bar": False})
    cell = lab_cell(PTO, "polar")
    nz, alpha, sampling = 16, 2.5, 0.05
    wavelength = energy2wavelength(200e3)
    atoms = unit_cell(PTO, "polar")

    def potential(nx: int, ny: int):
        supercell = atoms * (nx, ny, nz)
        gpts = tuple(_fft_size(math.ceil(e / sampling)) for e in (nx * cell[0], ny * cell[1]))
        return supercell, abtem.Potential(
            supercell, gpts=gpts, slice_thickness=(cell[2] / 2,) * (2 * nz), projection="infinite"
        )

    started = time.perf_counter()
    supercell, pot = potential(12, 13)
    probe = abtem.Probe(energy=200e3, semiangle_cutoff=alpha, soft=False)
    where = (supercell.cell[0, 0] / 2 + 0.3, supercell.cell[1, 1] / 2 - 0.7)
    cbed = probe.multislice(
        pot, scan=where, detectors=abtem.PixelatedDetector(max_angle=40), lazy=False
    )
    image = np.asarray(cbed.array)
    cx, cy = image.shape[0] // 2, image.shape[1] // 2
    kx = (np.arange(image.shape[0]) - cx) * cbed.sampling[0]
    ky = (np.arange(image.shape[1]) - cy) * cbed.sampling[1]
    kxx, kyy = np.meshgrid(kx, ky, indexing="ij")
    radius = alpha * 1e-3 / wavelength * 1.15
    probe_disks = {
        b: float(image[np.hypot(kxx - b[0] / cell[0], kyy - b[1] / cell[1]) <= radius].sum())
        for b in BEAMS
    }
    probe_seconds = time.perf_counter() - started

    started = time.perf_counter()
    _, pot = potential(3, 3)
    step = 0.25
    axis = np.arange(-alpha, alpha + 1e-9, step)
    directions = np.array([[x, y] for x in axis for y in axis if x * x + y * y <= alpha * alpha])
    patterns = abtem.PlaneWave(energy=200e3, tilt=directions).multislice(
        pot, detectors=abtem.PixelatedDetector(max_angle=40), lazy=False
    )
    array = np.asarray(patterns.array)
    cx, cy = array.shape[1] // 2, array.shape[2] // 2
    plane_disks = {b: float(array[:, cx + 3 * b[0], cy + 3 * b[1]].mean()) for b in BEAMS}
    plane_seconds = time.perf_counter() - started

    rows = [
        {
            "beam": list(b),
            "probe_cbed": round(probe_disks[b], 6),
            "plane_waves": round(plane_disks[b], 6),
            "ratio": round(probe_disks[b] / plane_disks[b], 4),
        }
        for b in BEAMS
    ]
    for row in rows:
        print(row)
    save(
        "multislice_vs_probe",
        {
            "command": "python benchmarks/multislice_vs_probe.py",
            "crystal": "PbTiO3 P4mm, +P along x, 16 unit cells (6.2 nm) along the beam",
            "probe": {"semiangle_mrad": alpha, "cells": [12, 13], "seconds": round(probe_seconds)},
            "plane_waves": {
                "direction_step_mrad": step,
                "directions": len(directions),
                "cells": [3, 3],
                "seconds": round(plane_seconds),
            },
            "sampling_A": sampling,
            "rows": rows,
            "largest_deviation": round(max(abs(r["ratio"] - 1) for r in rows), 4),
        },
    )


if __name__ == "__main__":
    main()
