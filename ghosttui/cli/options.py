"""Options shared by several commands, and the progress bar.

Imported whenever ``ghosttui`` starts (even for ``--help``): module level keeps to
typer and rich's console; everything else is imported where it is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from ghosttui.patterns.settings import DEFAULT_SIZE

if TYPE_CHECKING:
    from ghosttui.data.options import LoadOptions
    from ghosttui.patterns.settings import PreprocessSettings

console = Console()
err_console = Console(stderr=True)

LOAD = "Reading the data"
PRE = "Preprocessing"

Dataset = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="HDF5 path of the 4D (or 3D stack) dataset, when several.",
        rich_help_panel=LOAD,
    ),
]
ScanShape = Annotated[
    str | None,
    typer.Option(
        "--scan",
        help="Scan shape RXxRY: for stacks (N, Qx, Qy), .mib without a .hdr, raw.",
        rich_help_panel=LOAD,
    ),
]
Detector = Annotated[
    str | None,
    typer.Option(
        "--detector", help="Detector shape QXxQY of a raw binary file.", rich_help_panel=LOAD
    ),
]
Dtype = Annotated[
    str | None,
    typer.Option(
        "--dtype",
        help="Numpy dtype of a raw binary file, e.g. uint16, '>u2', float32.",
        rich_help_panel=LOAD,
    ),
]
Offset = Annotated[
    int,
    typer.Option("--offset", help="Header bytes before the first raw frame.", rich_help_panel=LOAD),
]
Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="Override detection: npy, hdf5, raw, dm, mib, empad, gatan_K2_bin.",
        rich_help_panel=LOAD,
    ),
]
Size = Annotated[
    int,
    typer.Option(
        "--size",
        help="Model input side in pixels (patterns are pooled to SIZE x SIZE).",
        rich_help_panel=PRE,
    ),
]
Pooling = Annotated[
    str, typer.Option("--pooling", help="sum (area) or max pooling.", rich_help_panel=PRE)
]
Crop = Annotated[
    str | None,
    typer.Option(
        "--crop", help="Detector window QX0:QX1,QY0:QY1 before pooling.", rich_help_panel=PRE
    ),
]
Transform = Annotated[
    str,
    typer.Option(
        "--transform", help="Intensity transform: log, sqrt or linear.", rich_help_panel=PRE
    ),
]
Normalise = Annotated[
    str,
    typer.Option(
        "--normalise",
        help="robust (per pattern: median 0, 99.5th percentile 1) or none.",
        rich_help_panel=PRE,
    ),
]
HotPixels = Annotated[
    bool,
    typer.Option(
        "--hot-pixels/--no-hot-pixels",
        help="Replace hot and dead detector pixels.",
        rich_help_panel=PRE,
    ),
]
AllowBlank = Annotated[
    bool,
    typer.Option(
        "--allow-blank",
        help="Keep all-zero patterns (blanked beam) instead of stopping.",
        rich_help_panel=PRE,
    ),
]


def load_options(
    dataset: str | None,
    scan: str | None,
    detector: str | None,
    dtype: str | None,
    offset: int,
    format: str | None,
) -> LoadOptions:
    from ghosttui.data.options import LoadOptions

    return LoadOptions.from_cli(dataset, scan, detector, dtype, offset, format)


def preprocess_settings(
    size: int = DEFAULT_SIZE,
    pooling: str = "sum",
    crop: str | None = None,
    transform: str = "log",
    normalise: str = "robust",
    hot_pixels: bool = True,
    allow_blank: bool = False,
) -> PreprocessSettings:
    from ghosttui.patterns.settings import PreprocessSettings, parse_crop

    return PreprocessSettings(
        size=size,
        pooling=pooling,
        crop=parse_crop(crop),
        transform=transform,
        normalise=normalise,
        hot_pixels=hot_pixels,
        allow_blank=allow_blank,
    )


@contextmanager
def progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr; yields ``update(done, total)``.

    The bar appears at the first update: work that finds its result ready (a cache
    that exists) reports no progress and shows nothing.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
    task: list[Any] = []

    def update(done: int, total: int) -> None:
        if not task:
            progress.start()
            task.append(progress.add_task(description, total=total, rate=""))
        elapsed = progress.tasks[0].elapsed or 0
        rate = f"{done / elapsed:,.0f}/s" if elapsed > 0 else ""
        progress.update(task[0], completed=done, total=total, rate=rate)

    try:
        yield update
    finally:
        if task:
            progress.stop()


HASH_PROGRESS_BYTES = 256 * 1024 * 1024  # smaller files hash in well under a second


@contextmanager
def hash_progress(path: Path) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar for the first content hash of a large file; None when none is needed."""
    from ghosttui.data.fingerprint import recorded_fingerprint

    try:
        large = path.stat().st_size >= HASH_PROGRESS_BYTES
    except OSError:
        large = False
    if not large or recorded_fingerprint(path) is not None:
        yield None
        return
    with progress_bar("content hash (once)") as update:
        yield update
