"""Tables: dataset -> table tree from the contracts; schema (STRUCT fields), partitioning, preview rows."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, TabbedContent, TabPane

from .. import data
from ..messages import TableSelected
from ..widgets.dataset_tree import DatasetTree
from ..widgets.freshness import Freshness
from ..widgets.rows_table import RowsTable
from ..widgets.schema_view import SchemaView
from .base import DataScreen

PREVIEW_ROWS = 50


class TablesScreen(DataScreen):
    KEY = "tables"
    BINDINGS = [("t", "next_tab", "Next tab")]
    AUTO_FOCUS = "#tables-tree"
    selected: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Freshness()
        with Horizontal():
            yield DatasetTree(id="tables-tree")
            with TabbedContent(id="table-tabs"):
                with TabPane("Schema", id="schema-tab"):
                    with VerticalScroll():
                        yield SchemaView(id="schema")
                with TabPane("Preview", id="preview-tab"):
                    yield RowsTable(id="preview")
        yield Footer()

    def load(self) -> data.Overview:
        return data.overview(self.app.warehouse)

    def paint(self, ov: data.Overview) -> None:
        self.stats = {s.fqn: s for s in ov.tables}
        tree = self.query_one(DatasetTree)
        tree.show(ov.tables)
        want = self.selected or self.app.pending_table or ov.tables[0].fqn
        self.app.pending_table = None
        tree.select_fqn(want)
        self.select(want)

    def select(self, fqn: str) -> None:
        if fqn == self.selected and self.reads > 1:
            return
        self.selected = fqn
        stat = getattr(self, "stats", {}).get(fqn)
        self.query_one(SchemaView).show(fqn, stat.rows if stat else None)
        self.load_preview(fqn)

    def on_table_selected(self, message: TableSelected) -> None:
        self.select(message.fqn)

    @work(thread=True, exclusive=True, group="preview")
    def load_preview(self, fqn: str) -> None:
        try:
            cols, rows = data.preview(self.app.warehouse, fqn, PREVIEW_ROWS)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.query_one(Freshness).failed, exc)
            return
        self.app.call_from_thread(self._paint_preview, fqn, cols, rows)

    def _paint_preview(self, fqn: str, cols: list[str], rows: list[tuple]) -> None:
        if fqn != self.selected:
            return
        self.query_one("#preview", RowsTable).show(cols or ["(table missing)"], rows)
        self.query_one("#preview-tab", TabPane).border_title = f"first {len(rows)} rows"
