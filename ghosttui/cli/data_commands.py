"""Commands about data files: info, simulate, preprocess."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ghosttui.cli import app
from ghosttui.cli.options import (
    AllowBlank,
    Crop,
    Dataset,
    Detector,
    Dtype,
    Format,
    HotPixels,
    Normalise,
    Offset,
    Pooling,
    ScanShape,
    Size,
    Transform,
    console,
    err_console,
    load_options,
    preprocess_settings,
    progress_bar,
)
from ghosttui.errors import GhostError
from ghosttui.patterns.settings import DEFAULT_SIZE

if TYPE_CHECKING:
    from ghosttui.data.formats import AmbiguousScan
    from ghosttui.data.options import LoadOptions
    from ghosttui.data.scan import Scan


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


@app.command()
def info(
    file: Annotated[
        Path, typer.Argument(help="A 4D-STEM file (.npy, .h5, .emd, .dm4, .mib, ...).")
    ],
    dataset: Dataset = None,
    scan: ScanShape = None,
    detector: Detector = None,
    dtype: Dtype = None,
    offset: Offset = 0,
    format: Format = None,
    preview: Annotated[
        bool, typer.Option("--preview/--no-preview", help="Show a virtual bright-field image.")
    ] = True,
) -> None:
    """Show what a file holds: format, (Rx, Ry, Qx, Qy), dtype, size, calibration, a vBF preview.

    A file that needs an option to become one 4D scan (a 3D stack, several 4D datasets)
    is described, with the option to add.
    """
    from rich.markup import escape
    from rich.table import Table

    from ghosttui.data.formats import FORMAT_NAMES, PY4DSTEM_TYPES, AmbiguousScan, detect_format
    from ghosttui.data.formats import open_scan as open_scan

    options = load_options(dataset, scan, detector, dtype, offset, format)
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan")
    table.add_column()
    table.add_row("file", escape(str(file)))
    try:
        if file.is_file() and detect_format(file, options) in PY4DSTEM_TYPES.values():
            with err_console.status("reading with py4DSTEM (its import takes a few seconds)"):
                data = open_scan(file, options)
        else:
            data = open_scan(file, options)
    except AmbiguousScan as exc:
        table.add_row("format", FORMAT_NAMES[detect_format(file, options)])
        table.add_row("size", f"{_human_bytes(file.stat().st_size)} on disk")
        console.print(table)
        _print_candidates(file, exc)
        return
    with data:
        _print_scan(file, data, options, table)
        if preview:
            _print_preview(data)


def _print_candidates(file: Path, exc: AmbiguousScan) -> None:
    """What an ambiguous file holds, and the option that makes it one scan."""
    from rich.markup import escape
    from rich.table import Table

    holds = Table(title="arrays that could be the scan", title_justify="left")
    holds.add_column("dataset", overflow="fold")
    for column in ("shape", "dtype", "patterns"):
        holds.add_column(column, justify="right")
    for item in exc.datasets:
        n = item.shape[0] * item.shape[1] if len(item.shape) == 4 else item.shape[0]
        holds.add_row(
            escape(item.name or "(the whole file)"),
            "(" + ", ".join(str(v) for v in item.shape) + ")",
            item.dtype,
            f"{n:,}",
        )
    console.print(holds)
    first = exc.datasets[0]
    if "--dataset" in exc.option:
        example = exc.option.replace("PATH", first.name or "PATH")
        what = "add --dataset with one of the datasets above"
    else:
        example = exc.option
        what = f"add --scan RXxRY with RX x RY = {first.shape[0]:,} patterns"
    if "--scan" in exc.option:
        what += " (the scan's rows x columns; the file does not say)"
    console.print(
        f"[bold]to read it as one 4D scan[/], {what}, e.g.\n"
        f"  ghosttui info {escape(str(file))} {escape(example)}"
    )


def _print_scan(file: Path, data: Scan, options: LoadOptions, table: Any) -> None:
    from rich.markup import escape

    from ghosttui.patterns.cache import cache_path_for

    rx, ry, qx, qy = data.shape
    where = f"  (dataset {data.dataset})" if data.dataset else ""
    table.add_row("format", escape(data.format + where))
    table.add_row(
        "shape", f"(Rx, Ry, Qx, Qy) = ({rx}, {ry}, {qx}, {qy})   {data.n_patterns:,} patterns"
    )
    table.add_row("dtype", str(data.dtype))
    table.add_row(
        "size",
        f"{_human_bytes(file.stat().st_size)} on disk, {_human_bytes(data.nbytes)} of patterns",
    )
    table.add_row("calibration", escape(data.calibration.describe()))
    cache, fingerprint = cache_path_for(file, options, preprocess_settings())
    table.add_row("fingerprint", fingerprint)
    state = "ready" if cache.exists() else "not built yet"
    table.add_row("cache", f"{escape(str(cache))} ({state})")
    console.print(table)


def _print_preview(data: Scan) -> None:
    from ghosttui.patterns.preview import quick_virtual_images
    from ghosttui.render.cells import CellImage
    from ghosttui.render.colour import Contrast

    rx, ry = data.scan_shape
    preview = quick_virtual_images(data)
    every = f", one position in {preview.step} along each axis" if preview.step > 1 else ""
    console.print(f"[bold cyan]virtual bright field[/] ({rx}x{ry} scan{every}; Rx down, Ry across)")
    console.print(
        CellImage(Contrast(mode="linear", low=0.5, high=99.5).to_rgb(preview.vbf), 64, 32)
    )
    if preview.non_finite:
        at = preview.first_non_finite
        console.print(
            f"[bold yellow]{preview.non_finite} of the patterns shown hold NaN or Inf[/] "
            f"(the first at {at}; drawn as zeros): preprocessing refuses such patterns"
        )


MS = "Multislice (--physics multislice)"


@app.command()
def simulate(
    out: Annotated[Path, typer.Argument(help="Output HDF5 file (/data 4D uint16, /truth int8).")],
    physics: Annotated[
        str,
        typer.Option(
            "--physics",
            help="kinematic (fast boracite-like ghost disks) or multislice (abTEM library "
            "of a polar perovskite; the one-time library build takes minutes).",
        ),
    ] = "kinematic",
    scan: Annotated[
        str | None,
        typer.Option("--scan", help="Scan shape RXxRY (default 206x34; multislice 120x60)."),
    ] = None,
    size: Annotated[int, typer.Option("--size", help="Detector side in pixels.")] = 128,
    seed: Annotated[
        int, typer.Option("--seed", help="Random seed; the scan is deterministic per seed.")
    ] = 0,
    geometry: Annotated[
        str, typer.Option("--geometry", help="wall, stripes, needles or patches.")
    ] = "wall",
    ghost_strength: Annotated[
        float | None,
        typer.Option(
            "--ghost-strength",
            help="Kinematic: ghost / neighbouring Bragg disk intensity, far from walls "
            "(default: the simulator's, 0.05).",
            show_default=False,
        ),
    ] = None,
    dose: Annotated[
        float | None,
        typer.Option(
            "--dose",
            help="Electrons per pattern (default: the simulator's, 50000; multislice 100000).",
            show_default=False,
        ),
    ] = None,
    truth_npy: Annotated[
        Path | None,
        typer.Option("--truth-npy", help="Also write the truth map as .npy (Rx, Ry) int8."),
    ] = None,
    structure: Annotated[
        str, typer.Option("--structure", help="pto (PbTiO3) or bto (BaTiO3).", rich_help_panel=MS)
    ] = "pto",
    thickness: Annotated[
        str,
        typer.Option("--thickness", help="Thickness range MIN-MAX in nm.", rich_help_panel=MS),
    ] = "8-30",
    tilt: Annotated[
        float,
        typer.Option("--tilt", help="Largest specimen tilt in mrad.", rich_help_panel=MS),
    ] = 3.0,
    semiangle: Annotated[
        float,
        typer.Option("--semiangle", help="Probe semiangle in mrad.", rich_help_panel=MS),
    ] = 1.8,
    step: Annotated[
        float, typer.Option("--step", help="Scan step in nm.", rich_help_panel=MS)
    ] = 2.0,
    detector_angle: Annotated[
        float,
        typer.Option(
            "--detector-angle",
            help="Half-width of the detector in mrad (the camera length).",
            rich_help_panel=MS,
        ),
    ] = 32.0,
    angle: Annotated[
        float | None,
        typer.Option(
            "--angle",
            help="Stripes/patches: angle of the walls in degrees (default: random 25-45).",
            rich_help_panel=MS,
        ),
    ] = None,
    library_thickness: Annotated[
        float,
        typer.Option(
            "--library-thickness",
            help="Thickest crystal the library holds, nm (a thicker one is a new library).",
            rich_help_panel=MS,
        ),
    ] = 30.0,
    library_angle: Annotated[
        float,
        typer.Option(
            "--library-angle",
            help="Widest incident direction the library holds (tilt + semiangle), mrad.",
            rich_help_panel=MS,
        ),
    ] = 5.0,
) -> None:
    """Write a simulated scan with its ground-truth domain map.

    --physics kinematic (default): a fast boracite-like scan whose polarization shows as
    faint ghost disks. --physics multislice: dynamical diffraction of PbTiO3 or BaTiO3
    from an abTEM multislice library (built once, then cached), with thickness and tilt
    maps, frozen phonons, footprint mixing at walls and detector effects.
    """
    from ghosttui.data.options import parse_shape
    from ghosttui.simulate import CLASSES, PHYSICS

    if physics not in PHYSICS:
        raise GhostError(f"unknown --physics {physics!r} (known: {', '.join(PHYSICS)})")
    from ghosttui.numbers import real, whole
    from ghosttui.session.protect import check_output as refuse_session_files

    whole(seed, "--seed", 0, 2**32 - 1)
    whole(size, "--size", 32, 4096)
    if dose is not None:
        real(dose, "--dose (electrons per pattern)", above=0.0)
    if ghost_strength is not None:
        real(ghost_strength, "--ghost-strength", 0.0)
    refuse_session_files(out)  # before minutes of rendering, not after
    if truth_npy is not None:
        refuse_session_files(truth_npy, inputs=[out])
    started = time.perf_counter()
    if physics == "multislice":
        settings = _simulate_multislice(
            out,
            scan=parse_shape(scan or "120x60"),
            size=size,
            seed=seed,
            geometry=geometry,
            dose=dose,
            truth_npy=truth_npy,
            structure=structure,
            thickness=_parse_range(thickness),
            tilt=tilt,
            semiangle=semiangle,
            step=step,
            detector_angle=detector_angle,
            angle=angle,
            library_thickness=library_thickness,
            library_angle=library_angle,
        )
        extra = f", {settings.structure} {thickness} nm, tilt <= {tilt:g} mrad"
    else:
        from ghosttui.simulate import SimulationSettings
        from ghosttui.simulate import simulate as run_simulation

        given = {"dose": dose, "ghost_strength": ghost_strength}
        settings = SimulationSettings(
            scan=parse_shape(scan or "206x34"),
            size=size,
            geometry=geometry,
            seed=seed,
            **{key: value for key, value in given.items() if value is not None},
        )
        with progress_bar("simulating") as update:
            run_simulation(out, settings, progress=update, truth_npy=truth_npy)
        extra = ""
    console.print(
        f"wrote {out}: {settings.scan[0]}x{settings.scan[1]} scan of {size}x{size} patterns, "
        f"{physics}, geometry {geometry}{extra}, seed {seed}, classes {','.join(CLASSES)} "
        f"({time.perf_counter() - started:.1f} s)"
    )


def _parse_range(text: str) -> tuple[float, float]:
    """``"8-30"`` -> (8.0, 30.0); ``"20"`` -> (20.0, 20.0)."""
    parts = text.split("-")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise GhostError(f"--thickness must look like MIN-MAX in nm, e.g. 8-30 (got {text!r})")
    return (values[0], values[-1])


def _simulate_multislice(out: Path, truth_npy: Path | None, **options):
    from ghosttui.simulate.compose import (
        MultisliceSettings,
        check_library,
        check_output,
        simulate_multislice,
    )
    from ghosttui.simulate.library import ensure_library, is_cached

    settings = MultisliceSettings(
        scan=options["scan"],
        size=options["size"],
        geometry=options["geometry"],
        seed=options["seed"],
        **({} if options["dose"] is None else {"dose": options["dose"]}),
        structure=options["structure"],
        thickness=options["thickness"],
        tilt=options["tilt"],
        semiangle=options["semiangle"],
        step=options["step"],
        detector_angle=options["detector_angle"],
        stripe_angle=options["angle"],
    )
    spec = settings.library_spec(
        max_thickness_nm=options["library_thickness"], max_angle_mrad=options["library_angle"]
    )
    check_library(settings, spec)
    check_output(Path(out), settings)
    if is_cached(spec):
        library = ensure_library(spec)
    else:
        with progress_bar(f"{settings.structure} multislice library (once)") as update:
            library = ensure_library(spec, update)
    with progress_bar("composing") as update:
        simulate_multislice(out, settings, library, progress=update, truth_npy=truth_npy)
    return settings


@app.command()
def preprocess(
    file: Annotated[Path, typer.Argument(help="A 4D-STEM file.")],
    dataset: Dataset = None,
    scan: ScanShape = None,
    detector: Detector = None,
    dtype: Dtype = None,
    offset: Offset = 0,
    format: Format = None,
    size: Size = DEFAULT_SIZE,
    pooling: Pooling = "sum",
    crop: Crop = None,
    transform: Transform = "log",
    normalise: Normalise = "robust",
    hot_pixels: HotPixels = True,
    allow_blank: AllowBlank = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Where caches live (default $GHOSTTUI_CACHE_DIR or ~/.cache/ghosttui).",
        ),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Build again even if a cache exists.")
    ] = False,
) -> None:
    """Build (or find) the model-ready cache of a scan."""
    from ghosttui.patterns.cache import cache_path_for, open_or_build

    options = load_options(dataset, scan, detector, dtype, offset, format)
    settings = preprocess_settings(
        size, pooling, crop, transform, normalise, hot_pixels, allow_blank
    )
    target, _ = cache_path_for(file, options, settings, cache_dir)
    reused = target.exists() and not rebuild
    if not reused:
        from ghosttui.session.protect import check_output

        check_output(target, inputs=[file])  # e.g. a --cache-dir inside a session folder
    started = time.perf_counter()
    with progress_bar("preprocessing") as update:
        cache = open_or_build(
            file, options, settings, cache_dir=cache_dir, progress=update, rebuild=rebuild
        )
    seconds = time.perf_counter() - started
    with cache:
        rate = "" if reused else f", {cache.n_patterns / seconds:,.0f} patterns/s"
        state = "reused" if reused else f"built in {seconds:.1f} s{rate}"
        console.print(
            f"cache {cache.path} ({cache.shape[0]}x{cache.shape[1]} patterns of "
            f"{cache.size}x{cache.size}): {state}"
        )
