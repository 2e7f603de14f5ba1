"""How far can a view of one position go on the multislice scans? A bound from the truth.

The visibility benchmark (``views_visibility.py``) finds the default view at 2.2x to
2.6x the plain pattern on the BaTiO3 scans, short of the 3x target. This benchmark
asks whether any per-position view could do better, by removing what the
simulation knows is not polarization. Each multislice scan records the specimen
tilt and thickness at every position (``/tilt_mrad``, ``/thickness_nm``): they change
every disk by more than BaTiO3's polarization does. Here the default view's values
(exactly what the pane draws before colour: ``PatternPane.query_values`` and its disk
smoothing, transpose at 3x3) are corrected by regressing every pixel on a
polynomial in the *true* tilt and thickness (averaged over the same 3x3 block), fitted
on 2048 positions of the scan that are not measured, and the separation measured
again. No view can know the tilt and thickness better than the simulation does, so
on the ``stripes`` scans (domains interleaved, independent of the smooth fields) this
is an upper bound on what removing them can add; on the ``wall`` scans each class
fills one half of the scan, the fields differ between the halves, and the regression
removes part of the class with them (the number drops), so there it bounds nothing.

Also measured: corrections the app can make without the truth, removing the top
principal components of the scan's own view values (the largest variations over the
scan: tilt and thickness where the polar signal is weak, the polarization itself where
it is strong), all of them, or only those the first round's labels do not tie to a class
(what the app does: ``ghosttui.patterns.variation``, the pane's own values).

Separations as in ``views_visibility.py`` but on values, not drawn colours: split-half
best-pixel d' (pooled std) and matched-filter d', each +/- horizontal group against
each +/- vertical group, mean over the four pairs; ratios are to the plain pattern
(``raw`` at 1x1) measured the same way.

Scans: every multislice scan in ``--ms`` (default /work/data/ms/*.h5) that records its tilt
and thickness.

    python benchmarks/views_bound.py [--samples 200] [--data SCAN.h5 ...]
"""

from __future__ import annotations

import glob
import sys
from dataclasses import replace
from itertools import combinations_with_replacement
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import save
from views_visibility import CLASSES, grid_labels, polar_groups, sample_positions, scan_arguments

from ghosttui.data.options import LoadOptions
from ghosttui.patterns.cache import open_or_build
from ghosttui.patterns.neighbourhood import neighbourhood
from ghosttui.patterns.settings import PreprocessSettings
from ghosttui.patterns.sources import ModelInputs
from ghosttui.render.pane import PaneState, PatternPane, default_state

FIT_POSITIONS = 2048
PRINCIPAL_COMPONENTS = (1, 2, 4)
DEGREES = (1, 2, 3)


