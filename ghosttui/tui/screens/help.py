"""The help screen: every key and what it does."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT = """\
Label the pattern with its class key. A class key in manual mode (after moving
the cursor with the arrows) labels the position under the cursor; Escape goes
back to the queue. Every label is written to disk before the next pattern
appears; quit at any time and `ghosttui label NAME` resumes where you stopped.
The model retrains in the background at the end of each round (or on demand);
the map and the uncertainty queries update when it lands."""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(title="ghosttui keys", show_header=False, expand=True, box=None)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for keys, what in self.rows:
            table.add_row(keys, what)
        with Vertical(id="help-box"):
            yield Static(table)
            yield Static(HELP_TEXT, id="help-text")
            yield Static("[dim]Escape closes this help[/]")
