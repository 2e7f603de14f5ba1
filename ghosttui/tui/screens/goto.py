"""The "go to" screen: type a probe position, the map cursor jumps there."""

from __future__ import annotations

import re
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

_POSITION = re.compile(r"^\s*\(?\s*(-?\d+)\s*[, ]\s*(-?\d+)\s*\)?\s*$")


def parse_position(text: str, scan_shape: tuple[int, int]) -> tuple[int, int]:
    """``"12, 5"`` (or ``12 5``, ``(12,5)``) -> (12, 5), checked against the scan's shape."""
    match = _POSITION.match(text)
    if match is None:
        raise ValueError("type a position as rx, ry (for example 12, 5)")
    rx, ry = int(match.group(1)), int(match.group(2))
    n_rx, n_ry = scan_shape
    if not (0 <= rx < n_rx and 0 <= ry < n_ry):
        raise ValueError(f"({rx}, {ry}) is outside the scan: rx 0..{n_rx - 1}, ry 0..{n_ry - 1}")
    return rx, ry


class GoToScreen(ModalScreen[tuple[int, int] | None]):
    """Asks for (rx, ry); dismisses with the position, or None on Escape."""

    DEFAULT_CSS = """
    GoToScreen {
        align: center middle;
    }
    GoToScreen > #goto-box {
        width: 60;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    GoToScreen #goto-error {
        color: $error;
        height: auto;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, scan_shape: tuple[int, int], current: tuple[int, int] | None) -> None:
        super().__init__()
        self.scan_shape = scan_shape
        self.current = current

    def compose(self) -> ComposeResult:
        n_rx, n_ry = self.scan_shape
        with Vertical(id="goto-box"):
            yield Static(f"Go to probe position (rx 0..{n_rx - 1}, ry 0..{n_ry - 1}):")
            placeholder = f"{self.current[0]}, {self.current[1]}" if self.current else "rx, ry"
            yield Input(placeholder=placeholder, id="goto-input")
            yield Static("", id="goto-error")
            yield Static("[dim]Enter jumps there (manual mode); Escape cancels[/]")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            position = parse_position(event.value, self.scan_shape)
        except ValueError as exc:
            self.query_one("#goto-error", Static).update(str(exc))
            return
        self.dismiss(position)

    def action_cancel(self) -> None:
        self.dismiss(None)
