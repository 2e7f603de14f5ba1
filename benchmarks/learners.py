"""Learners on kinematic and multislice scans: auto (the default) against the logistic baseline.

For every scan: ``ghosttui bench --learner L`` (the same command a user runs) for
each learner, strategy, budget and seed, written to
``benchmarks/results/learners_<scan>_<learner>.json``; and the ceiling: 5-fold
cross-validated whole-map accuracy of logistic regression with every pattern
labelled (each pattern predicted by a model that did not see it), in
``learners_<scan>_ceiling.json``.

Multislice scans are made once with ``ghosttui simulate --physics multislice``
(the library build takes 10-20 min on 2 cores, then it is cached; see
docs/simulation.md); pass them with ``--scans``. Kinematic ones are simulated here.

    python benchmarks/learners.py --scans kin:wall,ms/pto_wall_d1e4.h5 \\
        [--learners auto,logreg] [--strategies hybrid,random] [--budgets 50,100] [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, RESULTS, save, simulated

GHOSTTUI = str(Path(sys.executable).with_name("ghosttui"))


def scan_path(spec: str) -> Path:
    """``kin:GEOMETRY`` (simulated here, kinematic) or the path of a scan with /truth."""
    if spec.startswith("kin:"):
        return simulated(geometry=spec[4:])
    return Path(spec)


def scan_name(spec: str) -> str:
    return f"kin_{spec[4:]}" if spec.startswith("kin:") else Path(spec).stem


def ceiling(path: Path, folds: int = 5) -> dict:
    """Cross-validated accuracy of logistic regression with every pattern labelled."""
    import h5py

    from ghosttui.data import LoadOptions
    from ghosttui.model.learners import (
        PixelStandardiser,
        cv_predictions,
        logreg_fit_predict,
        stratified_folds,
    )
    from ghosttui.patterns.cache import open_or_build
    from ghosttui.patterns.settings import PreprocessSettings

    cache = open_or_build(path, LoadOptions(), PreprocessSettings())
    with h5py.File(path, "r") as f:
        truth = f["truth"][()].astype(np.int64).ravel()
    started = time.perf_counter()
    z = PixelStandardiser(cache).apply(cache.read(0, cache.n_patterns))
    predicted = cv_predictions(
        logreg_fit_predict(z, truth), truth, stratified_folds(truth, folds, seed=0)
    )
    return {
        "learner": "logreg",
        "folds": folds,
        "patterns": int(truth.size),
        "accuracy": float(np.mean(predicted == truth)),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", default="kin:wall,kin:stripes")
    parser.add_argument("--learners", default="auto,logreg")
    parser.add_argument("--strategies", default="hybrid,random")
    parser.add_argument("--budgets", default="50,100")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--no-ceiling", action="store_true")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    for spec in args.scans.split(","):
        path, name = scan_path(spec), scan_name(spec)
        for learner in args.learners.split(","):
            out = RESULTS / f"learners_{name}_{learner}.json"
            command = [
                GHOSTTUI, "bench", str(path), "--learner", learner,
                "--strategy", args.strategies, "--budget", args.budgets,
                "--seed", args.seeds, "--json", str(out),
            ]  # fmt: skip
            print(" ".join(command), flush=True)
            subprocess.run(command, check=True)
        if not args.no_ceiling:
            result = ceiling(path)
            print(f"{name} ceiling: {result}", flush=True)
            save(f"learners_{name}_ceiling", {"scan": str(path), **result})


if __name__ == "__main__":
    main()
