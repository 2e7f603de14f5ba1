"""Model accuracy and speed: ghosttui's GhostNet against the paper's network, at equal labels.

On a simulated scan (default: 206x34, ``wall``), for each budget and seed, the
same random positions are labelled from the truth (as ``ghosttui labels
import`` would), a session is trained by the loop's ``train_model`` (exactly what
``ghosttui train`` runs) and the whole map is scored against the truth.
The paper's network (ghost-hunter's ThreeLayerCnn: 8.4 M parameters at its
256x256 input) is trained on the same labels with the paper's optimiser
settings (AdamW, lr 4e-4, weight decay 2e-3, 80:20 split, best validation
loss) on 256x256 inputs, and on ghosttui's 64x64 inputs.

    python benchmarks/model_accuracy.py [--budgets 50,100,250] [--seeds 0,1,2] [--skip-paper]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save, simulated


def random_labels(truth: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, int]:
    """``count`` random positions holding every class (training needs one of each).

    The non-polar band covers a few percent of the scan, so 50 random positions can
    miss it; such a draw is redrawn, and the number of draws is reported.
    """
    rng = np.random.default_rng([seed, 2024])
    n_classes = int(truth.max()) + 1
    for draw in range(1, 1001):
        flat = rng.choice(truth.size, count, replace=False)
        if len(np.unique(truth.ravel()[flat])) == n_classes:
            return np.stack(np.divmod(flat, truth.shape[1]), 1), draw
    raise RuntimeError(f"no draw of {count} positions holds every class")


def ghostnet_run(
    data: Path, truth: np.ndarray, positions: np.ndarray, seed: int, workdir: Path
) -> dict:
    from ghosttui.loop.controller import LabellingController
    from ghosttui.loop.rounds import train_model
    from ghosttui.session.session import Session
    from ghosttui.session.settings import ModelSpec, make_classes

    classes = ["horizontal", "vertical", "none"]
    session = Session.create(
        f"acc-{seed}-{len(positions)}",
        data,
        classes=make_classes(),
        model=ModelSpec(seed=seed, learner="cnn"),
        directory=workdir / f"acc-{seed}-{len(positions)}",
    )
    with session:
        session.store.import_labels(
            [(int(rx), int(ry), classes[truth[rx, ry]], "random") for rx, ry in positions]
        )
        job = LabellingController(session, resume=False).request_training()
        result = train_model(session, job)
    predicted = result.probabilities.argmax(-1)
    return {
        "accuracy": float(np.mean(predicted == truth)),
        "seconds_train": result.metrics["seconds_train"],
        "seconds_predict": result.metrics["seconds_predict"],
        "patterns_per_second": result.metrics["patterns_per_second"],
        "epochs": result.metrics["epochs_run"],
    }


def paper_run(data: Path, truth: np.ndarray, positions: np.ndarray, seed: int, size: int) -> dict:
    from ghosttui.data import LoadOptions
    from ghosttui.model.device import resolve_device
    from ghosttui.model.network import build_network
    from ghosttui.model.predict import predict_cache
    from ghosttui.model.train import TrainConfig, train
    from ghosttui.patterns.cache import open_or_build
    from ghosttui.patterns.settings import PreprocessSettings

    cache = open_or_build(data, LoadOptions(), PreprocessSettings(size=size))
    labels = truth[positions[:, 0], positions[:, 1]]
    config = TrainConfig(
        arch="paper",
        lr=4e-4,
        weight_decay=2e-3,
        label_smoothing=0.0,
        augment=False,
        epochs=100,
        patience=100,
        min_epochs=100,
        val_fraction=0.2,
        seed=seed,
    )
    started = time.perf_counter()
    result = train(cache.gather(positions), labels, 3, config)
    seconds_train = time.perf_counter() - started
    model = build_network("paper", 3, size)
    model.load_state_dict(result.state_dict)
    started = time.perf_counter()
    probabilities = predict_cache(model.eval(), cache, resolve_device("auto"), batch=256)
    seconds_predict = time.perf_counter() - started
    params = sum(p.numel() for p in model.parameters())
    return {
        "accuracy": float(np.mean(probabilities.argmax(-1) == truth)),
        "seconds_train": round(seconds_train, 2),
        "seconds_predict": round(seconds_predict, 2),
        "patterns_per_second": round(truth.size / seconds_predict, 1),
        "parameters": params,
        "epochs": result.epochs_run,
        "input_size": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--budgets", default="50,100,250")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--geometry", default="wall")
    parser.add_argument("--skip-paper", action="store_true")
    parser.add_argument("--paper-sizes", default="64,256")
    parser.add_argument(
        "--paper-256-seeds", default="0", help="seeds for the slow 256x256 paper runs"
    )
    args = parser.parse_args()
    import h5py

    data = simulated(args.geometry)
    with h5py.File(data, "r") as f:
        truth = f["truth"][()].astype(int)
    budgets = [int(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = []
    with tempfile.TemporaryDirectory() as scratch:
        for budget in budgets:
            for seed in seeds:
                positions, draws = random_labels(truth, budget, seed)
                row = {
                    "budget": budget,
                    "seed": seed,
                    "draws": draws,
                    "ghostnet": ghostnet_run(data, truth, positions, seed, Path(scratch)),
                }
                if not args.skip_paper:
                    slow_seeds = {int(v) for v in args.paper_256_seeds.split(",") if v}
                    for size in (int(s) for s in args.paper_sizes.split(",")):
                        if size >= 256 and seed not in slow_seeds:
                            continue
                        row[f"paper_{size}"] = paper_run(data, truth, positions, seed, size)
                print(json.dumps(row), flush=True)
                runs.append(row)
    summary = {}
    for budget in budgets:
        rows = [r for r in runs if r["budget"] == budget]
        for key in sorted({k for r in rows for k in r} - {"budget", "seed", "draws"}):
            with_key = [r for r in rows if key in r]
            accs = [r[key]["accuracy"] for r in with_key]
            summary.setdefault(key, {})[budget] = {
                "mean": round(float(np.mean(accs)), 4),
                "std": round(float(np.std(accs)), 4),
                "runs": len(with_key),
                "train_s": round(float(np.mean([r[key]["seconds_train"] for r in with_key])), 1),
                "predict_per_s": round(
                    float(np.mean([r[key]["patterns_per_second"] for r in with_key])), 0
                ),
            }
    print(json.dumps(summary, indent=2))
    save(f"model_accuracy_{args.geometry}", {"data": str(data), "runs": runs, "summary": summary})


if __name__ == "__main__":
    main()
