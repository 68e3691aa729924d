"""A DataTable of plain rows (preview, ledger, history, quarantine entries), sortable by any column.

Repainting keeps the cursor: `show()` (and ChecksTable.show) re-adds the rows, then moves the cursor
back to the row with the key it was on (rows given `keys`; rows without keys are keyed by their place
in the list given), else to the same index, and restores the scroll offset -- a refresh never moves
the selection to another row under the user's hand.

Numbers: a numeric column is right-aligned, ints with thousands separators, floats with one number of
decimals for the whole column (as many as its shown values need at 6 significant digits, at most
MAX_DECIMALS), so 12.50 and 3.25 line up.

Sorting (SortableTable): a click on a column's header sorts the table by that column, a second click
on it reverses the order; from the keyboard `s` lights up a column (left/right move it), Enter sorts by
it (again: reversed), escape leaves it. Values sort as what they are (numbers as numbers, NULLs last
in both directions), not as the text shown; the header's arrow shows the order. The order is kept
through later `show()` calls, and the cursor stays on the row (key) it was on."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.widgets import DataTable

VOLATILE = {"checked_at", "created_at", "quarantined_at", "ingested_at", "pushed_at", "finished_at", "started_at",
            "heartbeat_at", "batch_id", "check_id", "quarantine_id", "sync_id", "file_sha256", "source_file", "run_id", "at"}

MAX_DECIMALS = 6
WIDTH = 40  # a text cell is cut here (unless the table is told another width for its column)


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def decimals(value: Any, cap: int = MAX_DECIMALS) -> int:
    """How many decimals `value` needs at 6 significant digits (the precision a cell shows), at most
    `cap`: 12.5 -> 1, 3.25 -> 2, 3.1142453 -> 5, 1234.5678 -> 2, 7 -> 0."""
    if isinstance(value, int) or not is_number(value):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    if isinstance(value, Decimal):
        value = value.normalize()
    mantissa, _, exponent = f"{value:.6g}".partition("e")
    return max(0, min(cap, len(mantissa.partition(".")[2]) - int(exponent or 0)))


def column_decimals(values: Sequence[Any]) -> int | None:
    """The decimals of a numeric column (None when a value is not a number: not a numeric column;
    0 for a column of ints)."""
    shown = [v for v in values if v is not None]
    if not shown or not all(is_number(v) for v in shown):
        return None
    return max(decimals(v) for v in shown)


def number(value: Any, places: int) -> Text:
    """A number right-aligned with `places` decimals (a non-zero float too small for them: 3 significant digits)."""
    if isinstance(value, int):
        text = f"{value:,}" if not places else f"{value:,.{places}f}"
    elif isinstance(value, float) and not math.isfinite(value):
        text = str(value)
    elif value != 0 and abs(value) < 0.5 * 10 ** -places:
        text = f"{value:.3g}"
    else:
        text = f"{value:,.{places}f}"
    return Text(text, justify="right")


def cell(value: Any, width: int = WIDTH, places: int | None = None) -> Text:
    """One cell: NULL dim, numbers right-aligned (`places` decimals: the column's), text cut at `width`."""
    if value is None:
        return Text("NULL", style="dim", justify="right" if places is not None else "left")
    if is_number(value):
        return number(value, decimals(value) if places is None else places)
    s = str(value)
    return Text(s if len(s) <= width else s[: width - 1] + "…")


def sort_value(value: Any) -> tuple:
    """What a value sorts by: numbers as numbers, then everything else by its text (dates in ISO order)."""
    if is_number(value) and not (isinstance(value, float) and math.isnan(value)):
        return (0, value)
    return (1, str(value))


def sorted_indices(values: Sequence[Any], reverse: bool, key: Callable[[Any], Any] = sort_value) -> list[int]:
    """The order of `values` (stable), NULLs (and NaN) last whichever the direction."""
    present, missing = [], []
    for i, v in enumerate(values):
        (missing if v is None or (isinstance(v, float) and math.isnan(v)) else present).append(i)
    try:
        present.sort(key=lambda i: key(values[i]), reverse=reverse)
    except TypeError:  # values that do not compare: by their text
        present.sort(key=lambda i: str(values[i]), reverse=reverse)
    return present + missing


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


class SortableTable(DataTable):
    """Rows of raw values painted through `render_cell`, in the order the user chose (see the module
    docstring). Subclasses give the columns and values to `paint()`; `ordered_keys` is the row keys
    in the order shown."""

    BINDINGS = [
        Binding("s", "pick_sort", "Sort", show=False),
        Binding("escape", "cancel_sort", "Cancel sort", show=False),
    ]

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kw)
        self.sort_column: str | None = None
        self.sort_reverse = False
        self.ordered_keys: list[str] = []
        self._columns: list[str] = []
        self._records: list[list[Any]] = []
        self._keys: list[str] = []

    # --- painting ------------------------------------------------------------------------------
    def paint(self, columns: list[str], records: list[list[Any]], keys: list[str]) -> None:
        """Show `records` (one list of raw values per row, in `columns`' order) keyed by `keys`."""
        self._columns, self._records, self._keys = list(columns), records, keys
        if self.sort_column not in self._columns:
            self.sort_column, self.sort_reverse = None, False
        self._repaint()

    def _repaint(self) -> None:
        kept = KeptCursor(self)
        columns, records = self._columns, self._records
        order = list(range(len(records)))
        if self.sort_column is not None:
            at = columns.index(self.sort_column)
            order = sorted_indices([r[at] for r in records], self.sort_reverse, lambda v: self.sort_key(self.sort_column, v))
        places = {c: column_decimals([r[i] for r in records]) for i, c in enumerate(columns)}
        rows = [[self.render_cell(c, v, places[c]) for c, v in zip(columns, records[i])] for i in order]
        self.clear(columns=True)
        for at, c in enumerate(columns):
            label = Text(c + ((" ▼" if self.sort_reverse else " ▲") if c == self.sort_column else ""),
                         justify="right" if places[c] is not None else "left")
            # Widths measured here, not left to the table's idle-time measure: a repaint drawn before
            # that ran would keep the old widths in the table's line cache.
            self.add_column(label, width=max([label.cell_len] + [r[at].cell_len for r in rows]), key=c)
        for i, cells in zip(order, rows):
            self.add_row(*cells, key=self._keys[i])
        self.ordered_keys = [self._keys[i] for i in order]
        kept.restore()

    def render_cell(self, column: str, value: Any, places: int | None) -> Text:
        return cell(value, places=places)

    def sort_key(self, column: str, value: Any) -> Any:
        return sort_value(value)

    # --- sorting -------------------------------------------------------------------------------
    def sort_by(self, column: str) -> None:
        """Sort by `column`; by the column it is sorted by already: the other way round."""
        if column not in self._columns:
            return
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self._repaint()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        if event.data_table is not self:
            return
        event.stop()
        if self.cursor_type == "column":
            self.cursor_type = "row"
        self.sort_by(str(event.column_key.value))

    def action_pick_sort(self) -> None:
        if self.cursor_type == "column":  # `s` again: as Enter
            self._sort_by_cursor()
            return
        if not self._columns:
            return
        at = self._columns.index(self.sort_column) if self.sort_column in self._columns else 0
        self.cursor_coordinate = Coordinate(self.cursor_row if self.row_count else 0, at)
        self.cursor_type = "column"
        self.notify("sort: left/right choose a column, enter sorts by it (again: reversed), escape cancels", timeout=4)

    def action_cancel_sort(self) -> None:
        if self.cursor_type == "column":
            self.cursor_type = "row"

    def on_data_table_column_selected(self, event: DataTable.ColumnSelected) -> None:
        if event.data_table is not self:
            return
        event.stop()
        self._sort_by_cursor()

    def _sort_by_cursor(self) -> None:
        column = self._columns[self.cursor_column] if 0 <= self.cursor_column < len(self._columns) else None
        self.cursor_type = "row"
        if column is not None:
            self.sort_by(column)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_sort" and self.cursor_type != "column":
            return False  # escape means what it means elsewhere
        return True


