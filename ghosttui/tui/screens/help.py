"""The help screen: every key and what it does."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT = """\
Label the pattern with its class key. A class key in manual mode (after moving
the cursor with the arrows, page keys or go to) labels the position under the
cursor; Escape goes back to the queue. Every label is written to disk before
the next pattern appears; quit at any time and `ghosttui label NAME` resumes
where you stopped. The model retrains in the background at the end of each
round (or on demand); the map and the uncertainty queries update when it lands.
Rebind any action in session.toml: [keys] ID = "keys"."""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > #help-box {
        width: 96;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    HelpScreen #help-text {
        margin: 1 0;
        color: $text-muted;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        """``rows``: (keys, action id, what it does)."""
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(title="ghosttui keys", show_header=False, expand=True, box=None)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        for keys, action_id, what in self.rows:
            table.add_row(keys, action_id, what)
        with VerticalScroll(id="help-box"):
            yield Static(table)
            yield Static(HELP_TEXT, id="help-text")
            yield Static("[dim]Escape closes this help[/]")
