"""How visible is the class signal in each view of the pattern pane, measured on what is drawn.

For simulated scans whose truth is known, the two polar classes (horizontal and
vertical) are compared: positions of each are drawn exactly as the app's pattern
pane draws them (``PatternPane.draw`` at the pane's size in a 160x48 terminal,
references off), the RGB pixels converted to CIELAB, and two separations of the
class means relative to the pixel noise computed with split halves (chosen on
one half of the positions, measured on the other, so that picking the best of
thousands of pixels does not inflate the number):

* ``best_pixel``: d' = |mean_H - mean_V| / pooled std at the single best pixel
  (Euclidean in CIELAB, pooled std from the traces of the class covariances, but
  never below one just-noticeable colour difference, 2.3 CIELAB units: a pixel
  that a saturated colour map paints the same for every pattern of a class has
  no pixel noise left, and would otherwise score without bound);
* ``matched_filter``: d' of the projections of whole images on the template
  mean_H - mean_V (a linear observer using every pixel).

Two sets of positions: ``all`` polar positions, and ``interior`` ones, whose 5 x 5
neighbourhood is all one class. Scans that record the sign of the polarization
(``/variant``, the multislice scans) are compared per sign: every +/-horizontal
group against every +/-vertical one, reporting the mean and the worst pair.
Near domain walls the simulated signals fade to nothing, so there no view can
separate the classes; ``interior`` measures the views against pixel noise,
``all`` the whole labelling task. In the ``wall`` geometry each class fills one
half of the scan, so smooth fields (descan, thickness, tilt) differ between the
classes too and add a separation that is not the polarization; the ``stripes``
scans interleave the domains and are the fairer test.

Views: every mode at k = 1, 3, 5, plus variants of the mean, inversion and
transpose views at 3x3 (each pattern centred on its own beam, or one centre for
the scan, instead of the fitted descan; no disk smoothing; other scales), all
drawn before any label. The default views and the transpose at
5x5 are also drawn after the first round (the coarse grid of about 50 positions,
labelled with the truth), with the scan variation removed (the default once there
are labels: ``ghosttui.patterns.variation``) and kept. Also
the time of a redraw (``PatternPane.draw``) per state, and with ``--pictures``
each view at one position of each group (docs/views/).

Scans: the kinematic ``wall`` scan of ``make bench`` (simulated when missing) and
every multislice scan in ``--ms`` (default /work/data/ms/*.h5) that exists.

    python benchmarks/views_visibility.py [--samples 200] [--data SCAN.h5 ...]
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, save, simulated

from ghosttui.data.options import LoadOptions
from ghosttui.patterns.cache import open_or_build
from ghosttui.patterns.settings import PreprocessSettings
from ghosttui.patterns.sources import ModelInputs
from ghosttui.render.pane import APP_PANE_CELLS, PaneState, PatternPane, default_state
from ghosttui.render.views import AVERAGES, VIEWS

DOCS = ROOT.parent / "docs" / "views"
HEIGHT, WIDTH = 2 * APP_PANE_CELLS[1], APP_PANE_CELLS[0]
CLASSES = ["horizontal", "vertical", "none"]
JND = 2.3  # a just-noticeable colour difference in CIELAB (CIE76) units


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 sRGB -> CIELAB (D65)."""
    c = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )


