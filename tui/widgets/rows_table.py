"""A DataTable of plain rows (preview, ledger, history, quarantine entries)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
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


class RowsTable(DataTable):
    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)

    def show(self, columns: list[str], rows: list[tuple] | list[dict], keys: list[str] | None = None) -> None:
        stable = self.app.stable
        self.clear(columns=True)
        self.add_columns(*columns)
        for i, r in enumerate(rows):
            values = [r.get(c) for c in columns] if isinstance(r, dict) else list(r)
            cells = ["<v>" if stable and c in VOLATILE and v is not None else cell(v) for c, v in zip(columns, values)]
            self.add_row(*cells, key=keys[i] if keys else None)
