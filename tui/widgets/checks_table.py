"""Latest health result per table and rule; highlighting a row posts CheckSelected."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from ..messages import CheckSelected

STATUS = {"pass": "green", "warn": "yellow", "fail": "bold red"}


class ChecksTable(DataTable):
    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.checks: list[dict[str, Any]] = []

    def show(self, checks: list[dict[str, Any]], only_problems: bool) -> None:
        self.checks = [c for c in checks if not only_problems or c["status"] != "pass"]
        self.clear(columns=True)
        self.add_columns("status", "table", "rule", "columns", "measured", "threshold", "engine")
        for i, c in enumerate(self.checks):
            m = c.get("measured_value")
            self.add_row(
                Text(c["status"], style=STATUS.get(c["status"], "")), c["table_name"], c["rule"], c.get("rule_columns") or "",
                "" if m is None else f"{m:,.6g}", c.get("threshold") or "", c.get("engine") or "", key=str(i),
            )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value is not None:
            self.post_message(CheckSelected(self.checks[int(event.row_key.value)]))
