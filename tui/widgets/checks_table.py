"""Latest health result per table and rule; highlighting a row posts CheckSelected.

Rows are keyed by (table, rule, columns, engine), so a repaint keeps the cursor on the same check."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from ..data import RECORDED
from ..messages import CheckSelected
from .rows_table import KeptCursor

STATUS = {"pass": "green", "warn": "yellow", "fail": "bold red", RECORDED: "cyan"}


def check_key(c: dict[str, Any]) -> str:
    # A migration records several defects under one rule and legacy table: its message tells them apart.
    extra = (c.get("message") or "",) if c["status"] == RECORDED else ()
    return "\x1f".join((c["table_name"], c["rule"], c.get("rule_columns") or "", c.get("threshold") or "",
                        c.get("engine") or "", *extra))


class ChecksTable(DataTable):
    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.checks: list[dict[str, Any]] = []
        self.by_key: dict[str, dict[str, Any]] = {}

    def show(self, checks: list[dict[str, Any]], only_problems: bool) -> None:
        kept = KeptCursor(self)
        self.checks = [c for c in checks if not only_problems or c["status"] != "pass"]
        self.by_key = {check_key(c): c for c in self.checks}
        self.clear(columns=True)
        self.add_columns("status", "table", "rule", "columns", "measured", "threshold", "engine")
        for c in self.checks:
            m = c.get("measured_value")
            self.add_row(
                Text(c["status"], style=STATUS.get(c["status"], "")), c["table_name"], c["rule"],
                c.get("rule_columns") or (f"from {c['legacy_table']}" if c.get("legacy_table") else ""),
                "" if m is None else f"{m:,.6g}", c.get("threshold") or "", c.get("engine") or "", key=check_key(c),
            )
        kept.restore()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value in self.by_key:
            self.post_message(CheckSelected(self.by_key[event.row_key.value]))
