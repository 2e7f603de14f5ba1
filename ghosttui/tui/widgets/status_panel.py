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
    candidates: int = 0
    estimate: str = ""
    stability: str = ""
    stability_reason: str = ""
    stopping_rule: str = ""
    recent: list[tuple[int, int, str, str]] = field(default_factory=list)


def status_renderable(info: StatusInfo) -> Group:
    parts: list[Any] = []
    head = Text.assemble(
        (f"{info.session}", "bold"), f"  round {info.round}  ", (info.strategy, "dim")
    )
    parts.append(head)
    if info.position is not None:
        style = SOURCE_STYLES.get(info.source, "white")
        line = Text.assemble(
            ("query ", "dim"), f"({info.position[0]}, {info.position[1]}) ", (info.source, style)
        )
        if info.current_label:
            line.append(f"  labelled {info.current_label}", style="dim")
        parts.append(line)
    else:
        parts.append(Text("no query now", style="dim"))
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="left")
    table.add_column(justify="right")
    for (name, count), colour, key in zip(
        info.counts.items(), info.colours, info.keys, strict=False
    ):
        table.add_row(Text.assemble(("■ ", colour), f"{name} ", (f"[{key}]", "dim")), str(count))
    total = sum(info.counts.values())
    table.add_row(Text("labels", style="bold"), Text(f"{total}", style="bold"))
    parts.append(table)
    parts.append(
        Text(
            f"training labels {info.training_labels}/{info.budget}, queue {info.pending}",
            style="dim",
        )
    )
    if info.plan:
        parts.append(Text(info.plan, style="italic dim"))
    if info.model_id is not None:
        model = Text.assemble(("model ", "bold"), f"{info.model_id} (round {info.model_round})")
        if info.model_stale:
            model.append("  stale: trained on labels since undone or changed", style="yellow")
        parts.append(model)
        parts.append(Text(f"holdout {info.estimate}"))
    else:
        parts.append(Text("model: none yet (one trains when this round ends)", style="dim"))
    if info.candidates:
        parts.append(
            Text(f"{info.candidates} candidate model(s) not used: p promotes", style="yellow")
        )
    verdict_style = {"stable": "bold green", "settling": "yellow", "changing": "red"}.get(
        info.stability, "dim"
    )
    parts.append(Text.assemble(("stopping rule ", "bold"), (info.stability, verdict_style)))
    if info.stability_reason:
        parts.append(Text(info.stability_reason, style="dim"))
    if info.stopping_rule:
        parts.append(Text(info.stopping_rule, style="dim italic"))
    if info.recent:
        recent = Text("recent ", style="dim")
        for rx, ry, cls, colour in info.recent[-4:]:
            recent.append(f"({rx},{ry})", style="dim")
            recent.append(f"{cls[:1]} ", style=colour)
        parts.append(recent)
    return Group(*parts)


class StatusPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", id="status-text")
        yield Static("", id="training-text")
        yield ProgressBar(total=None, show_eta=False, id="training-bar")

    def show(self, info: StatusInfo) -> None:
        self.query_one("#status-text", Static).update(status_renderable(info))

    def training(self, message: str, done: int | None = None, total: int | None = None) -> None:
        self.query_one("#training-text", Static).update(Text(message, style="bold"))
        bar = self.query_one("#training-bar", ProgressBar)
        bar.display = total is not None
        if total is not None:
            bar.update(total=total, progress=done or 0)