class RowsTable(SortableTable):
    fit: str | None = None  # the column whose text is cut to the width the table has left for it
    _fit_width = WIDTH

    def show(self, columns: list[str], rows: list[tuple] | list[dict], keys: list[str] | None = None,
             fit: str | None = None) -> None:
        """`rows` as tuples (in `columns`' order) or dicts (by column name); a text cell is cut at
        WIDTH characters, the `fit` column's at what the columns before it leave of the table's
        width (again when the table is resized)."""
        self._stable = self.app.stable
        self.fit = fit
        records = [[r.get(c) for c in columns] if isinstance(r, dict) else list(r) for r in rows]
        self.paint(columns, records, list(keys) if keys else [f"#{i}" for i in range(len(records))])

    def _repaint(self) -> None:
        if self.fit in self._columns:
            self._fit_width = self._room_for_fit()
        super()._repaint()

    def _room_for_fit(self) -> int:
        """The table's width less the columns left of the `fit` one (each with its padding) and a
        scrollbar; WIDTH while the table is not laid out (a hidden tab)."""
        width = self.size.width
        if width <= 0:
            return WIDTH
        used = 0
        for i, c in enumerate(self._columns[: self._columns.index(self.fit)]):
            places = column_decimals([r[i] for r in self._records])
            label = len(c) + (2 if c == self.sort_column else 0)
            used += max([label] + [self.render_cell(c, r[i], places).cell_len for r in self._records]) + 2 * self.cell_padding
        return max(16, width - used - 2 * self.cell_padding - 2)

    def on_resize(self) -> None:
        if self.fit in self._columns and self._records and self._room_for_fit() != self._fit_width:
            self.call_after_refresh(self._repaint)  # not inside the layout pass (the table would paint stale widths)

    def render_cell(self, column: str, value: Any, places: int | None) -> Text:
        if self._stable and column in VOLATILE and value is not None:
            return Text("<v>")
        return cell(value, self._fit_width if column == self.fit else WIDTH, places)

    @property
    def selected_key(self) -> str | None:
        return selected_key(self)
