"""Change detection on a 3.4 GiB scan (206x34 patterns of 512x512 uint16): what it costs.

Measures, each step in a fresh process (no Python-level caching between them):

* the first full content hash (XXH3-128 of every byte), with the file evicted from the
  page cache (``posix_fadvise(DONTNEED)``: as after a copy from the microscope) and warm;
* the former sampled fingerprint (33 windows of 64 KiB), cold and warm, for comparison;
* opening an unchanged session (``Session.open``: settings, data check, label database),
  the cost a user pays on every command, and the recorded-hash lookup inside it;
* noticing a changed pattern in the middle of the file (one byte; the sampled fingerprint
  misses it): the time until the session is refused.

    python benchmarks/change_detection.py [--keep]

The scan is simulated under $GHOSTTUI_BENCH_DATA as a file of this benchmark's own (it
changes a byte in it; other benchmarks' scans are never touched), about 90 s, and deleted
afterwards unless ``--keep`` (then the byte is put back). Results:
benchmarks/results/change_detection.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA, save

EVICT = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
os.close(fd)
"""

HASH = r"""
import json, sys, time
from ghosttui.data.fingerprint import file_fingerprint, sampled_fingerprint
kind, path = sys.argv[1], sys.argv[2]
started = time.perf_counter()
value = file_fingerprint(path) if kind == "full" else sampled_fingerprint(path)
print(json.dumps({"seconds": time.perf_counter() - started, "fingerprint": value}))
"""

OPEN = r"""
import json, sys, time
from ghosttui.data.fingerprint import recorded_fingerprint
from ghosttui.session.session import Session
name, path, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
opens, lookups = [], []
for _ in range(repeats):
    started = time.perf_counter()
    with Session.open(name, writable=False) as session:
        session.store.labels()
    opens.append(time.perf_counter() - started)
    started = time.perf_counter()
    assert recorded_fingerprint(path) is not None
    lookups.append(time.perf_counter() - started)
print(json.dumps({"open_seconds": opens, "lookup_seconds": lookups}))
"""

CHANGED = r"""
import json, sys, time
from ghosttui.errors import SessionError
from ghosttui.session.session import Session
started = time.perf_counter()
try:
    Session.open(sys.argv[1], writable=False).close()
    refused = None
except SessionError as exc:
    refused = str(exc)
print(json.dumps({"seconds": time.perf_counter() - started, "refused": refused}))
"""


def run(script: str, *args: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}


def evict(path: Path, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-c", EVICT, str(path)], check=True, env=env)


def flip(path: Path, offset: int) -> None:
    """Invert one byte in place (twice restores it)."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="Keep the 3.4 GiB scan afterwards.")
    parser.add_argument("--repeats", type=int, default=5, help="Session opens to time.")
    parser.add_argument(
        "--detector", type=int, default=512, help="Detector side (512: the 3.4 GiB scan)."
    )
    options = parser.parse_args()

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"change-detection-206x34-q{options.detector}.h5"
    if not path.exists():
        command = ["simulate", str(path), "--size", str(options.detector)]
        subprocess.run([sys.executable, "-m", "ghosttui", *command], check=True)
    size = path.stat().st_size
    work = Path(tempfile.mkdtemp(prefix="ghosttui-change-"))
    env = {
        **os.environ,
        "GHOSTTUI_DATA_DIR": str(work / "data"),
        "GHOSTTUI_SESSIONS": str(work / "sessions"),
        "GHOSTTUI_CACHE_DIR": str(work / "cache"),
    }
    age = time.time() - path.stat().st_mtime
    if age < 3:  # the hash is recorded only for a file that was quiet before hashing
        time.sleep(3 - age)
    results: dict = {
        "file_bytes": size,
        "file": path.name,
        "load_average_before": round(os.getloadavg()[0], 2),  # other jobs on the machine
    }
    sampled_before = None
    try:
        for kind in ("sampled", "full"):
            evict(path, env)
            cold = run(HASH, kind, str(path), env=env)
            if kind == "full":  # a second full hash would use the record: start afresh
                for record in (work / "data" / "fingerprints").glob("*.json"):
                    record.unlink()
            warm = run(HASH, kind, str(path), env=env)
            if kind == "sampled":
                sampled_before = cold["fingerprint"]
            results[f"{kind}_hash"] = {
                "cold_seconds": round(cold["seconds"], 3),
                "warm_seconds": round(warm["seconds"], 3),
                "cold_gb_per_s": round(size / cold["seconds"] / 1e9, 2) if kind == "full" else None,
                "warm_gb_per_s": round(size / warm["seconds"] / 1e9, 2) if kind == "full" else None,
            }
        new = subprocess.run(
            [sys.executable, "-m", "ghosttui", "new", "big", "--data", str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert "created session" in new.stdout, new.stdout + new.stderr
        evict(path, env)  # an unchanged session must not need the file's bytes at all
        opened = run(OPEN, "big", str(path), str(options.repeats), env=env)
        results["open_unchanged_session"] = {
            "median_seconds": round(statistics.median(opened["open_seconds"]), 4),
            "all_seconds": [round(s, 4) for s in opened["open_seconds"]],
            "recorded_hash_lookup_median_ms": round(
                statistics.median(opened["lookup_seconds"]) * 1e3, 3
            ),
        }
        # one byte of the pattern in the middle of the scan, between the sampled windows
        offset = size // 2 + 1_000_000
        flip(path, offset)
        evict(path, env)
        sampled_after = run(HASH, "sampled", str(path), env=env)
        changed = run(CHANGED, "big", env=env)
        results["changed_byte"] = {
            "offset": offset,
            "sampled_fingerprint_noticed": sampled_after["fingerprint"] != sampled_before,
            "refused": changed["refused"] is not None,
            "seconds_to_refuse_cold": round(changed["seconds"], 3),
        }
    finally:
        if not options.keep:
            path.unlink(missing_ok=True)
        elif "changed_byte" in results:
            flip(path, results["changed_byte"]["offset"])
        subprocess.run(["rm", "-rf", str(work)], check=False)
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    save("change_detection" if options.detector == 512 else "change_detection_small", results)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
