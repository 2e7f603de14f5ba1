"""Start-up time of the commands that run no model (target: ``ghosttui --help`` under 0.5 s).

Each command runs ``--runs`` times in a fresh process (``.venv/bin/ghosttui`` or the
``ghosttui`` beside this Python); the minimum and median wall times are written to
``benchmarks/results/startup.json``, with the time of a bare ``python -c pass`` for
reference. The files and the session it needs are made in a temporary folder.

    python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save

TARGET_HELP_SECONDS = 0.5


def ghosttui_executable() -> str:
    beside = Path(sys.executable).with_name("ghosttui")
    return str(beside) if beside.exists() else "ghosttui"


def wall_times(command: list[str], runs: int, env: dict[str, str]) -> list[float]:
    subprocess.run(command, env=env, check=True, capture_output=True)  # warm the page cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    exe = ghosttui_executable()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        env = {
            **os.environ,
            "GHOSTTUI_SESSIONS": str(work / "sessions"),
            "GHOSTTUI_CACHE_DIR": str(work / "cache"),
            "COLUMNS": "120",
        }
        rng = np.random.default_rng(0)
        npy, h5 = work / "scan.npy", work / "scan.h5"
        np.save(npy, rng.poisson(4, (20, 16, 64, 64)).astype(np.uint16))
        with h5py.File(h5, "w") as f:
            f["data"] = rng.poisson(4, (20, 16, 64, 64)).astype(np.uint16)
        subprocess.run([exe, "new", "bench", "--data", str(h5)], env=env, check=True)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "ghosttui --help": [exe, "--help"],
            "ghosttui --version": [exe, "--version"],
            "ghosttui label --help": [exe, "label", "--help"],
            "ghosttui status NAME": [exe, "status", "bench"],
            "ghosttui sessions": [exe, "sessions"],
            "ghosttui info scan.npy": [exe, "info", str(npy)],
            "ghosttui info scan.h5": [exe, "info", str(h5)],
            "ghosttui labels export NAME": [exe, "labels", "export", "bench", str(work / "l.csv")],
        }
        results = {}
        for name, command in commands.items():
            times = wall_times(command, args.runs, env)
            results[name] = {
                "min_s": round(min(times), 3),
                "median_s": round(statistics.median(times), 3),
                "runs": args.runs,
            }
            print(f"{name:32s} min {min(times):.3f} s  median {statistics.median(times):.3f} s")
    load = os.getloadavg()[0]
    help_median = results["ghosttui --help"]["median_s"]
    save(
        "startup",
        {
            "commands": results,
            "target": {"ghosttui --help median_s": TARGET_HELP_SECONDS},
            "meets_target": help_median < TARGET_HELP_SECONDS,
            "load_average_1min": round(load, 2),
            "note": "wall time of a fresh process with a warm page cache (one untimed run "
            "first); the load average says how busy the machine was",
        },
    )


if __name__ == "__main__":
    main()
