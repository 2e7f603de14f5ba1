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
    metrics: dict[str, Any] = field(default_factory=dict)
    stability: str = ""
    stability_reason: str = ""
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
        parts.append(Text("no query: budget reached or waiting for the model", style="dim"))
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="left")
    table.add_column(justify="right")
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
    parts.append(
        Text(
            f"training labels {info.training_labels}/{info.budget}, queue {info.pending}",
            style="dim",
        )
    )
    if info.plan:
        parts.append(Text(info.plan, style="italic dim"))
    m = info.metrics
    if info.model_round is not None:
        model = Text.assemble(("model ", "bold"), f"round {info.model_round}")
        if m.get("val_accuracy") is not None:
            model.append(f"  val {m['val_accuracy']:.1%}")
        parts.append(model)
        if "holdout_accuracy" in m:
            lo, hi = m["holdout_ci"]
            parts.append(
                Text(f"holdout {m['holdout_accuracy']:.1%} ({lo:.0%}-{hi:.0%}, n={m['holdout_n']})")
            )
    else:
        parts.append(Text("model: none yet", style="dim"))
    verdict_style = {"stable": "bold green", "settling": "yellow", "changing": "red"}.get(
        info.stability, "dim"
    )
    parts.append(Text.assemble(("map stability ", "bold"), (info.stability, verdict_style)))
    if info.stability_reason:
        parts.append(Text(info.stability_reason, style="dim"))
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
