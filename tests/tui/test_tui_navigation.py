"""Navigation: focus lands on the table (not the tab strip) on Health and Sync, `t` switches tabs,
Enter on a check opens its held rows, and the Overview tree survives its own refresh timer
(collapsed datasets stay collapsed, the cursor stays). Real app, real sample warehouse."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import TabbedContent

from tui.app import CbiApp
from .tui_pilot import count_reads, press, run, settle
from tui.screens.health import group_key
from tui.widgets.checks_table import ChecksTable
from tui.widgets.dataset_tree import DatasetTree
from tui.widgets.rows_table import RowsTable

SIZE = (120, 40)


def test_health_and_sync_focus_the_table_and_t_switches_tabs(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3", "down")
            checks = app.screen.query_one(ChecksTable)
            assert app.focused is checks and checks.cursor_row == 1  # arrows move in the table at once
            await press(pilot, app, "t")
            assert app.screen.query_one(TabbedContent).active == "quarantine-tab"
            groups = app.screen.query_one("#q-groups", RowsTable)
            assert app.focused is groups
            await press(pilot, app, "t")
            assert app.screen.query_one(TabbedContent).active == "checks-tab" and app.focused is checks

            await press(pilot, app, "5")
            ledger = app.screen.query_one("#ledger", RowsTable)
            assert ledger.row_count == 2
            assert app.focused is ledger
            await press(pilot, app, "down")
            assert ledger.cursor_row == 1
            tabs = app.screen.query_one(TabbedContent)
            for pane, table in (("tables-tab", "#per-table"), ("parity-tab", "#parity"), ("ledger-tab", "#ledger")):
                await press(pilot, app, "t")
                assert tabs.active == pane and app.focused is app.screen.query_one(table)

            await press(pilot, app, "2")
            assert isinstance(app.focused, DatasetTree)
            tabs = app.screen.query_one(TabbedContent)
            await press(pilot, app, "t")
            assert tabs.active == "preview-tab"

    run(go())


def test_enter_on_a_check_opens_its_held_rows(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3")
            checks = app.screen.query_one(ChecksTable)
            held = set(app.screen.groups_by_key)
            row = next(i for i, c in enumerate(checks.checks) if group_key({"table": c["table_name"], "rule": c["rule"]}) in held)
            c = checks.checks[row]
            checks.move_cursor(row=row)
            await settle(pilot, app)
            await press(pilot, app, "enter")
            assert app.screen.query_one(TabbedContent).active == "quarantine-tab"
            groups = app.screen.query_one("#q-groups", RowsTable)
            assert app.focused is groups
            g = app.screen.selected_group()
            assert (g["table"], g["rule"]) == (c["table_name"], c["rule"])
            entries = app.screen.query_one("#q-entries", RowsTable)
            assert entries.row_count == min(200, g["rows"])

    run(go())


def test_overview_tree_survives_its_refresh_timer(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0.3)
        async with app.run_test(size=(100, 50)) as pilot:
            await settle(pilot, app)
            tree = app.screen.query_one(DatasetTree)
            assert app.focused is tree
            market = next(n for n in tree.root.children if str(n.label).startswith("market_data"))
            await press(pilot, app, "down", "down")  # raw_intelligence, then its first table
            cursor = tree.cursor_node.data
            assert cursor is not None
            market.collapse()
            await settle(pilot, app)
            reads = app.screen.reads
            await pilot.pause(1.5)  # several timer refreshes
            await settle(pilot, app)
            assert app.screen.reads >= reads + 2
            assert not market.is_expanded and tree.cursor_node.data == cursor
            assert tree.builds == 1  # relabelled, never rebuilt
            await press(pilot, app, "r")
            assert not market.is_expanded and tree.cursor_node.data == cursor

    run(go())


def test_a_busy_screen_retries_by_itself(home: Path):
    """A real writer process holds the warehouse while Health opens: the screen says busy, and once
    the writer lets go it reads again without a key being pressed."""
    import subprocess
    import sys

    hold = "import duckdb, sys; con = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.readline(); con.close()"
    proc = subprocess.Popen([sys.executable, "-c", hold, str(home / "warehouse.duckdb")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            loop = asyncio.get_running_loop()
            end = loop.time() + 10
            while app.screen.failures == 0 and loop.time() < end:
                await pilot.pause(0.05)
            screen = app.screen
            assert screen.failures >= 1 and screen.reads == 0
            assert "warehouse busy" in app.export_text()
            await pilot.pause(1.5)  # retries meanwhile find it busy too
            assert screen.reads == 0
            proc.stdin.write("release\n")
            proc.stdin.flush()
            while screen.reads == 0 and loop.time() < end + 10:
                await pilot.pause(0.1)
            assert proc.wait(timeout=10) == 0
            assert screen.reads == 1 and screen.query_one(ChecksTable).row_count > 0
            assert "warehouse busy" not in app.export_text()

    try:
        run(go())
    finally:
        proc.kill()


def test_one_health_refresh_opens_one_connection_and_paints_every_pane(home: Path, monkeypatch):
    """`r` on Health: the checks, the groups, and the details under the cursors (history, entries,
    payload) come from one read-only connection; moving to another group reads its entries then."""
    opened = count_reads(monkeypatch)

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3")
            await press(pilot, app, "down")  # a check whose history is not the first one's
            await press(pilot, app, "t")  # the quarantine tab, so its panes are live too
            opened.clear()
            await press(pilot, app, "r")
            assert len(opened) == 1, opened
            screen = app.screen
            assert "history (latest" in screen.detail_plain  # the check under the cursor, painted from that read
            entries = screen.query_one("#q-entries", RowsTable)
            assert entries.row_count > 0
            payload = str(screen.query_one("#q-payload").render())
            assert payload != "select an entry"
            groups = screen.query_one("#q-groups", RowsTable)
            assert groups.row_count > 1
            await press(pilot, app, "down")  # another group: its entries are read now, one connection
            assert len(opened) == 3, opened  # its entries, then the payload of its first entry
            assert entries.row_count > 0

    run(go())
