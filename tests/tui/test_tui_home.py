"""Issue #25, the analyst's home: the Tables preview pages in primary-key order ("rows X-Y of N"), the
Quarantine entries say when they are capped and show the reason without its source path, numbers are
right-aligned with one number of decimals per column, headers sort, and the Coverage heat map fits
80x24. Real app (pilot), real sample warehouse."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text

import data_contracts as dc
from data_contracts.to_duckdb import table_ref
from tui import data
from tui.app import CbiApp
from tui.widgets.checks_table import ChecksTable, check_key
from tui.widgets.rows_table import RowsTable, cell, column_decimals

from .tui_pilot import count_reads, press, q, run, settle

SIZE = (120, 40)
FRED = "raw_intelligence.fred_economic"




def plain(table: RowsTable, row: int) -> list[str]:
    return [c.plain if isinstance(c, Text) else str(c) for c in table.get_row_at(row)]


async def open_preview(pilot, app, fqn: str) -> RowsTable:
    """Tables screen, `fqn` selected in the tree, the Preview tab showing (its table focused)."""
    await press(pilot, app, "2")
    app.screen.query_one("#tables-tree").select_fqn(fqn)
    await settle(pilot, app)
    await press(pilot, app, "t")
    preview = app.screen.query_one("#preview", RowsTable)
    assert app.focused is preview
    return preview


async def click_header(pilot, table: RowsTable, column: str) -> None:
    """A mouse click on `column`'s header (scrolled into view first, as a user would)."""
    at = list(table.columns).index(column)
    x = sum(c.get_render_width(table) for c in table.ordered_columns[:at])
    if x < table.scroll_x or x + 2 > table.scroll_x + table.size.width - 2:
        table.scroll_to(x=x, animate=False, immediate=True)
        await settle(pilot, table.app)
    await pilot.click(table, offset=(x - int(table.scroll_x) + 1, 0))
    await settle(pilot, table.app)


# --- 1. the preview: primary-key order, pages, "rows X-Y of N" ---------------------------------------


def test_preview_pages_in_primary_key_order_with_rows_x_y_of_n(home: Path, monkeypatch):
    contract = dc.get(FRED)
    assert contract.primary_key == ("series_id", "date")
    n = q(home, f"SELECT count(*) FROM {table_ref(contract)}")[0][0]
    page1 = q(home, f"SELECT * FROM {table_ref(contract)} ORDER BY series_id, date LIMIT 50")
    page2 = q(home, f"SELECT * FROM {table_ref(contract)} ORDER BY series_id, date LIMIT 50 OFFSET 50")
    opened = count_reads(monkeypatch)

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            preview = await open_preview(pilot, app, FRED)
            screen = app.screen
            info = lambda: str(screen.query_one("#preview-info").render())  # noqa: E731
            assert screen.page.rows == page1 and preview.row_count == 50
            assert f"rows 1-50 of {n:,}" in info() and "by series_id, date" in info()
            assert f"rows 1-50 of {n:,}" in app.export_text()
            assert preview.ordered_keys[0] == f"{page1[0][0]}\x1f{page1[0][1]}"  # rows keyed by their primary key

            opened.clear()
            await press(pilot, app, "pagedown")
            assert len(opened) == 1, opened  # one short read a page
            assert screen.page.rows == page2 and f"rows 51-100 of {n:,}" in info()
            assert preview.cursor_row == 0
            await press(pilot, app, "pagedown")
            assert f"rows 101-150 of {n:,}" in info()
            await press(pilot, app, "pageup", "pageup")
            assert screen.page.rows == page1 and f"rows 1-50 of {n:,}" in info()
            opened.clear()
            await press(pilot, app, "pageup")  # the first page: nothing before it, nothing read
            assert opened == [] and f"rows 1-50 of {n:,}" in info()

            # A table smaller than a page: all its rows, no next page.
            screen.query_one("#tables-tree").select_fqn("regimes.regime_weights")
            await settle(pilot, app)
            assert preview.row_count == 16 and "rows 1-16 of 16" in info()
            names = [r[0] for r in q(home, "SELECT regime_name FROM regimes.regime_weights ORDER BY regime_name")]
            assert [r[0] for r in screen.page.rows] == names
            preview.focus()
            opened.clear()
            await press(pilot, app, "pagedown")
            assert opened == [] and "rows 1-16 of 16" in info()

    run(go())


