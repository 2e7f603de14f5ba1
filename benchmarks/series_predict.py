"""Series prediction: one process against a local Dask cluster of 1 and 2 workers.

A series of 8 simulated scans of 206x34 (``ghosttui simulate``, seeds 0-7, 128x128
uint16 detector: 56,032 patterns, 1.8 GiB) is classified with a session trained on
100 random labels of the first scan. Each configuration runs in a fresh process,
from a warm page cache (the files are read once before), writing a new output:

* ``single``: ``ghosttui predict`` without Dask: raw patterns are read,
  preprocessed and classified in this process (no cache is built);
* ``workers-1``, ``workers-2``: the same on a ``LocalCluster`` of N worker
  processes (one Dask thread each, torch threads = cores / N), timed with and
  without the cluster's start;
* ``cache-route``: the other way to run a series: ``ghosttui preprocess`` builds
  every scan's cache, then ``predict`` classifies from the caches (both timed);
* ``network``: the network alone on cached 64x64 inputs (one scan), for the
  scaling model in docs/scaling.md.

    python benchmarks/series_predict.py [--scans 8] [--size 128] [--repeats 1] [--configs ...]

Writes benchmarks/results/series_predict.json; configurations left out of ``--configs``
keep their earlier runs there (each run records when it finished).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, RESULTS, save, simulated

RUN = r"""
import json, sys, time, torch
from pathlib import Path
config, session_dir, out, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
from ghosttui.session.session import Session
from ghosttui.inference.jobs import predict_session, preprocess_series
result = {"config": config, "torch_threads_client": torch.get_num_threads()}
with Session.open(session_dir, writable=False) as session:
    if config.startswith("workers-"):
        from ghosttui.inference.cluster import ClusterSpec, connect
        spec = ClusterSpec(workers=int(config.split("-")[1]), dashboard=None)
        started = time.perf_counter()
        with connect(spec) as client:
            client.wait_for_workers(spec.workers)
            result["seconds_start"] = time.perf_counter() - started
            started = time.perf_counter()
            run = predict_session(session, out, inputs=files, client=client, cluster=spec)
            result["seconds"] = time.perf_counter() - started
        result["seconds_total"] = result["seconds"] + result["seconds_start"]
    elif config == "cache-route":
        from ghosttui.data import LoadOptions
        started = time.perf_counter()
        preprocess_series(files, LoadOptions(), session.settings.preprocess)
        result["seconds_preprocess"] = time.perf_counter() - started
        started = time.perf_counter()
        run = predict_session(session, out, inputs=files)
        result["seconds_predict"] = time.perf_counter() - started
        result["seconds"] = result["seconds_preprocess"] + result["seconds_predict"]
        result["seconds_total"] = result["seconds"]
    elif config == "network":
        from ghosttui.data import LoadOptions
        from ghosttui.inference.blocks import ModelBundle
        from ghosttui.model.predict import predict_cache
        from ghosttui.patterns.cache import open_or_build
        bundle = ModelBundle.from_checkpoint(session.load_model(session.find_model()))
        cpu = torch.device("cpu")
        model = bundle.build(cpu)
        with open_or_build(files[0], LoadOptions(), session.settings.preprocess) as cache:
            cache.read(0, cache.n_patterns)  # warm
            started = time.perf_counter()
            predict_cache(model, cache, cpu)
            result["seconds"] = time.perf_counter() - started
            result["patterns"] = cache.n_patterns
        print(json.dumps(result))
        raise SystemExit
    else:
        started = time.perf_counter()
        run = predict_session(session, out, inputs=files)
        result["seconds"] = time.perf_counter() - started
        result["seconds_total"] = result["seconds"]
    result["scans"] = len(run.outcomes)
    result["patterns"] = sum(o.ref.n_patterns for o in run.outcomes)
    result["checksum"] = float(sum((o.probabilities ** 2).sum() for o in run.outcomes))
