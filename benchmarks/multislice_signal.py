"""How big the polar signal of the multislice simulator is, next to thickness and tilt, and
the pictures for docs/simulation.md.

    python benchmarks/multislice_signal.py [--structure pto] [--scan /work/data/ms/pto_wall_d1e5.h5]

Uses the cached default library (built first if missing). Measures, on noise-free patterns
at zero tilt unless said otherwise, as a fraction of all electrons in the pattern:

* polar: sum over the first three disk pairs +-g along the polar axis of |I(g) - I(-g)|,
  per thickness (zero for the parent phase by symmetry);
* tilt: the same Friedel sum for the *parent* phase tilted by 1 and 3 mrad;
* thickness: sum over all disks of |I(t + 2 nm) - I(t)| (t - 2 nm at 30 nm).

Writes benchmarks/results/multislice_signal[_STRUCTURE].json and docs/simulation_*.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import ROOT, save

from ghosttui.simulate.compose import MultisliceSettings, PatternModel
from ghosttui.simulate.layouts import VARIANTS
from ghosttui.simulate.library import ensure_library

DOCS = ROOT.parent / "docs"


def disk_sums(model: PatternModel, image: np.ndarray, centres: np.ndarray) -> np.ndarray:
    q = model.q
    xx, yy = np.meshgrid(np.arange(q) - q / 2, np.arange(q) - q / 2, indexing="ij")
    radius = model.settings.semiangle / model.pixel + 1
    return np.array([image[np.hypot(xx - x, yy - y) <= radius].sum() for x, y in centres])


def friedel_sum(model: PatternModel, image: np.ndarray, cell: float) -> float:
    """sum over h = 1..3 of |I(h) - I(-h)| along Qx, over the pattern total."""
    total = 0.0
    for h in (1, 2, 3):
        g = h / cell * model.wavelength * 1e3 / model.pixel
        plus, minus = disk_sums(model, image, np.array([[g, 0.0], [-g, 0.0]]))
        total += abs(plus - minus)
    return total / image.sum()


def all_disks(model: PatternModel, phase: str) -> np.ndarray:
    data = model.library.phases[phase]
    centres = data.g * model.wavelength * 1e3 / model.pixel
    return centres[np.abs(centres).max(1) < model.q / 2 - 4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structure", default="pto")
    parser.add_argument("--scan", type=Path, help="a composed scan to picture (optional)")
    args = parser.parse_args()
    settings = MultisliceSettings(structure=args.structure)
    library = ensure_library(settings.library_spec())
    model = PatternModel(settings, library, azimuth=0.0)
    c_polar = library.phases["polar"].cell[0]
    c_parent = library.phases["parent"].cell[0]
    disks = all_disks(model, "polar")

    rows = []
    for t in np.arange(4.0, 30.01, 2.0):
        polar = model.pattern(0, t)
        thicker = model.pattern(0, t + 2.0 if t + 2.0 <= 30.0 else t - 2.0)
        change = np.abs(disk_sums(model, thicker, disks) - disk_sums(model, polar, disks)).sum()
        rows.append(
            {
                "thickness_nm": float(t),
                "polar_friedel": round(float(friedel_sum(model, polar, c_polar)), 5),
                "parent_friedel": round(
                    float(friedel_sum(model, model.pattern(4, t), c_parent)), 7
                ),
                "parent_friedel_tilt_1mrad": round(
                    float(friedel_sum(model, model.pattern(4, t, tilt=(1.0, 0.0)), c_parent)), 5
                ),
                "parent_friedel_tilt_3mrad": round(
                    float(friedel_sum(model, model.pattern(4, t, tilt=(3.0, 0.0)), c_parent)), 5
                ),
                "thickness_change_2nm": round(float(change / polar.sum()), 5),
            }
        )
        print(rows[-1])
    name = "multislice_signal" if args.structure == "pto" else f"multislice_signal_{args.structure}"
    save(
        name,
        {
            "command": f"python benchmarks/multislice_signal.py --structure {args.structure}",
            "library": library.path.name,
            "definitions": __doc__.split("Uses the cached")[1].split("Writes")[0].strip(),
            "rows": rows,
        },
    )
    pictures(model, args.structure, args.scan)


def pictures(model: PatternModel, structure: str, scan: Path | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {
        "+vertical": "+P along Qx",
        "-vertical": "-P along Qx",
        "+horizontal": "+P along Qy",
        "-horizontal": "-P along Qy",
        "none": "parent (cubic)",
    }
    fig, axes = plt.subplots(3, 5, figsize=(15, 9.4))
    cases = [(10.0, (0.0, 0.0)), (25.0, (0.0, 0.0)), (25.0, (2.0, -1.0))]
    for row, (t, tilt) in enumerate(cases):
        for v, name in enumerate(VARIANTS):
            image = model.pattern(v, t, tilt=tilt)
            ax = axes[row, v]
            ax.imshow(np.log10(image + 1e-7), cmap="magma", vmin=-6.5, vmax=-1)
            ax.set_title(f"{titles[name]}, {t:g} nm, tilt {tilt[0]:g},{tilt[1]:g}", fontsize=9)
            ax.axis("off")
    fig.suptitle(
        f"{structure}: noise-free patterns (log intensity, rows = Qx, columns = Qy)", fontsize=11
    )
    fig.tight_layout()
    out = DOCS / f"simulation_{structure}_variants.png"
    fig.savefig(out, dpi=72)
    print(f"wrote {out}")
    if scan is None:
        return
    import h5py

    with h5py.File(scan, "r") as f:
        data = f["data"]
        maps = {
            "truth (0 h, 1 v, 2 none)": f["truth"][()],
            "variant (+v -v +h -h none)": f["variant"][()],
            "thickness (nm)": f["thickness_nm"][()],
            "|tilt| (mrad)": np.linalg.norm(f["tilt_mrad"][()], axis=-1),
        }
        truth = maps["truth (0 h, 1 v, 2 none)"]
        picks = [
            tuple(np.argwhere(truth == c)[len(np.argwhere(truth == c)) // 2]) for c in (0, 1, 2)
        ]
        patterns = [data[p] for p in picks]
    fig, axes = plt.subplots(1, 7, figsize=(21, 4.2))
    for ax, (title, image) in zip(axes[:4], maps.items(), strict=True):
        shown = ax.imshow(image, cmap="viridis" if "variant" not in title else "tab10")
        ax.set_title(title, fontsize=9)
        fig.colorbar(shown, ax=ax, fraction=0.05)
    for ax, p, pattern in zip(axes[4:], picks, patterns, strict=True):
        ax.imshow(np.log10(pattern.astype(float) + 1), cmap="magma")
        ax.set_title(f"counts at {p} (class {truth[p]}), log", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{scan.name}: the maps behind the scan, and three recorded patterns")
    fig.tight_layout()
    out = DOCS / f"simulation_{structure}_scan.png"
    fig.savefig(out, dpi=72)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