def test_keyset_pages_walk_a_composite_key_table_both_ways(home: Path):
    """Every row exactly once, in key order, forward by `after` and back by `before`."""
    path = home / "warehouse.duckdb"
    fqn = "raw_intelligence.cftc_cot"
    contract = dc.get(fqn)
    keys = ", ".join(contract.primary_key)
    want = q(home, f"SELECT * FROM {table_ref(contract)} ORDER BY {keys}")
    page = data.preview_page(path, fqn, limit=200)
    pages = [page]
    while page.has_next:
        page = data.preview_page(path, fqn, limit=200, start=page.end, after=page.key(len(page.rows) - 1))
        pages.append(page)
    assert [r for p in pages for r in p.rows] == want
    assert [p.start for p in pages] == list(range(0, len(want), 200)) and pages[-1].end == len(want) == page.total
    assert pages[-1].span == f"rows {pages[-1].start + 1:,}-{len(want):,} of {len(want):,}"
    back = pages[-1]
    while back.has_prev:
        back = data.preview_page(path, fqn, limit=200, start=back.start - 200, before=back.key(0))
        assert back.rows == pages[back.start // 200].rows
    assert back.start == 0
    assert data.preview_page(path, "training.model_runs").span == "no rows (0 of 0)"


# --- 2. quarantine entries: the cap said, the reason without its source path ----------------------


def test_quarantine_entries_say_when_capped_and_show_the_reason_without_its_path(home: Path, monkeypatch):
    opened = count_reads(monkeypatch)

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3", "t")
            screen = app.screen
            groups = screen.query_one("#q-groups", RowsTable)
            entries = screen.query_one("#q-entries", RowsTable)
            g = screen.highlighted_group()
            assert g["rows"] > data.ENTRIES_LIMIT  # the sample's biggest group: 8,985 held rows
            assert entries.row_count == data.ENTRIES_LIMIT
            note = f"showing {data.ENTRIES_LIMIT} of {g['rows']:,} held rows"
            assert note in app.export_text()
            rows = screen.prefetched["entries"][(g["table"], g["rule"])]
            first = rows[0]
            reason = plain(entries, 0)[list(entries.columns).index("reason")]
            assert first["reason"].startswith(first["source_file"])  # as stored
            assert not reason.startswith("/") and first["source_file"] not in reason
            assert reason.rstrip("…") in first["reason"] and len(reason) > 40  # wider than the old cut
            width = entries.ordered_columns[list(entries.columns).index("reason")].get_render_width(entries)
            assert width <= entries.size.width  # fits the pane
            assert first["reason"] in str(screen.query_one("#q-payload").render())  # the full text there
            assert g["rule"] not in plain(groups, 0)[4]  # the example too: no path, no rule
            opened.clear()
            await press(pilot, app, "r")
            assert len(opened) == 1, opened  # the note costs no query
            assert note in app.export_text()
            # A group under the cap: its count, no "showing".
            small = min(range(len(screen.groups)), key=lambda i: screen.groups[i]["rows"])
            groups.move_cursor(row=small)
            await settle(pilot, app)
            n = screen.groups[small]["rows"]
            assert entries.row_count == n < data.ENTRIES_LIMIT
            text = app.export_text()
            assert f"{n:,} held rows" in text and "showing" not in text

    run(go())


def test_short_reason_drops_the_path_record_and_rule():
    assert data.short_reason("/d/w.parquet:12 plausible_unit: p95 of temp_max", "plausible_unit", "/d/w.parquet") == "p95 of temp_max"
    assert data.short_reason("/d/f.csv: parse_error: bad header", "parse_error", "/d/f.csv") == "bad header"
    assert data.short_reason("/a dir/w.parquet:? not_null: x", "not_null") == "x"  # a group's example: no source column
    gate = "batch b1 failed blocking rule(s) not_null on t"
    assert data.short_reason(gate, "not_null", None) == gate and data.short_reason(None) == ""


# --- 3. numbers: right-aligned, one number of decimals per column -------------------------------


def test_numbers_align_with_the_decimals_their_column_needs():
    assert column_decimals([12.5, 3.25, None]) == 2 and column_decimals([1, 2]) == 0 and column_decimals(["a", 1]) is None
    assert column_decimals([0.1 + 0.2]) == 1 and column_decimals([1 / 3]) == 6
    assert column_decimals([3.1142453, 1.35]) == 5  # judged at 6 significant digits, as cells were shown
    cells = [cell(v, places=2) for v in (12.5, 3.25, 1234.0)]
    assert [c.plain for c in cells] == ["12.50", "3.25", "1,234.00"] and {c.justify for c in cells} == {"right"}
    assert cell(1234567).plain == "1,234,567" and cell(1234567).justify == "right"
    assert cell(2.5e-9, places=2).plain == "2.5e-09"  # too small for the column's decimals: not shown as 0.00
    assert cell(True).plain == "True" and cell(True).justify != "right"


def test_preview_numbers_line_up(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            preview = await open_preview(pilot, app, "market_data.yahoo_historical")
            page = app.screen.page
            at = page.columns.index("close")
            closes = [r[at] for r in page.rows]
            places = column_decimals(closes)
            shown = [preview.get_row_at(i)[at] for i in range(preview.row_count)]
            assert all(isinstance(c, Text) and c.justify == "right" for c in shown)
            assert {len(c.plain.partition(".")[2]) for c in shown if c.plain != "NULL"} == {places}
            assert [float(c.plain.replace(",", "")) for c in shown if c.plain != "NULL"] == [
                round(v, places) for v in closes if v is not None]
            # On screen the decimal points line up: every close ends in the same column.
            text = app.export_text().splitlines()
            first = next(c.plain for c in shown if c.plain != "NULL")
            ends = {line.index(first) + len(first) for line in text if first in line}
            assert len(ends) == 1

    run(go())


# --- 4. sorting by a header -------------------------------------------------------------------


def test_a_header_click_sorts_numbers_as_numbers_and_keeps_the_cursor_row(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            preview = await open_preview(pilot, app, FRED)
            page = app.screen.page
            at = page.columns.index("value")
            values = {k: r[at] for k, r in zip(page.row_keys(), page.rows)}
            await press(pilot, app, "down", "down", "down")
            key = preview.selected_key
            await click_header(pilot, preview, "value")
            order = [values[k] for k in preview.ordered_keys]
            assert order == sorted(order) and order != [values[k] for k in page.row_keys()]
            assert preview.selected_key == key  # the cursor stayed on its row
            assert "value ▲" in app.export_text()
            await click_header(pilot, preview, "value")
            assert [values[k] for k in preview.ordered_keys] == sorted(order, reverse=True)
            assert preview.selected_key == key and "value ▼" in app.export_text()
            # From the keyboard: s, left to the column, enter.
            await press(pilot, app, "s")
            assert preview.cursor_type == "column"
            assert preview.cursor_column == list(preview.columns).index("value")  # it starts on the sorted column
            for _ in range(preview.cursor_column - list(preview.columns).index("date")):
                await press(pilot, app, "left")
            await press(pilot, app, "enter")
            assert preview.cursor_type == "row" and preview.sort_column == "date" and not preview.sort_reverse
            dates = {k: r[page.columns.index("date")] for k, r in zip(page.row_keys(), page.rows)}
            assert [dates[k] for k in preview.ordered_keys] == sorted(dates.values())
            assert preview.selected_key == key
            await press(pilot, app, "s", "escape")  # escape leaves the column cursor, sorts nothing
            assert preview.cursor_type == "row" and preview.sort_column == "date" and not preview.sort_reverse

    run(go())


def test_checks_sort_by_measured_and_the_cursor_names_the_check_shown(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3")
            checks = app.screen.query_one(ChecksTable)
            await press(pilot, app, "down")
            key = check_key(checks.checks[checks.cursor_row])
            await click_header(pilot, checks, "measured")
            measured = [c.get("measured_value") for c in checks.checks]
            present = [m for m in measured if m is not None]
            assert present == sorted(present) and measured[len(present):] == [None] * (len(measured) - len(present))
            assert [check_key(c) for c in checks.checks] == checks.ordered_keys  # checks[row] is the row shown
            assert check_key(checks.checks[checks.cursor_row]) == key
            c = checks.checks[checks.cursor_row]
            assert f"{c['table_name']}  {c['rule']}" in app.screen.detail_plain
            await click_header(pilot, checks, "status")  # status by severity: fail, warn, recorded, pass
            order = [data.CHECK_ORDER[c["status"]] for c in checks.checks]
            assert order == sorted(order)
            await press(pilot, app, "r")  # a refresh keeps the order and the row
            assert checks.sort_column == "status" and check_key(checks.checks[checks.cursor_row]) == key

    run(go())


# --- 5. the coverage heat map at 80x24 -------------------------------------------------------


def test_coverage_heat_map_and_legend_fit_80x24(home: Path):
    if data.coverage_module() is None:
        return

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(80, 24)) as pilot:
            await press(pilot, app, "4")
            series = app.screen.query_one("#series", RowsTable)
            for row in (0, next(i for i, c in enumerate(app.screen.items) if len({m["month"][:4] for m in c.months}) > 10)):
                series.move_cursor(row=row)
                await settle(pilot, app)
                lines = app.export_text().splitlines()
                assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
                header = next(line for line in lines if "year J F M A M J J A S O N D" in line)
                assert header.rstrip().endswith("N D")  # December's column is on screen
                years = [line.split("│", 1)[1].split() for line in lines if "│" in line]
                rows = [cells for cells in years if cells and cells[0].isdigit() and len(cells[0]) == 4]
                assert rows and all(len(cells) == 13 for cells in rows), rows  # the year and 12 months, each
                text = "\n".join(lines)
                assert "legend: ■ 100%" in text and "■ <50%" in text and "· outside span" in text

    run(go())
