"""A training round on 100 labels: idle, and with one other process keeping a core busy.

A session on the default simulated scan (206x34, ``wall``) gets 100 random labels from
the truth; one round is trained as ``ghosttui train`` trains it (``train_model``,
threads from ``cpu_threads()``: the usable cores less those other processes keep
busy). Each case runs ``--repeats`` times: idle; idle on one thread (on 2 cores with
one taken, the best a compute-bound round can do); with one competing busy process
(a pure-Python loop pinned to nothing, as another user's job would be); and, for
comparison, with the competitor and torch's default thread count (every core), the
setting the issue measured as many times slower. The target: contended <= 1.5x idle.

    python benchmarks/round_contention.py [--learner auto|cnn|logreg] [--repeats 2] \\
        [--data SCAN.h5 --name NAME]

``--data``: a scan with a /truth map (e.g. a multislice one) instead of the default
kinematic wall; ``--name``: the result file's name (default round_contention_<learner>).

Run it on an otherwise idle machine: "idle" means nothing else is running.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save, simulated


def busy_loop() -> None:  # pragma: no cover - runs in the competitor process
    x = 0
    while True:
        x += 1


def one_round(session, threads: int | None) -> dict:
    from ghosttui.loop.controller import LabellingController
    from ghosttui.loop.rounds import train_model

    job = LabellingController(session, resume=False).request_training()
    started = time.perf_counter()
    trained = train_model(session, job, threads=threads)
    m = trained.metrics
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "seconds_train": m["seconds_train"],
        "seconds_predict": m["seconds_predict"],
        "threads": m["threads"],
        "learner": m["learner"],
        "choice_reason": m.get("choice_reason"),
        "symmetry_reason": m.get("symmetry_reason"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learner", default="auto")
    parser.add_argument("--labels", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", type=Path, help="a scan with /truth (default: kinematic wall)")
    parser.add_argument("--name", help="result name (default: round_contention_<learner>)")
    args = parser.parse_args()

    import h5py
    import torch

    from ghosttui.session.session import Session
    from ghosttui.session.settings import ModelSpec, make_classes

    data = args.data or simulated()
    with h5py.File(data, "r") as f:
        truth = f["truth"][()].astype(int)
    classes = ["horizontal", "vertical", "none"]
    rng = np.random.default_rng(0)
    while True:
        flat = rng.choice(truth.size, args.labels, replace=False)
        if len(np.unique(truth.ravel()[flat])) == len(classes):
            break
    cases: dict[str, list[dict]] = {
        "idle": [],
        "idle, one thread": [],
        "one busy process": [],
        "busy, default threads": [],
    }
    with tempfile.TemporaryDirectory() as scratch:
        session = Session.create(
            "contention",
            data,
            classes=make_classes(),
            model=ModelSpec(learner=args.learner),
            directory=Path(scratch) / "contention",
        )
        with session:
            session.store.import_labels(
                [
                    (int(rx), int(ry), classes[truth[rx, ry]], "random")
                    for rx, ry in zip(*np.divmod(flat, truth.shape[1]), strict=True)
                ]
            )
            session.cache()  # built once, outside the timings
            for _ in range(args.repeats):
                cases["idle"].append(one_round(session, None))
                print("idle", cases["idle"][-1], flush=True)
                cases["idle, one thread"].append(one_round(session, 1))  # the bound on 2 cores
                print("idle, one thread", cases["idle, one thread"][-1], flush=True)
            competitor = multiprocessing.Process(target=busy_loop, daemon=True)
            competitor.start()
            try:
                time.sleep(1.0)
                for _ in range(args.repeats):
                    cases["one busy process"].append(one_round(session, None))
                    print("busy", cases["one busy process"][-1], flush=True)
                    cases["busy, default threads"].append(
                        one_round(session, torch.get_num_threads())
                    )
                    print("busy, default", cases["busy, default threads"][-1], flush=True)
            finally:
                competitor.terminate()
                competitor.join()
    summary = {name: min(r["seconds"] for r in runs) for name, runs in cases.items()}
    ratio = summary["one busy process"] / summary["idle"]
    print(f"best of {args.repeats}: {summary}; contended/idle = {ratio:.2f} (target <= 1.5)")
    save(
        args.name or f"round_contention_{args.learner}",
        {
            "data": str(data),
            "labels": args.labels,
            "learner": args.learner,
            "cases": cases,
            "best_seconds": summary,
            "contended_over_idle": round(ratio, 2),
        },
    )


if __name__ == "__main__":
    main()
