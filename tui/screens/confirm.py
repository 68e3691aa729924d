"""A yes/no question before an action that changes data. The focus starts on No: Enter (or Esc, or
`n`) answers No; only `y` or the Yes button says yes. `details` are (label, value) lines shown
under the question (table, rule, rows, what undoes it)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [("y", "answer(True)", "Yes"), ("n", "answer(False)", "No"), ("escape", "answer(False)", "Cancel")]
    AUTO_FOCUS = "#no"

    def __init__(self, question: str, details: list[tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.question = question
        self.details = details or []

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(Text(self.question, style="bold"), id="question")
            if self.details:
                grid = Table.grid(padding=(0, 1))
                grid.add_column(style="bold", no_wrap=True)
                grid.add_column()
                for label, value in self.details:
                    grid.add_row(label, value)
                yield Static(grid, id="confirm-details")
            with Horizontal(id="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    @property
    def plain(self) -> str:
        """The question and its details as plain text (for tests and logs)."""
        return "\n".join([self.question, *(f"{label} {value}" for label, value in self.details)])
