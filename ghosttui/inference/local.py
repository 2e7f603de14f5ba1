"""The single-process engine: the scans of a series one after another, in this process."""

from __future__ import annotations

import time

import torch

from ghosttui.inference.blocks import ModelBundle, classify_range, plan_scan
from ghosttui.inference.report import Reporter, ScanOutcome
from ghosttui.inference.series import ScanRef
from ghosttui.inference.writer import SeriesWriter
from ghosttui.patterns.cache import open_or_build
from ghosttui.patterns.settings import PreprocessSettings


def predict_local(
    refs: list[ScanRef],
    bundle: ModelBundle,
    settings: PreprocessSettings,
    device: torch.device,
    writer: SeriesWriter,
    reporter: Reporter,
) -> list[ScanOutcome]:
    """Classify ``refs`` in order and write each as soon as it is finished."""
    model = bundle.build(device)
    outcomes = []
    for ref in refs:
        started = time.perf_counter()
        plan = plan_scan(ref, settings)
        done = 0

        def progress(n: int) -> None:
            nonlocal done
            reporter.advance(n - done)
            done = n

        probabilities = classify_range(
            plan, settings, model, device, 0, ref.n_patterns, progress=progress
        ).reshape(*ref.shape[:2], -1)
        seconds = time.perf_counter() - started
        writer.write(
            ref,
            probabilities,
            engine="single process",
            route="cache" if plan.cache else "raw",
            seconds=round(seconds, 3),
        )
        outcome = ScanOutcome(ref, probabilities, seconds)
        reporter.scan_done(outcome)
        outcomes.append(outcome)
    return outcomes


def preprocess_local(
    refs: list[ScanRef],
    settings: PreprocessSettings,
    reporter: Reporter,
    *,
    cache_dir: str | None = None,
    rebuild: bool = False,
) -> list[ScanOutcome]:
    """Build (or find) the pattern cache of every scan, one after another."""
    from ghosttui.inference.blocks import cache_file

    outcomes = []
    for ref in refs:
        started = time.perf_counter()
        reused = cache_file(ref, settings, cache_dir).exists() and not rebuild
        done = 0

        def progress(n: int, _total: int) -> None:
            nonlocal done
            reporter.advance(n - done)
            done = n

        cache = open_or_build(
            ref.path,
            ref.options,
            settings,
            cache_dir=cache_dir,
            progress=progress,
            rebuild=rebuild,
        )
        cache.close()
        if reused:
            reporter.found_done(ref.n_patterns - done)
        else:
            reporter.advance(ref.n_patterns - done)
        outcome = ScanOutcome(
            ref, None, time.perf_counter() - started, cache=str(cache.path), reused=reused
        )
        reporter.scan_done(outcome)
        outcomes.append(outcome)
    return outcomes
