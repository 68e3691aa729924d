"""Latest health result per table and rule; highlighting a row posts CheckSelected.

Rows are keyed by (table, rule, columns, engine), so a repaint keeps the cursor on the same check.
Sortable like every RowsTable (a header click, or `s`): status sorts by severity (fail, warn,
recorded, pass), measured as a number; `checks` is always in the order shown."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from ..data import CHECK_ORDER, RECORDED
from ..messages import CheckSelected
from .rows_table import SortableTable

STATUS = {"pass": "green", "warn": "yellow", "fail": "bold red", RECORDED: "cyan"}
COLUMNS = ["status", "table", "rule", "columns", "measured", "threshold", "engine"]


def check_key(c: dict[str, Any]) -> str:
    # A migration records several defects under one rule and legacy table: its message tells them apart.
    extra = (c.get("message") or "",) if c["status"] == RECORDED else ()
    return "\x1f".join((c["table_name"], c["rule"], c.get("rule_columns") or "", c.get("threshold") or "",
                        c.get("engine") or "", *extra))


class ChecksTable(SortableTable):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.checks: list[dict[str, Any]] = []
        self.by_key: dict[str, dict[str, Any]] = {}

    def show(self, checks: list[dict[str, Any]], only_problems: bool) -> None:
        shown = [c for c in checks if not only_problems or c["status"] != "pass"]
        self.by_key = {check_key(c): c for c in shown}
        records = [[c["status"], c["table_name"], c["rule"],
                    c.get("rule_columns") or (f"from {c['legacy_table']}" if c.get("legacy_table") else ""),
                    c.get("measured_value"), c.get("threshold") or "", c.get("engine") or ""] for c in shown]
        self.checks = shown
        self.paint(COLUMNS, records, [check_key(c) for c in shown])

    def _repaint(self) -> None:
        super()._repaint()
        self.checks = [self.by_key[k] for k in self.ordered_keys]  # the cursor's row is checks[cursor_row]

    def render_cell(self, column: str, value: Any, places: int | None) -> Text:
        if column == "status":
            return Text(value, style=STATUS.get(value, ""))
        if column == "measured":  # one column of many measures: each value its own digits, right-aligned
            return Text("" if value is None else f"{value:,.6g}", justify="right")
        return Text(value)

    def sort_key(self, column: str, value: Any) -> Any:
        if column == "status":
            return (CHECK_ORDER.get(value, len(CHECK_ORDER)), value)
        return super().sort_key(column, value)

    def on_data_table_row_highlighted(self, event: SortableTable.RowHighlighted) -> None:
        if event.row_key is not None and event.row_key.value in self.by_key:
            self.post_message(CheckSelected(self.by_key[event.row_key.value]))
