"""Exporting a session's results: maps as PNG, probabilities as HDF5, labels, the model.

Every file is written under a temporary name and renamed into place, so an
existing export is never left half-written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ghosttui.errors import GhostError, SessionError
from ghosttui.model.outputs import PredictionWriter
from ghosttui.render.colour import class_map_rgb, colourise, hex_to_rgb
from ghosttui.render.scale_bar import ScaleBar, scale_bar
from ghosttui.session.labels_io import export_labels
from ghosttui.session.session import Session


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def save_png(path: Path, rgb: np.ndarray) -> Path:
    return _atomic(path, lambda tmp: Image.fromarray(rgb).save(tmp, format="PNG"))


def enlargement(shape: tuple[int, ...], long_side: int = 800) -> int:
    """The whole number of pixels per scan position that brings the long side near ``long_side``."""
    return max(1, long_side // max(shape[:2]))


def enlarge(rgb: np.ndarray, long_side: int = 800) -> np.ndarray:
    scale = enlargement(rgb.shape, long_side)
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _canvas(
    rgb: np.ndarray, title: str, legend_width: int, bar: ScaleBar | None = None
) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """White canvas: the title, the map at (15, 45), room on the right, the scale bar below."""
    font = _font(16)
    height, width = rgb.shape[:2]
    total = max(width + legend_width + 30, int(font.getlength(title)) + 30)
    footer = 40 if bar is not None else 0
    canvas = Image.new("RGB", (total, max(height, 120) + 60 + footer), "white")
    canvas.paste(Image.fromarray(rgb), (15, 45))
    draw = ImageDraw.Draw(canvas)
    draw.text((15, 12), title, fill="black", font=font)
    if bar is not None:
        top = 45 + height + 14
        right = 15 + round(bar.pixels)
        draw.rectangle([15, top, right, top + 7], fill="black")
        draw.text((right + 10, top - 5), bar.label, fill="black", font=font)
    return canvas, draw


def with_legend(
    rgb: np.ndarray,
    title: str,
    entries: list[tuple[str, tuple[int, int, int]]],
    bar: ScaleBar | None = None,
) -> np.ndarray:
    """The map with a title above, a colour legend on the right and a scale bar below."""
    font = _font(16)
    width = rgb.shape[1]
    legend_width = 40 + max(int(font.getlength(name)) for name, _ in entries) + 30
    canvas, draw = _canvas(rgb, title, legend_width, bar)
    for i, (name, colour) in enumerate(entries):
        y = 50 + 28 * i
        draw.rectangle([width + 30, y, width + 50, y + 20], fill=colour, outline="black")
        draw.text((width + 60, y + 1), name, fill="black", font=font)
    return np.asarray(canvas)


def with_colourbar(
    rgb: np.ndarray,
    title: str,
    colormap: str,
    low: float,
    high: float,
    bar: ScaleBar | None = None,
) -> np.ndarray:
    """The map with a title, a colour bar from ``high`` (top) to ``low`` and a scale bar below."""
    font = _font(16)
    width = rgb.shape[1]
    bar_height = max(100, min(rgb.shape[0], 300))
    canvas, draw = _canvas(rgb, title, 110, bar)
    ramp = colourise(np.linspace(1, 0, bar_height)[:, None].repeat(20, 1), colormap)
    canvas.paste(Image.fromarray(ramp), (width + 30, 50))
    draw.rectangle([width + 30, 50, width + 50, 50 + bar_height], outline="black")
    for value, y in ((high, 50), ((high + low) / 2, 50 + bar_height // 2), (low, 50 + bar_height)):
        draw.line([width + 50, y, width + 55, y], fill="black")
        draw.text((width + 60, y - 8), f"{value:.2f}", fill="black", font=font)
    return np.asarray(canvas)


def export_session(
    session: Session, out: str | Path, round: int | None = None, model_id: int | None = None
) -> list[Path]:
    """Write the domain map, confidence map, probabilities, labels and model to ``out``.

    The model is the one in use, or the last of ``round``, or model ``model_id``.
    """
    record = session.find_model(round, model_id)
    probabilities = session.load_predictions(record)
    if probabilities is None:
        raise SessionError(
            f"session '{session.name}': model {record.id} has no prediction file "
            f"({record.predictions})"
        )
    round = record.round
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GhostError(f"cannot create export folder ({exc.strerror})", out) from exc
    classes = probabilities.argmax(-1)
    confidence = probabilities.max(-1)
    colours = session.colours
    written = []
    domain = class_map_rgb(classes, colours)
    written.append(save_png(out / "domain_map.png", domain))
    legend = [(name, hex_to_rgb(c)) for name, c in zip(session.classes, colours, strict=True)]
    n_rx, n_ry = classes.shape
    calibration = session.calibration()
    bar = scale_bar(calibration.r_pixel_size, calibration.r_units, n_ry, enlargement(classes.shape))
    title = f"{session.name}: round {round}, {n_rx}x{n_ry} positions (Rx down, Ry across)"
    written.append(
        save_png(out / "domain_map_large.png", with_legend(enlarge(domain), title, legend, bar))
    )
    chance = 1.0 / probabilities.shape[-1]
    unit = (confidence - chance) / (1 - chance)
    conf_rgb = colourise(unit, "inferno")
    title = f"{session.name}: confidence (max class probability), round {round}"
    written.append(
        save_png(
            out / "confidence_map.png",
            with_colourbar(enlarge(conf_rgb), title, "inferno", chance, 1.0, bar),
        )
    )
    with PredictionWriter(
        out / "predictions.h5", session.classes, round=round, session=session.name
    ) as writer:
        writer.add(probabilities, source=session.settings.data.path)
    written.append(out / "predictions.h5")
    export_labels(session.store, out / "labels.csv")
    written.append(out / "labels.csv")
    checkpoint = session.dir / record.checkpoint
    if checkpoint.exists():
        written.append(_atomic(out / "model.pt", lambda tmp: shutil.copyfile(checkpoint, tmp)))
    return written
