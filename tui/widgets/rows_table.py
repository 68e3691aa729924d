"""A DataTable of plain rows (preview, ledger, history, quarantine entries).

Repainting keeps the cursor: `show()` (and ChecksTable.show) re-adds the rows, then moves the cursor
back to the row with the key it was on (rows given `keys`), else to the same index, and restores the
scroll offset -- a refresh never moves the selection to another row under the user's hand."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

VOLATILE = {"checked_at", "created_at", "quarantined_at", "ingested_at", "pushed_at", "finished_at", "started_at",
            "heartbeat_at", "batch_id", "check_id", "quarantine_id", "sync_id", "file_sha256", "source_file", "run_id", "at"}


def cell(value: Any, width: int = 40) -> Text | str:
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, float):
        return f"{value:,.6g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    s = str(value)
    return s if len(s) <= width else s[: width - 1] + "…"


class KeptCursor:
    """Remember the cursor row's key (and index, scroll) before a repaint; put it back after."""

    def __init__(self, table: DataTable) -> None:
        self.table = table
        self.key: str | None = None
        self.index = table.cursor_row if table.row_count else 0
        self.scroll = (table.scroll_x, table.scroll_y)
        if table.row_count and table.is_valid_row_index(table.cursor_row):
            self.key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value

    def restore(self) -> None:
        t = self.table
        if not t.row_count:
            return
        row = self.index
        if self.key is not None:
            try:
                row = t.get_row_index(self.key)
            except Exception:  # noqa: BLE001 - the row is gone: stay at the same place
                row = self.index
        row = max(0, min(row, t.row_count - 1))
        t.scroll_to(*self.scroll, animate=False, immediate=True)
        if row != t.cursor_row:
            t.move_cursor(row=row, animate=False)


def selected_key(table: DataTable) -> str | None:
    """The row key under the cursor (None when the table is empty)."""
    if not table.row_count or not table.is_valid_row_index(table.cursor_row):
        return None
    return table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value


class RowsTable(DataTable):
    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)

    def show(self, columns: list[str], rows: list[tuple] | list[dict], keys: list[str] | None = None) -> None:
        stable = self.app.stable
        kept = KeptCursor(self)
        self.clear(columns=True)
        self.add_columns(*columns)
        for i, r in enumerate(rows):
            values = [r.get(c) for c in columns] if isinstance(r, dict) else list(r)
            cells = ["<v>" if stable and c in VOLATILE and v is not None else cell(v) for c, v in zip(columns, values)]
            self.add_row(*cells, key=keys[i] if keys else None)
        kept.restore()

    @property
    def selected_key(self) -> str | None:
        return selected_key(self)
