"""Markdown from benchmarks/results/*.json: docs/benchmarks.md and the summary in README.md.

    python benchmarks/report.py          # print the tables
    python benchmarks/report.py --write  # rewrite docs/benchmarks.md and README.md's summary

README.md's summary sits between the markers ``<!-- bench:start -->`` and
``<!-- bench:end -->``; nothing else in README.md is touched.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = RESULTS.parent.parent
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def bench_summary(doc: dict) -> tuple[list[str], list[int], dict]:
    """``ghosttui bench``'s own (strategies, budgets, {(budget, strategy): (mean, std, n)})."""
    from ghosttui.loop.bench import BenchRun, summary_table

    return summary_table([BenchRun(**r) for r in doc["runs"]])


def bench_table(doc: dict) -> str:
    runs = doc["runs"]
    strategies, budgets, cells = bench_summary(doc)
    lines = ["| labels | " + " | ".join(strategies) + " |", "|---:|" + "---:|" * len(strategies)]
    for budget in budgets:
        row = [f"{cells[budget, s][0]:.1%} ± {cells[budget, s][1]:.1%}" for s in strategies]
        lines.append(f"| {budget} | " + " | ".join(row) + " |")
    seconds = {s: sum(r["seconds"] for r in runs if r["strategy"] == s) for s in strategies}
    total = doc.get("settings", {}).get("total_seconds")
    lines.append("")
    lines.append(
        "Time: "
        + ", ".join(f"{s} {t / 60:.1f} min" for s, t in seconds.items())
        + (f"; whole bench {total / 60:.1f} min" if total else "")
    )
    return "\n".join(lines)


def detail_tables() -> str:
    out: list[str] = []
    emit = out.append
    for geometry in ("wall", "stripes", "needles"):
        doc = load(f"bench_{geometry}")
        if doc:
            emit(f"### bench, {geometry} (whole-map accuracy, mean ± std over seeds)\n")
            emit(bench_table(doc) + "\n")
    doc = load("preprocess_speed")
    if doc:
        g, p = doc["ghosttui"], doc["paper_png_route"]
        emit("### preprocessing, 206x34 scan of 512x512 uint16 (3.4 GiB)\n")
        emit("| route | patterns/s | peak RSS | whole scan |\n|---|---:|---:|---:|")
        emit(
            f"| ghosttui cache (64x64, hot pixels, vBF/ADF) | {g['patterns_per_second']:.0f} | "
            f"{g['peak_rss_mib']:.0f} MiB | {g['seconds']:.1f} s |"
        )
        emit(
            f"| paper: one PNG per pattern (matplotlib) | {p['patterns_per_second']:.1f} | - | "
            f"{p['estimated_seconds_whole_scan']:.0f} s (from {p['patterns']} patterns) |"
        )
        emit(f"\nSpeed-up: {doc['speedup']}x\n")
    doc = load("change_detection")
    if doc:
        emit(f"### change detection, {doc['file_bytes'] / 2**30:.1f} GiB scan\n")
        emit(change_detection_table(doc) + "\n")
    for name in ("input_size", "input_size_q512"):
        doc = load(name)
        if not doc:
            continue
        seeds = len({r["seed"] for r in doc["runs"]})
        emit(
            f"### input size: {doc.get('detector', 128)}x{doc.get('detector', 128)} detector, "
            f"{doc['labels']} random labels, {seeds} seeds\n"
        )
        emit(
            "| size | accuracy | train s | predict patterns/s | cache patterns/s |\n|---:|---:|---:|---:|---:|"
        )
        for size, s in doc["summary"].items():
            emit(
                f"| {size} | {s['accuracy_mean']:.2%} ± {s['accuracy_std']:.2%} | {s['train_s']} | "
                f"{s['predict_per_s']:.0f} | {s['cache_per_s']:.0f} |"
            )
        emit("")
    doc = load("model_accuracy_wall")
    if doc:
        emit("### GhostNet vs the paper's network, same random labels\n")
        emit(
            "`paper_256`: the paper's ThreeLayerCnn as published (256x256 inputs, 8.4 M parameters, "
            "its optimiser settings), seed 0 only; `paper_64`: the same architecture on ghosttui's "
            "64x64 inputs (0.55 M parameters). `python benchmarks/model_accuracy.py`; labels are "
            "random positions answered from the truth (a draw missing a class is redrawn).\n"
        )
        names = sorted(doc["summary"])
        emit("| labels | " + " | ".join(names) + " |\n|---:|" + "---:|" * len(names))
        budgets = sorted({int(b) for n in names for b in doc["summary"][n]})
        for b in budgets:
            cells = []
            for n in names:
                s = doc["summary"][n].get(str(b)) or doc["summary"][n].get(b)
                cells.append(
                    f"{s['mean']:.1%} ± {s['std']:.1%} (n={s['runs']}, train {s['train_s']} s, "
                    f"{s['predict_per_s']:.0f}/s)"
                    if s
                    else "-"
                )
            emit(f"| {b} | " + " | ".join(cells) + " |")
        emit("")
    for name in ("tui_latency", "tui_latency_idle"):
        doc = load(name)
        if doc:
            lat = doc["latency_ms"]
            quiet = doc.get("until_quiet_ms", {})
            emit(
                f"### {name}: {doc['terminal']}, background training {doc['background_training']}\n"
            )
            emit(
                f"keystroke to next pattern drawn: p50 {lat['p50']} ms, p95 {lat['p95']} ms, "
                f"p99 {lat['p99']} ms, max {lat['max']} ms over {doc['full_pattern_redraws']} "
                f"patterns; to the screen quiet again: p50 {quiet.get('p50')} ms, "
                f"p95 {quiet.get('p95')} ms; start-up {doc['startup_seconds']} s\n"
            )
    return "\n".join(out)


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "not measured" if value is None else f"{value:{spec}}{unit}"


