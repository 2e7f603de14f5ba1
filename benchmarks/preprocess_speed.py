"""Preprocessing speed and memory on a 206x34 scan of 512x512 uint16 patterns (3.4 GiB).

Measures, each in a fresh process so peak RSS is that of the run alone:

* ghosttui's cache build (``build_cache``) from a warm page cache: patterns/s
  and peak resident memory;
* the paper's route on the same scan: every pattern written as a PNG with
  matplotlib's ``plt.imsave`` (as ghost-hunter's ``dm4_to_png.py`` does),
  timed on the first ``--png-patterns`` patterns and reported as patterns/s.

    python benchmarks/preprocess_speed.py [--png-patterns 500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save, simulated

BUILD = r"""
import json, resource, sys, time
from pathlib import Path
from ghosttui.patterns.cache import build_cache
from ghosttui.data import LoadOptions, open_scan
from ghosttui.patterns.settings import PreprocessSettings
src, out = sys.argv[1], sys.argv[2]
with open_scan(src) as scan:
    for start, block in scan.blocks(64):  # warm the page cache, then drop our mapping
        pass
    started = time.perf_counter()
    build_cache(scan, PreprocessSettings(), out, fingerprint="bench", options=LoadOptions())
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "patterns": scan.n_patterns,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PNG = r"""
import json, sys, time, os
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import h5py
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with h5py.File(src, "r") as f:
    data = f["data"]
    ry_n = data.shape[1]
    started = time.perf_counter()
    for k in range(n):
        i, j = divmod(k, ry_n)
        plt.imsave(os.path.join(out, f"scan_{i}_{j}.png"), data[i, j], cmap="gray")
    seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "patterns": n}))
"""


def run(code: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--png-patterns", type=int, default=500)
    args = parser.parse_args()
    source = simulated(size=512)
    with tempfile.TemporaryDirectory() as scratch:
        ours = run(BUILD, str(source), str(Path(scratch) / "cache.h5"))
        png_dir = Path(scratch) / "png"
        png_dir.mkdir()
        paper = run(PNG, str(source), str(png_dir), str(args.png_patterns))
        png_bytes = sum(p.stat().st_size for p in png_dir.iterdir())
    ours_rate = ours["patterns"] / ours["seconds"]
    paper_rate = paper["patterns"] / paper["seconds"]
    result = {
        "source": str(source),
        "source_bytes": source.stat().st_size,
        "ghosttui": {**ours, "patterns_per_second": round(ours_rate, 1)},
        "paper_png_route": {
            **paper,
            "patterns_per_second": round(paper_rate, 1),
            "png_bytes_per_pattern": round(png_bytes / paper["patterns"]),
            "estimated_seconds_whole_scan": round(ours["patterns"] / paper_rate, 1),
        },
        "speedup": round(ours_rate / paper_rate, 1),
    }
    print(json.dumps(result, indent=2))
    save("preprocess_speed", result)


if __name__ == "__main__":
    main()
