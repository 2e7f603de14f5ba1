"""How long the multislice simulator takes: the library for the default scan, built from
scratch, and composing the default 120x60 scan from it.

    python benchmarks/multislice_speed.py [--structure pto] [--keep-library]

Targets: library < 15 min, composition < 1 min on the 2-core CPU. The library is built in
a fresh cache folder (under $GHOSTTUI_BENCH_DATA), so an existing cache never hides the
cost. Writes benchmarks/results/multislice_speed[_STRUCTURE].json with the load averages
seen before and after (the machine should be otherwise idle).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

from common import DATA, save

from ghosttui.simulate.compose import MultisliceSettings, simulate_multislice
from ghosttui.simulate.library import build_library, load_library


def data_digest(path) -> str:
    """sha256 of a scan's /data: the same settings and seed must give the same bytes."""
    import hashlib

    import h5py

    with h5py.File(path, "r") as f:
        return hashlib.sha256(f["data"][()].tobytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", default="pto")
    parser.add_argument("--geometry", default="wall")
    parser.add_argument(
        "--keep-library", action="store_true", help="leave the library in the bench cache"
    )
    args = parser.parse_args()

    cache = DATA / "multislice-speed-cache"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    os.environ["GHOSTTUI_CACHE_DIR"] = str(cache)
    settings = MultisliceSettings(structure=args.structure, geometry=args.geometry)
    spec = settings.library_spec()
    load_before = os.getloadavg()

    steps = []
    started = time.perf_counter()
    path = build_library(spec, progress=lambda done, total: steps.append((done, total)))
    build = time.perf_counter() - started
    load_after_build = os.getloadavg()

    library = load_library(path, spec)
    out = DATA / f"multislice-speed-{args.structure}.h5"
    started = time.perf_counter()
    simulate_multislice(out, settings, library)
    compose = time.perf_counter() - started
    load_after = os.getloadavg()
    size_mib = path.stat().st_size / 2**20
    digest = data_digest(out)
    out.unlink()
    if not args.keep_library:
        shutil.rmtree(cache, ignore_errors=True)

    name = "multislice_speed" if args.structure == "pto" else f"multislice_speed_{args.structure}"
    save(
        name,
        {
            "command": f"python benchmarks/multislice_speed.py --structure {args.structure}",
            "library_spec": spec.__dict__,
            "scan": {
                "scan": list(settings.scan),
                "size": settings.size,
                "geometry": settings.geometry,
                "thickness_nm": list(settings.thickness),
                "tilt_mrad": settings.tilt,
                "dose": settings.dose,
            },
            "library_build_s": round(build, 1),
            "library_steps": steps[-1][1] if steps else 0,
            "library_file_mib": round(size_mib, 1),
            "scan_data_sha256": digest,
            "compose_s": round(compose, 1),
            "compose_patterns_per_s": round(settings.scan[0] * settings.scan[1] / compose, 1),
            "targets": {"library_build_s": 900, "compose_s": 60},
            "load_average": {
                "before": [round(v, 2) for v in load_before],
                "after_build": [round(v, 2) for v in load_after_build],
                "after_compose": [round(v, 2) for v in load_after],
            },
        },
    )
    print(f"library {build:.0f} s, composition {compose:.1f} s")


if __name__ == "__main__":
    main()