def summary_table() -> str:
    """The README's table: each target of the issues next to what was measured."""
    rows: list[tuple[str, str, str]] = []
    wall = load("bench_wall")
    if wall:
        _, budgets, cells = bench_summary(wall)
        hybrid, hybrid_sd, _ = cells[50, "hybrid"]
        random50 = cells[50, "random"][0]
        rows.append(
            (
                "`bench`, `wall` scan, hybrid at 50 labels (3 seeds)",
                f"{hybrid:.1%} ± {hybrid_sd:.1%}, random {random50:.1%} (+{100 * (hybrid - random50):.1f} points)",
                ">= 97%, >= random + 1 point",
            )
        )
        gb = [cells[b, "grid-boundary"][0] for b in budgets]
        rd = [cells[b, "random"][0] for b in budgets]
        rows.append(
            (
                "grid-boundary vs random at " + "/".join(map(str, budgets)) + " labels",
                " / ".join(f"{g:.1%} vs {r:.1%}" for g, r in zip(gb, rd, strict=True)),
                "grid-boundary >= random at every budget",
            )
        )
        total = wall["settings"].get("total_seconds")
        rows.append(
            (
                "whole bench (3 strategies x 3 budgets x 3 seeds)",
                _fmt(total / 60 if total else None, ".1f", " min"),
                "< 30 min",
            )
        )
    for geometry in ("stripes", "needles"):
        doc = load(f"bench_{geometry}")
        if doc:
            strategies, budgets, cells = bench_summary(doc)
            budget = budgets[-1]
            means = [cells[budget, s][0] for s in strategies]
            rows.append(
                (
                    f"`bench`, `{geometry}` scan, {budget} labels (3 seeds)",
                    ", ".join(f"{s} {m:.1%}" for s, m in zip(strategies, means, strict=True))
                    + " (many fading walls: see docs)",
                    "report",
                )
            )
    model = load("model_accuracy_wall")
    if model:
        ghost = model["summary"].get("ghostnet", {})
        g100 = ghost.get("100") or ghost.get(100)
        paper = model["summary"].get("paper_64", {})
        p100 = paper.get("100") or paper.get(100)
        if g100:
            rows.append(
                (
                    "100 random labels, `ghosttui train`, whole-map accuracy (3 seeds)",
                    f"{g100['mean']:.1%} ± {g100['std']:.1%}"
                    + (
                        f" (the paper's architecture on the same 64x64 inputs: {p100['mean']:.1%})"
                        if p100
                        else ""
                    ),
                    ">= 97%",
                )
            )
            rows.append(
                (
                    "one training round on 100 labels (CPU)",
                    f"{g100['train_s']:.0f} s",
                    "< 60 s",
                )
            )
            rows.append(
                (
                    "whole-scan prediction, 206x34 = 7004 patterns (CPU)",
                    f"{g100['predict_per_s']:.0f} patterns/s ({7004 / g100['predict_per_s']:.1f} s)",
                    ">= 640 patterns/s (the paper: 11 s on its GPU)",
                )
            )
        seed0 = [r for r in model["runs"] if r["seed"] == 0 and "paper_256" in r]
        if seed0:
            rows.append(
                (
                    "GhostNet vs the paper's network as published (256x256 input, "
                    f"{seed0[0]['paper_256']['parameters'] / 1e6:.1f} M parameters), seed 0, "
                    + "/".join(str(r["budget"]) for r in seed0)
                    + " labels",
                    " / ".join(
                        f"{r['ghostnet']['accuracy']:.1%} vs {r['paper_256']['accuracy']:.1%}"
                        for r in seed0
                    )
                    + "; training "
                    + " / ".join(
                        f"{r['ghostnet']['seconds_train']:.0f} s vs {r['paper_256']['seconds_train']:.0f} s"
                        for r in seed0
                    )
                    + f"; prediction {np.mean([r['ghostnet']['patterns_per_second'] for r in seed0]):.0f}"
                    f" vs {np.mean([r['paper_256']['patterns_per_second'] for r in seed0]):.0f} patterns/s",
                    "more accurate and faster",
                )
            )
    pre = load("preprocess_speed")
    if pre:
        g, p = pre["ghosttui"], pre["paper_png_route"]
        rows.append(
            (
                "preprocessing 206x34 x 512x512 uint16 (3.4 GiB) into the cache",
                f"{g['patterns_per_second']:.0f} patterns/s, peak RSS {g['peak_rss_mib']:.0f} MiB",
                ">= 500 patterns/s, < 1 GiB",
            )
        )
        rows.append(
            (
                "the paper's route on the same scan (a PNG per pattern)",
                f"{p['patterns_per_second']:.0f} patterns/s: ghosttui is {pre['speedup']}x faster",
                "report the ratio",
            )
        )
    for name, label in (
        ("tui_latency", "keystroke to next pattern drawn, 160x48 half-block, training running"),
        ("tui_latency_idle", "the same, no training"),
    ):
        doc = load(name)
        if doc:
            lat = doc["latency_ms"]
            rows.append(
                (
                    label,
                    f"p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms ({doc['keystrokes']} keys)",
                    "p95 < 50 ms" if name == "tui_latency" else "-",
                )
            )
            if name == "tui_latency":
                rows.append(
                    (
                        "start-up of `ghosttui label` on a cached session",
                        f"{doc['startup_seconds']:.2f} s",
                        "< 2 s",
                    )
                )
    lines = ["| what | measured | target |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def change_detection_table(doc: dict) -> str:
    full, sampled = doc["full_hash"], doc["sampled_hash"]
    opened, changed = doc["open_unchanged_session"], doc["changed_byte"]
    return "\n".join(
        [
            "| step | time |",
            "|---|---:|",
            f"| first full hash, file not in the page cache | {full['cold_seconds']:.2f} s "
            f"({full['cold_gb_per_s']:.2f} GB/s) |",
            f"| first full hash, file in the page cache | {full['warm_seconds']:.2f} s "
            f"({full['warm_gb_per_s']:.2f} GB/s) |",
            f"| former sampled fingerprint, cold / warm | {sampled['cold_seconds']:.3f} s / "
            f"{sampled['warm_seconds']:.3f} s |",
            f"| open an unchanged session (median of {len(opened['all_seconds'])}) | "
            f"{opened['median_seconds'] * 1e3:.1f} ms |",
            f"| of which the recorded-hash lookup | {opened['recorded_hash_lookup_median_ms']:.2f} ms |",
            f"| one byte changed mid-file: session refused after | {changed['seconds_to_refuse_cold']:.2f} s |",
            "",
            f"The changed byte was {'noticed' if changed['refused'] else 'NOT noticed'} by the full "
            f"hash and {'noticed' if changed['sampled_fingerprint_noticed'] else 'missed'} by the "
            "former sampled fingerprint.",
        ]
    )


def change_detection_note() -> str:
    doc = load("change_detection")
    if not doc:
        return "(not measured yet: `python benchmarks/change_detection.py`)"
    full, opened = doc["full_hash"], doc["open_unchanged_session"]
    gib = doc["file_bytes"] / 2**30
    load_average = doc.get("load_average_before")
    busy = (
        f", measured at load average {load_average} on {doc.get('machine', {}).get('cpus', '?')} cores,"
        if load_average is not None
        else ", measured on a machine busy with other jobs (load not recorded; re-run on a quiet one),"
    )
    return (
        f"On the {gib:.1f} GiB scan{busy} the first hash took {full['cold_seconds']:.1f} s "
        f"with the file coming from disk and {full['warm_seconds']:.1f} s from the page cache "
        f"(XXH3 itself hashes about 9 GB/s on one core, so on a quiet machine the first hash "
        f"costs about one read of the file); opening the unchanged session afterwards took "
        f"{opened['median_seconds'] * 1e3:.0f} ms, of which the recorded-hash lookup was "
        f"{opened['recorded_hash_lookup_median_ms']:.2f} ms, whatever the file's size"
    )


def machine_line() -> str:
    for name in ("model_accuracy_wall", "preprocess_speed", "tui_latency", "input_size"):
        doc = load(name)
        if doc and "machine" in doc:
            m = doc["machine"]
            gpu = m.get("cuda") or "no GPU"
            return (
                f"{m.get('cpu', 'CPU')}, {m.get('cpus')} cores, {gpu}; Python {m.get('python')}, "
                f"torch {m.get('torch')} ({m.get('torch_threads')} threads)"
            )
    return "this project's 2-core machine, no GPU"


DOC_HEAD = """# Benchmarks

Every number here was measured on {machine}. Results (raw JSON) are in
`benchmarks/results/`; this page is generated from them by `python benchmarks/report.py --write`.
Simulated data lives in `$GHOSTTUI_BENCH_DATA` (default `/tmp/ghosttui-bench`) and is made
once by `ghosttui simulate`.

| benchmark | command |
|---|---|
| strategies, `wall` | `ghosttui bench wall.h5 --strategy random,grid-boundary,hybrid --budget 50,100,250 --seed 0,1,2 --json benchmarks/results/bench_wall.json --plot docs/bench_wall.png` (on `ghosttui simulate wall.h5`) |
| strategies, `stripes`, `needles` | the same with `--budget 100` on `ghosttui simulate G.h5 --geometry G` |
| GhostNet vs the paper's network | `python benchmarks/model_accuracy.py` |
| input size | `python benchmarks/input_size.py` |
| preprocessing | `python benchmarks/preprocess_speed.py` |
| change detection (3.4 GiB scan) | `python benchmarks/change_detection.py` |
| terminal latency | `python benchmarks/tui_latency.py` and `--no-training` |

## Summary

{summary}

## Details

{details}

## Design decisions and the measurements behind them

**Training: which model to keep.** A round trains on the labels minus a 20% validation split
(never trained on) with a one-cycle learning-rate schedule. Keeping the model with the lowest
validation loss (early stopping) means choosing on 2-10 patterns in the first rounds, and it
was a gamble: in the `wall` bench, grid-boundary at 50 labels, seed 1, it kept an under-trained
epoch-23 model that scored 83.2% (seeds 0 and 2: 98.9%, 97.4%). Measured on the default scan
(206x34, `wall`), budget 50, seeds 0/1/2, one torch thread per run:

| which model | grid-boundary | random | time per run |
|---|---|---|---|
| lowest validation loss, 80 epochs, patience 20 (before) | 98.7 / 98.6 / 98.0 (98.4) | 97.7 / 96.9 / 97.4 (97.3) | 33-35 s |
| lowest validation loss after epoch 30 of 50, patience 10 | 98.6 / 94.9 / 98.9 (97.4) | 98.7 / 96.9 / 97.9 (97.8) | 30-31 s |
| end of the schedule, 80 epochs | 98.7 / 98.6 / 99.0 (98.8) | 97.1 / 97.0 / 98.0 (97.4) | 46-48 s |
| **end of the schedule, 50 epochs (default)** | 98.8 / 98.7 / 99.1 (98.9) | 97.8 / 96.9 / 97.9 (97.6) | 32-34 s |

The validation split still measures the kept model (`val accuracy` in `status` and the app);
`keep = "best"` in `session.toml` turns early stopping back on.

**Keystroke latency: garbage collection.** With torch, numpy, Textual and a session loaded,
each full (generation-2) collection in the app took 80-200 ms and came every 2-3 s while
patterns were drawn, so about one keystroke in ten waited for one (tui_latency before the
fix: p50 32 ms, p95 214 ms with training, 225 ms without). The app now freezes what start-up
made and runs full collections only after a second without a key (`ghosttui/tui/idle_gc.py`).

**GhostNet and the paper's architecture.** Against the paper's network as published (256x256
inputs) GhostNet is as accurate or better at every budget and trains 25-32x and predicts ~16x
faster on this CPU. Most of that speed comes from the 64x64 input: the paper's architecture
retargeted to 64x64 inputs (`paper_64`) is within GhostNet's seed-to-seed spread at 50 and 100
labels, better at 250 (98.8% vs 98.4%), and predicts about twice as fast on the CPU. GhostNet's
measured advantage over it is stability at 100 labels (98.3% ± 0.4% vs 97.5% ± 0.7%) and 2.6x fewer
parameters; an honest summary is that both small networks do the job and the input size matters
more than the architecture.

**Input size: why 64x64.** On the simulated scans 32x32 inputs are as accurate as 64x64 (100
random labels, 3 seeds: 98.4% vs 98.3% from a 128x128 detector, 98.2% vs 98.0% from a 512x512
one; 128x128 inputs: 98.2%) and train and predict about 3-4x faster. 64 stays the default
anyway, as a judgement the simulation cannot settle: sum pooling keeps a faint disk's counts,
but at 32x32 a 512x512 K3 pattern is pooled 16x16, so a small ghost disk next to a Bragg disk
merges with it into one pixel, while 64x64 keeps them apart; and every speed target is met at
64 (a 100-label round in 12 s, prediction over 1000 patterns/s). Where speed matters more, `ghosttui
new NAME --data FILE --size 32`.

**Why `stripes` and `needles` score lower.** Their many walls each carry a fade: next to a
wall the ghost disks weaken towards nothing while the truth still names the polar class. Of all
positions, the share that is polar with ghosts below a quarter of full strength is 1.4% in
`wall`, 9.5% in `stripes` and 9.9% in `needles` (below half strength: 3.4%, 22%, 21%), so no
labelling strategy can bring those maps to the `wall` map's accuracy, and at 100 labels the
strategies are within each other's seed-to-seed spread there.

**Change detection: a full hash, recorded.** A session refuses a data file that changed, and
the pattern cache is keyed by the file's content. The former fingerprint sampled 33 windows of
64 KiB of files over 64 MiB, so a changed pattern between two windows (in a 79 MB file) went
unnoticed and the stale cache was served. Now the fingerprint is the XXH3-128 hash of every
byte, computed once per file version and recorded in `~/.local/share/ghosttui/fingerprints/`
with the file's device, inode, size, modification and change times (nanoseconds). A later open
compares one `stat` with the record and reads nothing: any write changes the change time, which
no tool can set back (`cp -p` and `rsync -t` restore the modification time but make a new
inode or a new change time), and a record is trusted only if the file had been quiet for 2 s
before hashing began (time stamps come from a coarse clock). {change_detection}. XXH3 over
SHA-256 or BLAKE2: the hash detects accidental change, not an adversary, and ran 11x faster
than SHA-256 (8.8 against 0.78 GB/s on this CPU, in memory), so the first hash costs little
more than reading the file. Sessions made with the sampled fingerprint are checked with it and
upgraded to the full hash when next opened for writing.

**Earlier measurements** (taken during development with the earlier training settings, not
re-run since; they fixed the defaults): learning rate 3e-3 collapsed some 50-label rounds while
1e-3 was stable; warm-starting a round from the previous model scored 98.2% against 99.0% from
scratch (hybrid, 50 labels), so rounds start from scratch (`warm_start = true` to change);
90-degree rotations with the horizontal/vertical labels swapped lowered accuracy (97.7%) and are
opt-in (`rotation_swap`); torch on 2 threads trained at 84 ms/step and predicted ~1200
patterns/s against 133 ms/step and 664 patterns/s on one thread: the app trains on cores - 1
threads so that the interface keeps a core.
"""


def write() -> None:
    summary = summary_table()
    images = "\n".join(
        f"![bench {g}](bench_{g}.png)"
        for g in ("wall", "stripes", "needles")
        if (ROOT / "docs" / f"bench_{g}.png").exists()
    )
    doc = DOC_HEAD.format(
        machine=machine_line(),
        summary=summary,
        details=detail_tables(),
        change_detection=change_detection_note(),
    )
    doc += ("\n## Learning curves\n\n" + images + "\n") if images else ""
    (ROOT / "docs" / "benchmarks.md").write_text(doc)
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    block = f"{START}\nMeasured on {machine_line()}.\n\n{summary}\n{END}"
    readme.write_text(head + block + tail)
    print("wrote docs/benchmarks.md and README.md's summary")


def main() -> None:
    import sys

    if "--write" in sys.argv[1:]:
        write()
    else:
        print(summary_table() + "\n\n" + detail_tables())


if __name__ == "__main__":
    main()
