"""Learners on kinematic and multislice scans: the default against the logistic baseline.

For every scan: ``ghosttui bench --learner L`` (the same command a user runs) for
each learner, strategy, budget and seed, written to
``benchmarks/results/learners_<scan>_<learner>.json``. A learner is a name
(``auto``, ``logreg``, ``cnn``: the session's defaults, ``[model] train_average`` 3,
``mean_share`` 0.5 and ``input_blur`` 1: the blend of fits on the patterns and on their
3x3 means, on inputs blurred by 1 pixel), or the linear learner with other inputs:
``logreg-k1`` (``--train-average 1 --input-blur 0``: the plain baseline, every label its
own pattern), ``logreg-means`` (``--mean-share 1 --input-blur 0``: the 3x3 means alone,
the default two rounds ago), ``logreg-unblurred`` (``--input-blur 0``: the blend on
unblurred inputs, an earlier default; these three on the inputs as they are), or the
default learner with its inputs set: ``logreg-asis`` (``--input-symmetry none``, the
default until stop 24), ``logreg-mirror`` (``--input-symmetry mirror``) and ``logreg-auto``
(``--input-symmetry auto``, the default). The ceiling: whole-map accuracy of logistic
regression with every pattern labelled, 5-fold cross-validated (each pattern predicted
by a model that saw neither it nor its fold), for single patterns, 3x3 means, the
blend, the blurred blend and the blurred blend on mirror-symmetric inputs, in ``learners_<scan>_ceiling.json``.

Multislice scans are made once with ``ghosttui simulate --physics multislice``
(the library build takes 10-20 min on 2 cores, then it is cached; see
docs/simulation.md); pass them with ``--scans``. Kinematic ones are simulated here.

    python benchmarks/learners.py --scans kin:wall,ms/pto_wall_d1e4.h5 \\
        [--learners auto,logreg,logreg-k1] [--strategies hybrid,random] [--budgets 50,100] \\
        [--seeds 0,1,2]
    python benchmarks/learners.py --scans ms/pto_needles_d1e4.h5 --learners ''   # ceilings only
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


def neighbourhood_sums(values: np.ndarray, weight: np.ndarray, k: int) -> tuple:
    """Per position, the sum of ``weight * values`` and of ``weight`` over its k x k block
    (cut at the scan's edges): ``values`` (Rx, Ry, F), ``weight`` (Rx, Ry, 1)."""
    half = k // 2
    padded_v = np.pad(values * weight, ((half, half), (half, half), (0, 0)))
    padded_w = np.pad(weight, ((half, half), (half, half), (0, 0)))
    total, count = np.zeros_like(values), np.zeros_like(weight)
    n_rx, n_ry = values.shape[:2]
    for dr in range(k):
        for dc in range(k):
            total += padded_v[dr : dr + n_rx, dc : dc + n_ry]
            count += padded_w[dr : dr + n_rx, dc : dc + n_ry]
    return total, count


def ceiling(
    path: Path,
    train_average: int,
    mean_share: float = 1.0,
    blur: float = 0.0,
    folds: int = 5,
    symmetry: str = "none",
) -> dict:
    """Cross-validated whole-map accuracy of logistic regression with every pattern
    labelled. With ``train_average`` k > 1 each training pattern is the mean of its k x k
    block over the positions of its own class outside the held-out fold (as a session
    fits its labels: other classes and hidden positions left out), blended with the fit
    on the patterns themselves by ``mean_share`` (1: the means alone); ``blur``: the inputs'
    Gaussian blur in input pixels; ``symmetry``: "mirror" for mirror-symmetric inputs."""
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
    standard = PixelStandardiser(cache, blur=blur, symmetry=symmetry)
    z = standard.apply(cache.read(0, cache.n_patterns))
    fold_of = stratified_folds(truth, folds, seed=0)
    train_inputs = None
    if train_average > 1:
        shape = (*cache.scan_shape, -1)

        def train_inputs(train: np.ndarray, test: np.ndarray) -> np.ndarray:
            visible = np.ones(len(truth), np.float32)
            visible[test] = 0
            total = np.zeros(z.shape, np.float32)
            count = np.zeros((len(truth), 1), np.float32)
            for cls in np.unique(truth):
                weight = (visible * (truth == cls)).reshape(shape)
                t, c = neighbourhood_sums(z.reshape(shape), weight, train_average)
                mine = truth == cls
                total[mine], count[mine] = t.reshape(len(truth), -1)[mine], c.reshape(-1, 1)[mine]
            return (total / np.maximum(count, 1))[train]

    fit_predict = logreg_fit_predict(z, truth, train_inputs, mean_share)
    predicted = cv_predictions(fit_predict, truth, fold_of)
    return {
        "learner": "logreg",
        "train_average": train_average,
        "mean_share": mean_share if train_average > 1 else None,
        "input_blur": blur,
        "input_symmetry": symmetry,
        "folds": folds,
        "patterns": int(truth.size),
        "accuracy": float(np.mean(predicted == truth)),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", default="kin:wall,kin:stripes")
    parser.add_argument("--learners", default="auto,logreg,logreg-k1")
    parser.add_argument("--strategies", default="hybrid,random")
    parser.add_argument("--budgets", default="50,100")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--suffix", default="", help="appended to the JSON names, e.g. _stop23")
    args = parser.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    for spec in args.scans.split(","):
        path, name = scan_path(spec), scan_name(spec)
        for learner in [each for each in args.learners.split(",") if each]:  # '': ceilings only
            out = RESULTS / f"learners_{name}_{learner}{args.suffix}.json"
            base, _, variant = learner.partition("-")
            inputs = {
                "": [],
                "k1": ["--train-average", "1", "--input-blur", "0"],
                "means": ["--mean-share", "1", "--input-blur", "0"],
                "unblurred": ["--input-blur", "0"],
                "asis": ["--input-symmetry", "none"],
                "mirror": ["--input-symmetry", "mirror"],
                "auto": ["--input-symmetry", "auto"],
            }
            if variant in ("k1", "means", "unblurred"):  # baselines and earlier defaults
                inputs[variant] += ["--input-symmetry", "none"]
            command = [
                GHOSTTUI, "bench", str(path), "--learner", base,
                "--strategy", args.strategies, "--budget", args.budgets,
                "--seed", args.seeds, "--json", str(out),
            ] + inputs[variant]  # fmt: skip
            print(" ".join(command), flush=True)
            subprocess.run(command, check=True)
        if not args.no_ceiling:
            results = [
                ceiling(path, 1),
                ceiling(path, 3, 1.0),
                ceiling(path, 3, 0.5),
                ceiling(path, 3, 0.5, blur=1.0),
                ceiling(path, 3, 0.5, blur=1.0, symmetry="mirror"),
            ]
            print(f"{name} ceiling: {results}", flush=True)
            save(f"learners_{name}_ceiling", {"scan": str(path), "ceilings": results})


if __name__ == "__main__":
    main()