def value_separations(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Split-half best-pixel and matched-filter d' of two (n, P) sets of view values."""
    half = min(len(a), len(b)) // 2
    a1, a2, b1, b2 = a[:half], a[half:], b[:half], b[half:]

    def per_pixel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        gap = np.abs(x.mean(0) - y.mean(0))
        return gap / np.maximum(np.sqrt((x.var(0) + y.var(0)) / 2), 1e-9)

    best = int(np.argmax(per_pixel(a1, b1)))
    d_pixel = float(per_pixel(a2[:, best : best + 1], b2[:, best : best + 1])[0])
    template = a1.mean(0) - b1.mean(0)
    sa, sb = a2 @ template, b2 @ template
    d_matched = float(abs(sa.mean() - sb.mean()) / np.sqrt((sa.var() + sb.var()) / 2 + 1e-18))
    return {"best_pixel": d_pixel, "matched_filter": d_matched}


def polynomial(fields: np.ndarray, degree: int) -> np.ndarray:
    """(n, T) every monomial of the (n, F) standardised fields up to ``degree``, with 1."""
    columns = [np.ones(len(fields))]
    for d in range(1, degree + 1):
        for combo in combinations_with_replacement(range(fields.shape[1]), d):
            columns.append(np.prod(fields[:, list(combo)], axis=1))
    return np.column_stack(columns)


def block_fields(fields: np.ndarray, positions: list[tuple[int, int]], k: int) -> np.ndarray:
    """(n, F) the mean of the (Rx, Ry, F) fields over each position's k x k block (as the
    view averages its patterns)."""
    shape = fields.shape[:2]
    return np.stack(
        [
            fields[neighbourhood(rx, ry, k, shape)].reshape(-1, fields.shape[-1]).mean(0)
            for rx, ry in positions
        ]
    )


def measure_scan(path: Path, samples: int) -> dict | None:
    import h5py

    with h5py.File(path, "r") as f:
        if "tilt_mrad" not in f or "thickness_nm" not in f:
            print(f"{path}: no tilt and thickness maps, skipped")
            return None
        tilt = f["tilt_mrad"][()].astype(np.float64)
        thickness = f["thickness_nm"][()].astype(np.float64)
    labels, pairs, masks = polar_groups(path)
    cache = open_or_build(path, LoadOptions(), PreprocessSettings())
    pane = PatternPane(ModelInputs(cache), CLASSES, ["#0000ff", "#00ff00", "#ff0000"])
    default = replace(default_state(CLASSES), references="off")
    raw = PaneState(view="raw", average=1, references="off")
    per_group = max(20, samples // max(1, len({g for pair in pairs for g in pair}) // 2))
    positions = sample_positions(labels, masks, per_group)

    def values(state: PaneState, where: list[tuple[int, int]]) -> np.ndarray:
        return pane.values_at(state, where).reshape(len(where), -1)

    measured = {p for by_group in positions.values() for where in by_group.values() for p in where}
    rng = np.random.default_rng(1)
    free = [divmod(int(i), labels.shape[1]) for i in rng.permutation(labels.size)]
    fit_at = [p for p in free if p not in measured][:FIT_POSITIONS]
    fields = np.concatenate([tilt, thickness[..., None]], -1)
    fields = (fields - fields.mean((0, 1))) / fields.std((0, 1))
    k = default.average
    fit_values = values(default, fit_at)
    fit_fields = block_fields(fields, fit_at, k)
    corrections = {}
    for degree in DEGREES:
        design = polynomial(fit_fields, degree)
        coefficients = np.linalg.lstsq(design, fit_values, rcond=None)[0]
        corrections[f"truth, degree {degree}"] = (degree, coefficients)
    centre = fit_values.mean(0)
    _, _, components = np.linalg.svd(fit_values - centre, full_matrices=False)
    # what the app removes after the first round (the coarse grid, labelled with the truth)
    pane.set_labels(grid_labels(path))
    pane.state = default
    found = pane.removed_components()  # None: fewer than two classes with enough labels
    removed = found[1] if found is not None else ()

    out: dict[str, dict] = {}
    for subset, by_group in positions.items():
        if min(len(where) for where in by_group.values()) < 4:
            print(path.stem, subset, "skipped: a group has fewer than 4 positions")
            continue
        groups = {name: values(default, where) for name, where in by_group.items()}
        plain = {name: values(raw, where) for name, where in by_group.items()}
        states = {"raw k1": plain, "default": groups}
        for label, (degree, coefficients) in corrections.items():
            states[f"default - tilt and thickness ({label})"] = {
                name: groups[name]
                - polynomial(block_fields(fields, where, k), degree)[:, 1:] @ coefficients[1:]
                for name, where in by_group.items()
            }
        for n in PRINCIPAL_COMPONENTS:
            top = components[:n]
            states[f"default - top {n} principal components"] = {
                name: v - ((v - centre) @ top.T) @ top for name, v in groups.items()
            }
        pane.state = default
        states["default, grid labels: the app's scan variation removed"] = {
            name: pane.without_variation(v) for name, v in groups.items()
        }
        out[subset] = {}
        for label, by_name in states.items():
            scores = [value_separations(by_name[a], by_name[b]) for a, b in pairs]
            out[subset][label] = {
                m: round(float(np.mean([s[m] for s in scores])), 2)
                for m in ("best_pixel", "matched_filter")
            }
        base = out[subset]["raw k1"]
        for d in out[subset].values():
            d["vs_raw"] = {m: round(d[m] / max(base[m], 1e-9), 2) for m in base if m != "vs_raw"}
        for label, d in out[subset].items():
            print(path.stem, subset, f"{label:48s}", d, flush=True)
    return {
        "data": str(path),
        "scan": list(labels.shape),
        "pairs": [list(p) for p in pairs],
        "fit_positions": len(fit_at),
        "scan_variation_removed": list(removed),
        "samples_per_group": {s: {c: len(p) for c, p in v.items()} for s, v in positions.items()},
        "separations": out,
    }


def main() -> None:
    parser = scan_arguments(__doc__, "views_bound")
    args = parser.parse_args()
    scans = args.data or sorted(Path(p) for p in glob.glob(args.ms))
    measured = [m for m in (measure_scan(p, args.samples) for p in scans) if m is not None]
    save(
        args.name,
        {
            "default_state": default_state(CLASSES).to_dict(),
            "note": "d' on view values (no colour), split halves; vs_raw = ratio to 'raw k1'",
            "scans": measured,
        },
    )


if __name__ == "__main__":
    main()