def separations(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Split-half best-pixel and matched-filter d' of two (n, P, 3) Lab image sets."""
    half = min(len(a), len(b)) // 2
    a1, a2, b1, b2 = a[:half], a[half:], b[:half], b[half:]

    def per_pixel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        gap = np.linalg.norm(x.mean(0) - y.mean(0), axis=-1)
        noise = np.sqrt((x.var(0).sum(-1) + y.var(0).sum(-1)) / 2)
        return gap / np.maximum(noise, JND)

    best = int(np.argmax(per_pixel(a1, b1)))
    d_pixel = float(per_pixel(a2[:, best : best + 1], b2[:, best : best + 1])[0])
    template = (a1.mean(0) - b1.mean(0)).ravel()
    sa = a2.reshape(len(a2), -1) @ template
    sb = b2.reshape(len(b2), -1) @ template
    d_matched = float(abs(sa.mean() - sb.mean()) / np.sqrt((sa.var() + sb.var()) / 2 + 1e-12))
    return {"best_pixel": round(d_pixel, 2), "matched_filter": round(d_matched, 2)}


def interior_mask(labels: np.ndarray) -> np.ndarray:
    """Positions whose 5 x 5 neighbourhood carries one label."""
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.pad(labels, 2, mode="edge")
    return (sliding_window_view(padded, (5, 5)) == labels[:, :, None, None]).all((-1, -2))


def polar_groups(path: Path) -> tuple[np.ndarray, list[tuple[str, str]], dict[str, np.ndarray]]:
    """(labels, pairs, masks): the polar groups of a scan and the pairs to tell apart.

    The two polar classes, horizontal and vertical. When the file records the sign
    of the polarization (``/variant``: +horizontal, -horizontal, ...), each sign is
    its own group and every horizontal group is paired with every vertical one: a
    view that shows the sign (the Friedel asymmetry flips with it) has class means
    that cancel over both signs, so only same-sign groups measure what is drawn.
    """
    import h5py

    with h5py.File(path, "r") as f:
        truth = f["truth"][()].astype(np.int64)
        names = _names(f["truth"].attrs.get("classes", "horizontal,vertical,none"))
        variant = f["variant"][()].astype(np.int64) if "variant" in f else None
        variants = _names(f["variant"].attrs.get("variants", "")) if "variant" in f else []
    if variant is not None and any(v.startswith(("+", "-")) for v in variants):
        labels = variant
        masks = {v: variant == i for i, v in enumerate(variants) if v != "none"}
        horizontal = [v for v in masks if v.endswith("horizontal")]
        vertical = [v for v in masks if v.endswith("vertical")]
        pairs = [(h, v) for h in horizontal for v in vertical]
    else:
        labels = truth
        masks = {n: truth == names.index(n) for n in ("horizontal", "vertical")}
        pairs = [("horizontal", "vertical")]
    return labels, pairs, masks


def _names(value: object) -> list[str]:
    text = value.decode() if isinstance(value, bytes) else str(value)
    return [c.strip() for c in text.split(",") if c.strip()]


def sample_positions(
    labels: np.ndarray, masks: dict[str, np.ndarray], samples: int, seed: int = 0
) -> dict[str, dict[str, list[tuple[int, int]]]]:
    """Random positions of each group: anywhere, and in domain interiors."""
    interior = interior_mask(labels)
    rng = np.random.default_rng(seed)
    n_ry = labels.shape[1]
    out: dict[str, dict[str, list[tuple[int, int]]]] = {"all": {}, "interior": {}}
    for name, mask in masks.items():
        for subset, where in (("all", mask), ("interior", mask & interior)):
            flat = np.flatnonzero(where.ravel())
            pick = rng.choice(flat, min(samples, len(flat)), replace=False)
            out[subset][name] = [divmod(int(i), n_ry) for i in pick]
    return out


GRID_LABELS = 50  # the first round's coarse grid, about this many positions
LABELLED = " · grid labels"  # states measured with the first round's labels given to the pane


def grid_labels(path: Path) -> dict[tuple[int, int], int]:
    """The labels a user gives in the first round: the coarse grid of about 50 positions, each
    labelled with the truth (class indices in CLASSES order)."""
    import h5py

    from ghosttui.sampling.strategies import grid_points, grid_step_for_budget

    with h5py.File(path, "r") as f:
        truth = f["truth"][()]
    step = grid_step_for_budget(truth.shape, GRID_LABELS)
    return {p: int(truth[p]) for p in grid_points(truth.shape, step)}


def candidates() -> dict[str, PaneState]:
    """Every view at k = 1, 3, 5 (descan centring, disk smoothing, scale 0.1: the defaults), and
    for the three most telling views at 3x3 the other centrings, no smoothing, other scales.
    These see no labels, so no scan variation is removed (it needs labels to decide what);
    the states named with LABELLED are drawn after the first round's grid labels, with the
    scan variation removed or kept."""
    base = PaneState(references="off")
    states = {}
    for view in VIEWS:
        for k in AVERAGES:
            states[f"{view} k{k}"] = replace(base, view=view, average=k)
    for view in ("mean", "inversion", "transpose"):
        for centring in ("pattern", "scan"):
            states[f"{view} k3 {centring}-centred"] = replace(
                base, view=view, average=3, centring=centring
            )
        states[f"{view} k3 unsmoothed"] = replace(base, view=view, average=3, smooth=False)
        for scale in (0.05, 0.25):
            states[f"{view} k3 scale {scale:g}"] = replace(base, view=view, average=3, scale=scale)
    states["default"] = replace(default_state(CLASSES), references="off")
    states["default, other classes"] = replace(PaneState(), references="off")
    for label in ("default", "default, other classes", "transpose k5"):
        states[label + LABELLED] = states[label]
        states[label + LABELLED + ", scan variation kept"] = replace(
            states[label], variation="kept"
        )
    return states


def measure_scan(path: Path, samples: int, pictures: bool) -> dict:
    labels, pairs, masks = polar_groups(path)
    cache = open_or_build(path, LoadOptions(), PreprocessSettings())
    pane = PatternPane(ModelInputs(cache), CLASSES, ["#0000ff", "#00ff00", "#ff0000"])
    per_group = max(20, samples // max(1, len({g for pair in pairs for g in pair}) // 2))
    positions = sample_positions(labels, masks, per_group)
    first_round = grid_labels(path)
    results: dict[str, dict] = {}
    timings: dict[str, dict] = {}
    for label, state in candidates().items():
        pane.set_labels(first_round if LABELLED in label else {})
        pane.state = state
        results[label] = {}
        for subset, by_group in positions.items():
            if min(len(where) for where in by_group.values()) < 4:
                continue  # a group with (almost) no positions here: pto_needles has no interior
            images = {
                name: srgb_to_lab(
                    np.stack([pane.draw(rx, ry, HEIGHT, WIDTH).rgb for rx, ry in where])
                ).reshape(len(where), -1, 3)
                for name, where in by_group.items()
            }
            scores = [separations(images[a], images[b]) for a, b in pairs]
            results[label][subset] = {
                metric: round(float(np.mean([s[metric] for s in scores])), 2)
                for metric in ("best_pixel", "matched_filter")
            }
            if len(pairs) > 1:
                results[label][subset]["worst_pair"] = {
                    metric: round(float(min(s[metric] for s in scores)), 2)
                    for metric in ("best_pixel", "matched_filter")
                }
        spent = []
        first = next(iter(positions["all"].values()))
        for rx, ry in first[:40]:
            started = time.perf_counter()
            pane.draw(rx, ry, HEIGHT, WIDTH)
            spent.append((time.perf_counter() - started) * 1000)
        timings[label] = {
            "p50_ms": round(float(np.percentile(spent, 50)), 2),
            "p95_ms": round(float(np.percentile(spent, 95)), 2),
        }
        removed = pane.removed_components()
        if removed is not None:
            results[label]["scan_variation_removed"] = (
                f"{len(removed[1])}/{len(removed[0].components)}"
            )
        print(path.stem, label, results[label], timings[label], flush=True)
    raw = results["raw k1"]
    for values in results.values():
        for subset, d in values.items():
            if not isinstance(d, dict):
                continue
            d["vs_raw"] = {
                metric: round(d[metric] / max(raw[subset][metric], 1e-9), 2)
                for metric in ("best_pixel", "matched_filter")
            }
    if pictures:
        draw_pictures(pane, path, positions)
    return {
        "data": str(path),
        "scan": list(labels.shape),
        "pairs": [list(p) for p in pairs],
        "grid_labels": {
            c: sum(v == i for v in first_round.values()) for i, c in enumerate(CLASSES)
        },
        "samples_per_group": {s: {c: len(p) for c, p in v.items()} for s, v in positions.items()},
        "separations": results,
        "redraw_ms": timings,
    }


def draw_pictures(pane: PatternPane, path: Path, positions: dict) -> None:
    """Each view at one interior horizontal and one vertical position, k = 1 and 3."""
    from PIL import Image

    DOCS.mkdir(parents=True, exist_ok=True)
    where = {c: p[0] for c, p in positions["interior"].items()}
    rows = []
    for view in VIEWS:
        tiles = []
        for k in (1, 3):
            for name in where:
                pane.state = PaneState(view=view, average=k, references="off")
                tiles.append(pane.draw(*where[name], 128, 128).rgb)
                tiles.append(np.full((128, 4, 3), 40, np.uint8))
        rows.append(np.concatenate(tiles[:-1], 1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 40, np.uint8))
    sheet = np.concatenate(rows[:-1], 0)
    out = DOCS / f"views-{path.stem}.png"
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2), Image.NEAREST).save(out)
    print(f"wrote {out} (rows: {', '.join(VIEWS)}; columns: k1 then k3 of {where})")


def scan_arguments(doc: str, name: str) -> argparse.ArgumentParser:
    """The options both view benchmarks take: positions per group, scans, result name."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=200, help="positions per class and set")
    parser.add_argument("--data", type=Path, action="append", help="scans (default: see above)")
    parser.add_argument("--ms", default="/work/data/ms/*.h5", help="multislice scans (glob)")
    parser.add_argument("--name", default=name)
    return parser


def main() -> None:
    parser = scan_arguments(__doc__, "views_visibility")
    parser.add_argument("--pictures", action="store_true", help="also docs/views/views-*.png")
    args = parser.parse_args()
    scans = args.data or [simulated("wall"), *sorted(Path(p) for p in glob.glob(args.ms))]
    measured = [measure_scan(p, args.samples, args.pictures) for p in scans]
    save(
        args.name,
        {
            "pane_pixels": [HEIGHT, WIDTH],
            "default_state_other_classes": PaneState().to_dict(),
            "default_state_horizontal_vertical": default_state(CLASSES).to_dict(),
            "note": "d' on drawn pixels (CIELAB), split halves; vs_raw = ratio to 'raw k1'",
            "scans": measured,
        },
    )


if __name__ == "__main__":
    main()
