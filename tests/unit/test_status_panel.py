"""The side panel's text: figures are never split over two lines, colours stay visible."""

from __future__ import annotations

import pytest
from rich.console import Console

from ghosttui.tui.widgets.status_panel import StatusInfo, status_renderable

INFO = StatusInfo(
    session="boracite-2024-06",
    strategy="hybrid",
    round=12,
    position=(126, 33),
    source="uncertainty",
    current_label="horizontal",
    counts={"horizontal": 120, "vertical": 98, "none": 7},
    colours=["#0000ff", "#00ff00", "#ff0000"],
    keys=["h", "v", "n"],
    budget=250,
    training_labels=225,
    pending=41,
    plan="uncertainty round 5 of 9, margin",
    model_round=11,
    model_id=14,
    candidates=1,
    holdout_accuracy=0.971,
    holdout_ci=(0.95, 0.99),
    holdout_n=100,
    stability="settling",
    stability_reason="0.8% of the map changed in the last round",
    recent=[(205, 33, "vertical", "#00ff00"), (108, 0, "none", "#ff0000")],
)


@pytest.mark.parametrize("width", [26, 30, 36])
def test_figures_stay_whole_at_every_panel_width(width):
    console = Console(width=width, color_system=None, record=True)
    console.print(status_renderable(INFO))
    lines = console.export_text().splitlines()
    for figure in ["(126, 33)", "225/250", "95%-99% (n=100)", "97.1%", "14 (round 11)", "(108,0)n"]:
        assert any(figure in line for line in lines), (figure, lines)


def test_class_swatches_use_colours_readable_on_a_dark_background():
    console = Console(width=36, color_system="truecolor", record=True)
    console.print(status_renderable(INFO))
    html = console.export_text(styles=True)
    assert "38;2;0;0;255m" not in html  # pure blue would vanish
    assert "38;2;107;107;255m" in html


def test_a_model_trained_without_a_class_says_so():
    from dataclasses import replace

    console = Console(width=36, color_system=None, record=True)
    console.print(status_renderable(replace(INFO, model_absent=["none"])))
    text = " ".join(console.export_text().split())
    assert "trained without a label of none: label one when you see it" in text
    console = Console(width=36, color_system=None, record=True)
    console.print(status_renderable(INFO))
    assert "trained without" not in console.export_text()