print(json.dumps(result))
"""


def trained_session(first_scan: Path, workdir: Path) -> Path:
    """A session on the first scan, trained on 100 random labels (as `ghosttui train` does)."""
    import h5py

    from ghosttui.loop.controller import LabellingController
    from ghosttui.loop.rounds import train_model
    from ghosttui.session.session import Session
    from ghosttui.session.settings import make_classes

    folder = workdir / "series-session-models"
    if (folder / "session.toml").exists():
        with Session.open(str(folder), writable=False) as session:
            if session.current_model() is not None:
                return folder
    with h5py.File(first_scan, "r") as f:
        truth = f["truth"][()]
    rng = np.random.default_rng(0)
    names = ["horizontal", "vertical", "none"]
    while True:
        flat = rng.choice(truth.size, 100, replace=False)
        if len(np.unique(truth.ravel()[flat])) == 3:
            break
    subprocess.run(["rm", "-rf", str(folder)], check=True)
    session = Session.create("series", first_scan, classes=make_classes(), directory=folder)
    with session:
        rows = [divmod(int(i), truth.shape[1]) for i in flat]
        session.store.import_labels([(rx, ry, names[truth[rx, ry]], "random") for rx, ry in rows])
        loop = LabellingController(session, resume=False)
        job = loop.request_training()
        loop.training_started(job)
        loop.training_finished(train_model(session, job))
    return folder


def warm(files: list[Path]) -> None:
    for path in files:
        with open(path, "rb") as handle:
            while handle.read(64 << 20):
                pass


def run(config: str, session: Path, files: list[Path], workdir: Path) -> dict:
    env = {**os.environ, "GHOSTTUI_CACHE_DIR": str(workdir / f"cache-{config}")}
    out = workdir / f"{config}.h5"
    out.unlink(missing_ok=True)
    if config != "network":  # every run starts without caches (the network run needs one)
        subprocess.run(["rm", "-rf", env["GHOSTTUI_CACHE_DIR"]], check=True)
    proc = subprocess.run(
        [sys.executable, "-c", RUN, config, str(session), str(out), *map(str, files)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{config} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="detector side of the scans")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--configs", default="single,workers-1,workers-2,cache-route,network", help="what to run"
    )
    args = parser.parse_args()
    files = [simulated("wall", args.size, seed) for seed in range(args.scans)]
    workdir = Path(tempfile.mkdtemp(prefix="series-bench-", dir=DATA))
    session = trained_session(files[0], DATA)
    patterns = 0
    for path in files:
        import h5py

        with h5py.File(path, "r") as f:
            patterns += int(np.prod(f["data"].shape[:2]))
    runs: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for config in args.configs.split(","):
            warm(files)
            started = time.perf_counter()
            result = run(config, session, files, workdir)
            result["wall_seconds_process"] = time.perf_counter() - started
            result["when"] = time.strftime("%Y-%m-%d %H:%M")
            print(json.dumps(result), flush=True)
            runs.setdefault(config, []).append(result)
    # configurations not run this time keep their earlier runs (each run says when it was)
    previous = RESULTS / "series_predict.json"
    if previous.exists():
        earlier = json.loads(previous.read_text())
        for config, results in earlier.get("runs", {}).items():
            if config not in runs:
                runs[config] = [{"when": earlier.get("when"), **r} for r in results]
    summary = {}
    for config, results in runs.items():
        best = min(results, key=lambda r: r["seconds"])
        n = best["patterns"]
        summary[config] = {
            "seconds": round(best["seconds"], 2),
            "patterns_per_second": round(n / best["seconds"], 1),
            "patterns_per_second_with_start": round(n / best["seconds_total"], 1)
            if "seconds_total" in best
            else None,
            **{k: round(v, 2) for k, v in best.items() if k.startswith("seconds_")},
            "when": best.get("when"),
        }
    if "single" in summary:
        base = summary["single"]["seconds"]
        for config, entry in summary.items():
            if config != "network":
                entry["time_vs_single"] = round(entry["seconds"] / base, 3)
                if "seconds_total" in entry:
                    entry["time_with_start_vs_single"] = round(entry["seconds_total"] / base, 3)
    # every configuration classified the same patterns with the same model: equal results
    sums = [
        r[0]["checksum"]
        for c, r in runs.items()
        if c != "network" and c in args.configs.split(",")  # this invocation's model
    ]
    save(
        "series_predict",
        {
            "scans": args.scans,
            "scan": "206x34",
            "detector": args.size,
            "patterns": patterns,
            "gib": round(sum(p.stat().st_size for p in files) / 2**30, 2),
            "note": "timed on a 2-core machine shared with other jobs (CPU contention)",
            "summary": summary,
            "same_results": bool(np.ptp(sums) <= 1e-6 * max(sums)) if sums else None,
            "runs": runs,
        },
    )


if __name__ == "__main__":
    main()
