"""Pictures of the pattern pane in every view, and of the app, for docs/views.md.

For the simulated ``wall`` scan of ``make bench`` and the PbTiO3 and BaTiO3
``stripes`` multislice scans (when present): a session with 20 labels per class
from the truth; ``panes-SCAN.png``: every view (rows) at an interior horizontal
and vertical position (columns), each tile exactly the pixels the pane draws in a
160x48 terminal (``PatternPane.draw``, as ``ghosttui show`` writes them),
enlarged 3x; for the first scan also ``app-default.svg`` and ``app-native.svg``,
the whole app (Textual's SVG screenshot, the renderer of the snapshot tests).

    python benchmarks/views_screenshots.py [--data SCAN.h5 ...] [--ms MS.h5 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, simulated

from ghosttui.render.pane import APP_PANE_CELLS, META_KEY, PaneState, default_state
from ghosttui.render.views import VIEWS

SIZE = (160, 48)


def interior_position(truth: np.ndarray, cls: int) -> tuple[int, int]:
    from numpy.lib.stride_tricks import sliding_window_view

    padded = np.pad(truth, 2, mode="edge")
    inside = (sliding_window_view(padded, (5, 5)) == truth[:, :, None, None]).all((-1, -2))
    where = np.argwhere(inside & (truth == cls))
    return tuple(int(v) for v in where[len(where) // 2])


async def screenshot(session, state: PaneState, cursor, path: Path) -> None:
    from ghosttui.tui.app import create_app

    session.store.set_meta(META_KEY, state.to_dict())
    session.store.set_meta("cursor", list(cursor))
    app = create_app(session, render="halfblock")
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()  # the descan fit and scan mean
        await pilot.pause(0.5)
        app.save_screenshot(filename=path.name, path=str(path.parent))


def contact_sheet(session, where: dict[str, tuple[int, int]], path: Path) -> None:
    """Every view (rows) at a horizontal and a vertical position (columns), each tile the
    pattern pane exactly as the app draws it at 160x48, enlarged 3x, labelled."""
    from PIL import Image, ImageDraw

    from ghosttui.render.pane import PatternPane

    pane = PatternPane.for_session(session)
    base = default_state(session.classes)
    height, width, scale, label = 2 * APP_PANE_CELLS[1], APP_PANE_CELLS[0], 3, 150
    tile_h, tile_w = height * scale + 20, width * scale + 10
    sheet = Image.new("RGB", (label + tile_w * len(where), tile_h * len(VIEWS) + 20), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for c, (cls, cursor) in enumerate(where.items()):
        draw.text((label + c * tile_w + 4, 4), f"{cls} {cursor}", fill=(230, 230, 230))
    for r, view in enumerate(VIEWS):
        pane.state = PaneState(view=view, average=base.average)
        y = 20 + r * tile_h
        draw.text((6, y + 6), view, fill=(230, 230, 230))
        for c, cursor in enumerate(where.values()):
            rgb = pane.draw(*cursor, height, width).rgb
            big = np.repeat(np.repeat(rgb, scale, 0), scale, 1)
            sheet.paste(Image.fromarray(big), (label + c * tile_w, y))
        draw.text((6, y + 22), pane.caption(*cursor)[0].split(" · ")[1], fill=(150, 150, 150))
    sheet.save(path)
    print("wrote", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, action="append")
    parser.add_argument(
        "--ms",
        action="append",
        help="multislice scans (default: PbTiO3 and BaTiO3 stripes, dose 1e5, when present)",
    )
    parser.add_argument("--out", type=Path, default=ROOT.parent / "docs" / "views")
    args = parser.parse_args()
    import h5py

    from ghosttui.session.session import Session
    from ghosttui.session.settings import make_classes

    multislice = args.ms or [
        "/work/data/ms/pto_stripes_d1e5.h5",
        "/work/data/ms/bto_stripes_d1e5.h5",
    ]
    scans = args.data or [simulated("wall"), *(Path(p) for p in multislice if Path(p).exists())]
    args.out.mkdir(parents=True, exist_ok=True)
    for data in scans:
        with h5py.File(data, "r") as f:
            truth = f["truth"][()].astype(np.int64)
        names = ["horizontal", "vertical", "none"]
        rng = np.random.default_rng(0)
        rows = []
        for index, name in enumerate(names):
            for flat in rng.choice(np.flatnonzero(truth.ravel() == index), 20, replace=False):
                rx, ry = divmod(int(flat), truth.shape[1])
                rows.append((rx, ry, name, "import"))
        where = {name: interior_position(truth, i) for i, name in enumerate(names[:2])}
        tag = data.stem.split("-")[0]
        with tempfile.TemporaryDirectory() as scratch:
            os.environ["GHOSTTUI_SESSIONS"] = scratch
            session = Session.create("views", data, classes=make_classes())
            session.store.import_labels(rows)
            contact_sheet(session, where, args.out / f"panes-{tag}.png")
            if data == scans[0]:
                for label, state in {
                    "default": default_state(session.classes),
                    "native": PaneState(view="raw", average=1, zoom="native"),
                }.items():
                    path = args.out / f"app-{label}.svg"
                    asyncio.run(screenshot(session, state, where["horizontal"], path))
                    print("wrote", path)
            session.close()


if __name__ == "__main__":
    main()
