"""Why 64x64 model inputs: accuracy and speed against the input size.

For each size, a session on the default simulated scan (206x34, 128x128
patterns, ``wall``) is given the same 100 random labels from the truth
(3 seeds), trained by the loop's ``train_model`` (as ``ghosttui train``) and scored on the whole map; the
cache build rate and the prediction rate come from the same runs.

    python benchmarks/input_size.py [--sizes 32,48,64,96,128] [--labels 100] [--detector 512]
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
from model_accuracy import random_labels


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="32,48,64,96,128")
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument(
        "--detector", type=int, default=128, help="detector pixels of the simulated scan"
    )
    args = parser.parse_args()
    import h5py

    from ghosttui.data import LoadOptions
    from ghosttui.loop.controller import LabellingController
    from ghosttui.loop.rounds import train_model
    from ghosttui.patterns.cache import open_or_build
    from ghosttui.patterns.settings import PreprocessSettings
    from ghosttui.session.session import Session
    from ghosttui.session.settings import ModelSpec, make_classes

    data = simulated(size=args.detector)
    with h5py.File(data, "r") as f:
        truth = f["truth"][()].astype(int)
    classes = ["horizontal", "vertical", "none"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(s) for s in args.sizes.split(",")):
            started = time.perf_counter()
            open_or_build(data, LoadOptions(), PreprocessSettings(size=size), rebuild=True).close()
            cache_rate = truth.size / (time.perf_counter() - started)
            for seed in (int(s) for s in args.seeds.split(",")):
                positions, _ = random_labels(truth, args.labels, seed)
                name = f"size{size}-{seed}"
                session = Session.create(
                    name,
                    data,
                    classes=make_classes(),
                    preprocess=PreprocessSettings(size=size),
                    model=ModelSpec(seed=seed),
                    directory=Path(scratch) / name,
                )
                with session:
                    session.store.import_labels(
                        [
                            (int(rx), int(ry), classes[truth[rx, ry]], "random")
                            for rx, ry in positions
                        ]
                    )
                    job = LabellingController(session, resume=False).request_training()
                    result = train_model(session, job)
                row = {
                    "size": size,
                    "seed": seed,
                    "accuracy": float(np.mean(result.probabilities.argmax(-1) == truth)),
                    "seconds_train": result.metrics["seconds_train"],
                    "patterns_per_second": result.metrics["patterns_per_second"],
                    "cache_patterns_per_second": round(cache_rate, 1),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
    summary = {}
    for size in sorted({r["size"] for r in rows}):
        chosen = [r for r in rows if r["size"] == size]
        summary[size] = {
            "accuracy_mean": round(float(np.mean([r["accuracy"] for r in chosen])), 4),
            "accuracy_std": round(float(np.std([r["accuracy"] for r in chosen])), 4),
            "train_s": round(float(np.mean([r["seconds_train"] for r in chosen])), 1),
            "predict_per_s": round(float(np.mean([r["patterns_per_second"] for r in chosen])), 0),
            "cache_per_s": chosen[0]["cache_patterns_per_second"],
        }
    print(json.dumps(summary, indent=2))
    name = "input_size" if args.detector == 128 else f"input_size_q{args.detector}"
    save(
        name,
        {
            "data": str(data),
            "detector": args.detector,
            "labels": args.labels,
            "runs": rows,
            "summary": summary,
        },
    )


if __name__ == "__main__":
    main()
