"""How ``predict`` and ``preprocess`` show a series run: one bar over its patterns, a line a scan."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ghosttui.cli.options import console, err_console
from ghosttui.inference.report import Reporter, ScanOutcome
from ghosttui.inference.series import ScanRef


class SeriesProgress(Reporter):
    """A rich bar over the patterns of the whole series (on stderr), lines on stdout."""

    def __init__(
        self,
        progress: Progress,
        verb: str,
        classes: list[str] | None = None,
        input_size: int | None = None,
    ) -> None:
        self.progress = progress  # started when the series is known, not before
        self.verb = verb
        self.classes = classes  # predict: the class shares of each scan
        self.input_size = input_size  # preprocess: the cache's pattern side
        self.task = progress.add_task(verb, total=None, rate="", scans="", start=False)
        self.n_scans = 0
        self.scans_done = 0
        self.started = False

    def start(self, total_patterns: int, n_scans: int, skipped: list[ScanRef]) -> None:
        self.n_scans = n_scans
        self.scans_done = len(skipped)
        done = sum(r.n_patterns for r in skipped)
        self.progress.reset(self.task, total=total_patterns, completed=done)
        self._update_fields()
        if skipped:
            self.note(
                f"{len(skipped)} of {n_scans} scans already done by this model: skipped "
                f"({', '.join(r.name or r.label for r in skipped[:3])}"
                f"{', ...' if len(skipped) > 3 else ''})"
            )

    def advance(self, patterns: int) -> None:
        if not self.started:  # drawn once there is work: no bar when everything was done
            self.progress.start()
            self.started = True
        self.progress.advance(self.task, patterns)
        self._update_fields()

    def found_done(self, patterns: int) -> None:
        self.progress.advance(self.task, patterns)
        self._update_fields()

    def _update_fields(self) -> None:
        task = self.progress.tasks[self.task]
        speed = task.speed
        self.progress.update(
            self.task,
            rate=f"{speed:,.0f} patterns/s" if speed else "",
            scans=f"{self.scans_done}/{self.n_scans} scans",
        )

    def scan_done(self, outcome: ScanOutcome) -> None:
        self.scans_done += 1
        self._update_fields()
        ref = outcome.ref
        size = f"{ref.shape[0]}x{ref.shape[1]}"
        if outcome.probabilities is not None and self.classes:
            shares = ", ".join(
                f"{c} {s:.1%}" for c, s in zip(self.classes, outcome.class_shares(), strict=True)
            )
            console.print(f"{ref.label}: {size} -> {shares}", highlight=False)
        elif outcome.cache is not None:
            rate = ref.n_patterns / outcome.seconds if outcome.seconds > 0 else 0.0
            state = (
                "reused"
                if outcome.reused
                else f"built in {outcome.seconds:.1f} s, {rate:,.0f} patterns/s"
            )
            console.print(
                f"{ref.label}: cache {outcome.cache} ({size} patterns of "
                f"{self.input_size}x{self.input_size}): {state}",
                highlight=False,
            )

    def note(self, text: str) -> None:
        console.print(text, highlight=False)


@contextmanager
def series_progress(
    verb: str, classes: list[str] | None = None, input_size: int | None = None
) -> Iterator[SeriesProgress]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[scans]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    progress = Progress(*columns, console=err_console)
    reporter = SeriesProgress(progress, verb, classes, input_size)
    try:
        yield reporter
    except BaseException:
        # an error is one line: the bar is not drawn again beside it
        progress.update(reporter.task, visible=False)
        raise
    finally:
        if reporter.started:
            progress.stop()
