"""Tables: dataset -> table tree from the contracts; schema (STRUCT fields), partitioning, preview rows.

The Preview shows a table a page (PAGE_ROWS rows) at a time in its primary key's order (else its
partition column's), "rows X-Y of N" above it (N: the table's row count, row-group metadata, read
with the page); PageDown / PageUp in the preview read the next / previous page (keyset: one short
read-only read per page, see tui.data.preview_page). A header click (or `s`) sorts the page shown
(pages keep that sort until another table is selected; the pages themselves stay in key order)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from .. import data
from ..messages import TableSelected
from ..widgets.dataset_tree import DatasetTree
from ..widgets.freshness import Freshness
from ..widgets.rows_table import RowsTable
from ..widgets.schema_view import SchemaView
from .base import DataScreen

PREVIEW_ROWS = data.PAGE_ROWS


class PreviewTable(RowsTable):
    """The preview's rows; PageDown / PageUp turn its pages (not the cursor's screenful)."""

    BINDINGS = [
        Binding("pageup", "page(-1)", "Prev rows", key_display="PgUp"),
        Binding("pagedown", "page(1)", "Next rows", key_display="PgDn"),
    ]

    def action_page(self, step: int) -> None:
        self.screen.turn_page(step)


class TablesScreen(DataScreen):
    KEY = "tables"
    BINDINGS = [("t", "next_tab", "Next tab")]
    AUTO_FOCUS = "#tables-tree"
    PANE_FOCUS = {"schema-tab": "#tables-tree", "preview-tab": "#preview"}
    selected: str | None = None
    page: data.PreviewPage | None = None  # the page the preview shows

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
                    yield Static("", id="preview-info")
                    yield PreviewTable(id="preview")
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

    def turn_page(self, step: int) -> None:
        """The next (step 1) or previous (-1) page of the table previewed."""
        page = self.page
        if page is None or page.fqn != self.selected:
            return
        if step > 0 and page.has_next:
            self.load_preview(page.fqn, page.end, after=page.key(len(page.rows) - 1))
        elif step < 0 and page.has_prev:
            self.load_preview(page.fqn, max(0, page.start - page.limit), before=page.key(0))
        else:
            self.notify("the last page" if step > 0 else "the first page", severity="information", timeout=2)

    @work(thread=True, exclusive=True, group="preview")
    def load_preview(self, fqn: str, start: int = 0, after: tuple | None = None, before: tuple | None = None) -> None:
        try:
            page = data.preview_page(self.app.warehouse, fqn, PREVIEW_ROWS, start, after=after, before=before)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self.query_one(Freshness).failed, exc)
            return
        self.app.call_from_thread(self._paint_preview, page)

    def _paint_preview(self, page: data.PreviewPage) -> None:
        if page.fqn != self.selected:
            return
        moved = self.page is None or (self.page.fqn, self.page.start) != (page.fqn, page.start)
        table = self.query_one("#preview", PreviewTable)
        if self.page is not None and self.page.fqn != page.fqn:
            table.sort_column, table.sort_reverse = None, False  # another table: its own order (the key's)
        self.page = page
        table.show(page.columns or ["(table missing)"], page.rows, page.row_keys() if page.rows else None)
        if moved and table.row_count:
            table.move_cursor(row=0, animate=False)
            table.scroll_to(y=0, animate=False, immediate=True)
        order = f" by {', '.join(page.order)}" if page.order else " in storage order"
        pages = "  PgDn/PgUp: pages" if page.has_next or page.has_prev else ""
        self.query_one("#preview-info", Static).update(f"{page.span}{order if page.rows else ''}{pages}")
