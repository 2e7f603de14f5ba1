"""Counts per class, round, where the query came from, accuracy, stopping signal, training."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from ghosttui.render.colour import readable_hex

SOURCE_STYLES = {
    "grid": "cyan",
    "boundary": "magenta",
    "uncertainty": "yellow",
    "random": "white",
    "holdout": "green",
    "manual": "bold white",
    "import": "dim",
}


@dataclass
class StatusInfo:
    """Everything the panel shows; built by the app from the controller."""

    session: str = ""
    strategy: str = ""
    round: int = 1
    position: tuple[int, int] | None = None
    source: str = ""
    current_label: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    colours: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    budget: int = 0
    training_labels: int = 0
    pending: int = 0
    plan: str = ""
    model_round: int | None = None
    model_id: int | None = None
    model_stale: bool = False
    model_absent: list[str] = field(default_factory=list)  # classes it had no label of
    candidates: int = 0
    holdout_accuracy: float | None = None
    holdout_ci: tuple[float, float] | None = None
    holdout_n: int = 0
    stability: str = ""
    stability_reason: str = ""
    stopping_rule: str = ""
    recent: list[tuple[int, int, str, str]] = field(default_factory=list)


def _fixed(text: str, style: str = "") -> Text:
    """A value that is never wrapped (a figure split over two lines misreads); too long, it
    ends in an ellipsis instead."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


def status_renderable(info: StatusInfo) -> Group:
    """The panel's text: short key/value rows whose values never wrap, and sentences that do."""
    parts: list[Any] = [
        _fixed(info.session, "bold"),
        Text.assemble(f"round {info.round} · ", (info.strategy, "dim"), no_wrap=True),
    ]
    rows = Table.grid(padding=(0, 1))
    rows.add_column(style="dim", no_wrap=True)
    rows.add_column(no_wrap=True, overflow="ellipsis")
    if info.position is not None:
        rows.add_row("query", f"({info.position[0]}, {info.position[1]})")
        rows.add_row("from", Text(info.source, style=SOURCE_STYLES.get(info.source, "white")))
        if info.current_label:
            rows.add_row("label", info.current_label)
    parts.append(rows)
    if info.position is None:
        parts.append(Text("no query now", style="dim"))
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="left", no_wrap=True, overflow="ellipsis")
    table.add_column(justify="right", no_wrap=True)
    for (name, count), colour, key in zip(
        info.counts.items(), info.colours, info.keys, strict=False
    ):
        table.add_row(
            Text.assemble(("■ ", readable_hex(colour)), f"{name} ", (f"[{key}]", "dim")),
            str(count),
        )
    total = sum(info.counts.values())
    table.add_row(Text("labels", style="bold"), Text(f"{total}", style="bold"))
    parts.append(table)
    figures = Table.grid(padding=(0, 1))
    figures.add_column(style="dim", no_wrap=True, min_width=9)
    figures.add_column(no_wrap=True, overflow="ellipsis")
    figures.add_row("training", f"{info.training_labels}/{info.budget}")
    figures.add_row("queue", str(info.pending))
    if info.model_id is not None:
        figures.add_row(Text("model", style="bold"), f"{info.model_id} (round {info.model_round})")
        if info.model_stale:
            figures.add_row("", Text("stale", style="yellow"))
        if info.holdout_accuracy is None or not info.holdout_n:
            figures.add_row("holdout", "- (no labels)")
        else:
            figures.add_row("holdout", f"{info.holdout_accuracy:.1%}")
            if info.holdout_ci is not None:
                lo, hi = info.holdout_ci
                figures.add_row("95% CI", f"{lo:.0%}-{hi:.0%} (n={info.holdout_n})")
    else:
        figures.add_row("model", "none yet")
    verdict_style = {"stable": "bold green", "settling": "yellow", "changing": "red"}.get(
        info.stability, "dim"
    )
    figures.add_row(Text("stopping", style="bold"), Text(info.stability, style=verdict_style))
    parts.append(figures)
    if info.model_stale:
        parts.append(Text("the model was trained on labels since undone or changed", style="dim"))
    if info.model_absent:
        parts.append(
            Text(
                f"trained without a label of {', '.join(info.model_absent)}: "
                "label one when you see it",
                style="yellow",
            )
        )
    if info.model_id is None:
        parts.append(Text("one trains when this round ends", style="dim"))
    if info.candidates:
        parts.append(
            Text(f"{info.candidates} candidate model(s) not used: p promotes", style="yellow")
        )
    if info.plan:
        parts.append(Text(info.plan, style="italic dim"))
    if info.stability_reason:
        parts.append(Text(info.stability_reason, style="dim"))
    if info.stopping_rule:
        parts.append(Text(info.stopping_rule, style="dim italic"))
    if info.recent:
        recent = Text("recent ", style="dim")
        for rx, ry, cls, colour in info.recent[-4:]:
            recent.append(f"({rx},{ry})", style="dim")
            recent.append(f"{cls[:1]} ", style=readable_hex(colour))
        parts.append(recent)
    return Group(*parts)


class StatusPanel(Vertical):
    DEFAULT_CSS = """
    StatusPanel > #status-text {
        height: auto;
    }
    StatusPanel > #training-text {
        margin-top: 1;
        height: auto;
    }
    StatusPanel > #training-bar {
        height: 1;
    }
    """

    _status_lines: int | None = None  # lines the status text took when last shown

    def compose(self) -> ComposeResult:
        yield Static("", id="status-text")
        yield Static("", id="training-text")
        yield ProgressBar(total=None, show_eta=False, id="training-bar")

    def show(self, info: StatusInfo) -> None:
        """Show the status; the screen is laid out again only when the text's height changes
        (a re-layout repaints every widget: about 0.1 s on the 2-core machine, every key)."""
        text = self.query_one("#status-text", Static)
        renderable = status_renderable(info)
        width = text.content_region.width
        lines = None
        if width > 0:
            console = self.app.console
            lines = len(console.render_lines(renderable, console.options.update_width(width)))
        text.update(renderable, layout=lines is None or lines != self._status_lines)
        self._status_lines = lines

    def training(self, message: str, done: int | None = None, total: int | None = None) -> None:
        self.query_one("#training-text", Static).update(Text(message, style="bold"))
        bar = self.query_one("#training-bar", ProgressBar)
        bar.display = total is not None
        if total is not None:
            bar.update(total=total, progress=done or 0)
