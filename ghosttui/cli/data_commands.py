"""Commands about data files: info, simulate, preprocess."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

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
    load_options,
    preprocess_settings,
    progress_bar,
)
from ghosttui.errors import GhostError
from ghosttui.patterns.settings import DEFAULT_SIZE


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
    """Show what a file holds: format, (Rx, Ry, Qx, Qy), dtype, size, calibration, a vBF preview."""
    from ghosttui.data import open_scan
    from ghosttui.patterns.cache import cache_path_for
    from ghosttui.render.cells import CellImage
    from ghosttui.render.colour import Contrast

    options = load_options(dataset, scan, detector, dtype, offset, format)
    with open_scan(file, options) as data:
        rx, ry, qx, qy = data.shape
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan")
        table.add_column()
        table.add_row("file", str(file))
        table.add_row(
            "format", data.format + (f"  (dataset {data.dataset})" if data.dataset else "")
        )
        table.add_row(
            "shape", f"(Rx, Ry, Qx, Qy) = ({rx}, {ry}, {qx}, {qy})   {data.n_patterns:,} patterns"
        )
        table.add_row("dtype", str(data.dtype))
        table.add_row(
            "size",
            f"{_human_bytes(file.stat().st_size)} on disk, {_human_bytes(data.nbytes)} of patterns",
        )
        table.add_row("calibration", data.calibration.describe())
        cache, fingerprint = cache_path_for(file, options, preprocess_settings())
        table.add_row("fingerprint", fingerprint)
        table.add_row("cache", f"{cache} ({'ready' if cache.exists() else 'not built yet'})")
        console.print(table)
        if preview:
            from ghosttui.patterns.preview import quick_virtual_images

            vbf, _adf, step = quick_virtual_images(data)
            every = f", one position in {step} along each axis" if step > 1 else ""
            console.print(
                f"[bold cyan]virtual bright field[/] ({rx}x{ry} scan{every}; Rx down, Ry across)"
            )
            console.print(
                CellImage(Contrast(mode="linear", low=0.5, high=99.5).to_rgb(vbf), 64, 32)
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
            help="Electrons per pattern (default: 50000; multislice 100000).",
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
    started = time.perf_counter()
    if physics == "multislice":
        settings = _simulate_multislice(
            out,
            scan=parse_shape(scan or "120x60"),
            size=size,
            seed=seed,
            geometry=geometry,
            dose=1.0e5 if dose is None else dose,
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
        dose=options["dose"],
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
