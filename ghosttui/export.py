"""Exporting a session's results: maps as PNG, probabilities as HDF5, labels, the model.

An export is all or nothing: every file is written into a new hidden folder
beside ``--out``, read back and verified (pictures decode to what was drawn,
probabilities and labels read back equal, the model loads as this session's
checkpoint without unpickling anything), described in ``manifest.json`` with
each file's SHA-256, and only then swapped in place of the old export in one
step (:func:`ghosttui.files.atomic_output` with ``folder=True``). A run killed
at any moment leaves the previous export complete or the new one complete,
never files of two rounds side by side.

The model is read once, checked as a ghosttui checkpoint of this session
(``torch.load(weights_only=True)``: a malicious pickle is refused), and the
very bytes checked are written.

``--out`` must be a new folder, an empty one or a previous export whose files
are all listed in its manifest: the swap replaces the whole folder, so a
folder holding anything else is refused rather than emptied.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ghosttui import __version__
from ghosttui.errors import GhostError, SessionError
from ghosttui.files import atomic_output, storage_error
from ghosttui.model.outputs import PredictionWriter, read_probabilities
from ghosttui.render.colour import class_map_rgb, colourise, hex_to_rgb
from ghosttui.render.scale_bar import ScaleBar, scale_bar
from ghosttui.session.labels_io import export_labels
from ghosttui.session.protect import check_output
from ghosttui.session.session import Session
from ghosttui.session.store import ModelRecord

MANIFEST = "manifest.json"
EXPORT_FORMAT = 1


def save_png(path: Path, rgb: np.ndarray) -> Path:
    """Write ``rgb`` as PNG and check that the file decodes to exactly ``rgb``."""
    Image.fromarray(rgb).save(path, format="PNG")
    with Image.open(path) as image:
        back = np.asarray(image.convert("RGB"))
    if back.shape != (*rgb.shape[:2], 3) or not np.array_equal(back, rgb[..., :3]):
        raise GhostError("written picture does not read back as drawn", path)
    return path


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


@contextmanager
def _named(out: Path, name: str) -> Iterator[None]:
    """Errors while writing one file of the export name that file in ``out``, not the temporary."""
    try:
        yield
    except OSError as exc:
        raise storage_error(exc, out / name) from exc
    except GhostError as exc:
        raise type(exc)(exc.message, out / name) from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_export_folder(out: Path) -> None:
    """Refuse an ``--out`` whose swap would delete something that is not a previous export."""
    if not out.exists():
        return
    if not out.is_dir():
        raise GhostError("is a file, not a folder; choose a folder for the export", out)
    entries = sorted(p.name for p in out.iterdir())
    if not entries:
        return
    manifest = out / MANIFEST
    try:
        listed = set(json.loads(manifest.read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        raise GhostError(
            "is not empty and not a ghosttui export; an export replaces its whole folder, "
            "so choose a new or empty folder",
            out,
        ) from None
    foreign = [name for name in entries if name != MANIFEST and name not in listed]
    if foreign:
        raise GhostError(
            f"holds files that are not part of the previous export ({', '.join(foreign[:5])}); "
            "an export replaces its whole folder: move them or choose another folder",
            out,
        )


def _checked_model(session: Session, record: ModelRecord) -> bytes | None:
    """The model's checkpoint bytes, verified as this session's checkpoint (None if none)."""
    from ghosttui.model.checkpoint import load_checkpoint

    path = session.dir / record.checkpoint
    if not path.exists():
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GhostError(f"cannot read checkpoint ({exc.strerror})", path) from exc
    load_checkpoint(path, session_id=session.settings.id, classes=session.classes, data=data)
    return data


def export_session(
    session: Session, out: str | Path, round: int | None = None, model_id: int | None = None
) -> list[Path]:
    """Write the domain map, confidence map, probabilities, labels and model to ``out``.

    The model is the one in use, or the last of ``round``, or model ``model_id``. All or
    nothing: the files are written into a new folder, read back, listed with their
    SHA-256 in ``manifest.json``, and the folder is swapped in.
    """
    from ghosttui.model.checkpoint import load_checkpoint

    record = session.find_model(round, model_id)
    probabilities = session.load_predictions(record)
    if probabilities is None:
        raise SessionError(
            f"session '{session.name}': model {record.id} has no prediction file "
            f"({record.predictions})"
        )
    round = record.round
    model = _checked_model(session, record)  # before anything is written
    out = Path(out)
    check_output(out)  # a session's folder (or one holding a session) first, by name
    check_export_folder(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, out.parent, "cannot create the export's parent folder") from exc
    classes = probabilities.argmax(-1)
    confidence = probabilities.max(-1)
    colours = session.colours
    legend = [(name, hex_to_rgb(c)) for name, c in zip(session.classes, colours, strict=True)]
    n_rx, n_ry = classes.shape
    domain = class_map_rgb(classes, colours)
    chance = 1.0 / probabilities.shape[-1]
    conf_rgb = colourise((confidence - chance) / (1 - chance), "inferno")
    calibration = session.calibration()
    bar = scale_bar(calibration.r_pixel_size, calibration.r_units, n_ry, enlargement(classes.shape))
    pictures = {
        "domain_map.png": domain,
        "domain_map_large.png": with_legend(
            enlarge(domain),
            f"{session.name}: model {record.id} (round {round}), {n_rx}x{n_ry} positions "
            "(Rx down, Ry across)",
            legend,
            bar,
        ),
        "confidence_map.png": with_colourbar(
            enlarge(conf_rgb),
            f"{session.name}: confidence (max class probability), model {record.id}",
            "inferno",
            chance,
            1.0,
            bar,
        ),
    }
    reserve = sum(p.nbytes for p in pictures.values()) + 3 * probabilities.nbytes
    reserve += len(model or b"") + (1 << 20)
    names = [*pictures, "predictions.h5", "labels.csv", *(["model.pt"] if model else [])]
    with atomic_output(out, folder=True, reserve=reserve) as tmp:
        for name, rgb in pictures.items():
            with _named(out, name):
                save_png(tmp / name, rgb)
        with _named(out, "predictions.h5"):
            with PredictionWriter(
                tmp / "predictions.h5", session.classes, round=round, session=session.name
            ) as writer:
                writer.add(probabilities, source=session.settings.data.path)
            if not np.array_equal(read_probabilities(tmp / "predictions.h5"), probabilities):
                raise GhostError("written probabilities do not read back equal")
        with _named(out, "labels.csv"):
            count = export_labels(session.store, tmp / "labels.csv")
            with open(tmp / "labels.csv", newline="", encoding="utf-8") as handle:
                if sum(1 for _ in csv.DictReader(handle)) != count:
                    raise GhostError("written labels do not read back complete")
        if model is not None:
            with _named(out, "model.pt"):
                (tmp / "model.pt").write_bytes(model)
                load_checkpoint(
                    tmp / "model.pt", session_id=session.settings.id, classes=session.classes
                )
                if _sha256(tmp / "model.pt") != hashlib.sha256(model).hexdigest():
                    raise GhostError("written model differs from the checked checkpoint")
        manifest = {
            "ghosttui_export": EXPORT_FORMAT,
            "ghosttui": __version__,
            "session": session.name,
            "session_id": session.settings.id,
            "round": round,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "files": {name: _sha256(tmp / name) for name in names},
        }
        with _named(out, MANIFEST):
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return [out / name for name in [*names, MANIFEST]]


def verify_export(out: str | Path) -> dict:
    """Check an export folder against its manifest; returns the manifest."""
    out = Path(out)
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GhostError(f"no readable {MANIFEST}: not a complete ghosttui export", out) from exc
    for name, digest in files.items():
        path = out / name
        if not path.is_file() or _sha256(path) != digest:
            raise GhostError(f"{name} is missing or differs from the manifest", out)
    return manifest
