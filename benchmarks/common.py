"""Shared helpers for the benchmarks: machine description, simulated scans, result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
DATA = Path(os.environ.get("GHOSTTUI_BENCH_DATA", "/tmp/ghosttui-bench"))


def machine() -> dict:
    import torch

    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        info["cpu"] = model
    except (OSError, StopIteration):
        pass
    return info


def simulated(geometry: str = "wall", size: int = 128, seed: int = 0, scan: str = "206x34") -> Path:
    """A simulated scan under DATA (made once with the CLI)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"{geometry}-{scan}-q{size}-seed{seed}.h5"
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "ghosttui",
                "simulate",
                str(path),
                "--geometry",
                geometry,
                "--size",
                str(size),
                "--seed",
                str(seed),
                "--scan",
                scan,
            ],
            check=True,
        )
    return path


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": machine(),
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")
    return path
