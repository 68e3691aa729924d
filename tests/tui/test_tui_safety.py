"""tui_safety: actions act only on what is visible, focused and selected; confirm dialogs start on No
and name the table, rule and rows; cursors survive refreshes; a drop is undone with `u`.
Every test drives the real app (App.run_test) on the warehouse built from the real sample data and
checks the warehouse itself (monitoring.quarantine), not only the screen."""

from __future__ import annotations

from pathlib import Path

import duckdb

from cbi_local import quarantine as qmod
from cbi_local import warehouse
from tui.app import CbiApp
from .tui_pilot import press, run, settle
from tui.screens.confirm import ConfirmScreen
from tui.screens.health import HealthScreen, group_key
from tui.widgets.checks_table import ChecksTable, check_key
from tui.widgets.rows_table import RowsTable

SIZE = (120, 40)


def held(home: Path) -> dict[tuple[str, str], int]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT table_name, rule, count(*) FROM monitoring.quarantine WHERE status = 'held' GROUP BY ALL").fetchall()
    finally:
        con.close()
    return {(t, r): n for t, r, n in rows}


def statuses(home: Path) -> dict[str, int]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return dict(con.execute("SELECT status, count(*) FROM monitoring.quarantine GROUP BY ALL").fetchall())
    finally:
        con.close()


def test_tui_safety_three_keys_from_the_checks_tab_drop_nothing(home: Path):
    """The issue's `3`, `D`, `Enter` (and `D`, `y`): on the Checks tab D has nothing to act on."""
    before, states = held(home), statuses(home)
    assert sum(before.values()) > 0

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3")
            assert isinstance(app.screen, HealthScreen)
            assert app.screen.query_one("#health-tabs").active == "checks-tab"
            assert isinstance(app.focused, ChecksTable)  # focus on the table, not the tab strip
            # The cursor on a check whose rows are held (a recorded migration defect), as a user would pick.
            checks = app.focused
            at = next(i for i, c in enumerate(checks.checks) if (c["table_name"], c["rule"]) in before)
            checks.move_cursor(row=at)
            await settle(pilot, app)
            for keys in (("D", "y"), ("R", "y"), ("D", "enter")):
                await press(pilot, app, *keys)
                assert isinstance(app.screen, HealthScreen), "no dialog may open from the Checks tab"
            assert app.last_action is None
            # Enter on a check opened its held rows (visible now, on the Quarantine tab); still nothing changed
            assert app.screen.query_one("#health-tabs").active == "quarantine-tab"

    run(go())
    assert held(home) == before and statuses(home) == states


def test_tui_safety_hidden_tab_cursor_is_never_acted_on(home: Path):
    """Move the quarantine cursor, leave the tab: D/R on the Checks tab ignore the hidden cursor.
    Focus in the entries table (not the groups table) does not act either."""
    before = held(home)

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3", "t")
            groups = app.screen.query_one("#q-groups", RowsTable)
            assert app.focused is groups
            await press(pilot, app, "down")
            assert groups.cursor_row == 1
            await press(pilot, app, "t")
            assert app.screen.query_one("#health-tabs").active == "checks-tab"
            assert isinstance(app.focused, ChecksTable)
            await press(pilot, app, "D", "y", "R", "y")
            assert isinstance(app.screen, HealthScreen) and app.last_action is None
            await press(pilot, app, "t")
            entries = app.screen.query_one("#q-entries", RowsTable)
            entries.focus()
            await settle(pilot, app)
            await press(pilot, app, "D", "y")
            assert isinstance(app.screen, HealthScreen) and app.last_action is None

    run(go())
    assert held(home) == before


def test_tui_safety_dialog_defaults_to_no_and_names_table_rule_rows(home: Path):
    before = held(home)

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3", "t", "down")
            g = app.screen.selected_group()
            assert g is not None and g["rows"] == before[(g["table"], g["rule"])]
            await press(pilot, app, "D")
            dialog = app.screen
            assert isinstance(dialog, ConfirmScreen)
            assert app.focused.id == "no"
            text = dialog.plain
            assert g["table"] in text and g["rule"] in text and f"{g['rows']:,}" in text
            assert "u on Health" in text  # what undoes it
            await press(pilot, app, "enter")  # Enter answers the focused button: No
            assert isinstance(app.screen, HealthScreen) and app.last_action is None
            await press(pilot, app, "D", "escape")
            assert isinstance(app.screen, HealthScreen) and app.last_action is None

    run(go())
    assert held(home) == before


def test_tui_safety_quarantine_cursor_kept_across_refresh(home: Path):
    """The highlighted group stays highlighted (by table and rule) when a refresh reorders the list
    under it -- here another writer drops the largest group, so every row below moves up one."""

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3", "t", "down", "down")
            groups = app.screen.query_one("#q-groups", RowsTable)
            chosen = app.screen.selected_group()
            assert groups.cursor_row == 2 and chosen is not None
            await press(pilot, app, "r")
            assert groups.selected_key == group_key(chosen) and groups.cursor_row == 2
            largest = app.screen.groups[0]
            with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
                qmod.drop(con, rule=largest["rule"], table=largest["table"])
            await press(pilot, app, "r")
            assert all(group_key(g) != group_key(largest) for g in app.screen.groups)
            assert groups.selected_key == group_key(chosen) and groups.cursor_row == 1
            await press(pilot, app, "D")
            assert isinstance(app.screen, ConfirmScreen)
            assert chosen["rule"] in app.screen.plain and chosen["table"] in app.screen.plain
            await press(pilot, app, "n")

    run(go())


def test_tui_safety_checks_cursor_kept_across_refresh_and_toggle(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3", "down", "down", "down")
            table = app.screen.query_one(ChecksTable)
            key = check_key(table.checks[3])
            await press(pilot, app, "r")
            assert check_key(table.checks[table.cursor_row]) == key
            await press(pilot, app, "a")  # all checks: the same check stays highlighted
            assert len(table.checks) > 4 and check_key(table.checks[table.cursor_row]) == key
            assert table.checks[3]["rule"] in app.screen.detail_plain

    run(go())


def test_tui_safety_drop_runs_only_on_the_confirmed_count(home: Path):
    """Rows quarantined or resolved between the dialog and `y`: the drop refuses, nothing changes."""

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3", "t")
            g = app.screen.selected_group()
            await press(pilot, app, "D")
            assert isinstance(app.screen, ConfirmScreen)
            with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
                one = con.execute("SELECT min(quarantine_id) FROM monitoring.quarantine WHERE status = 'held' AND table_name = ? "
                                  "AND rule = ?", [g["table"], g["rule"]]).fetchall()[0][0]
                assert qmod.drop(con, ids=[one]) == 1
            after_one = held(home)
            await press(pilot, app, "y")
            assert app.last_action is not None and not app.last_action.ok
            assert "nothing dropped" in app.last_action.text
            return g, after_one

    g, after_one = run(go())
    assert held(home) == after_one and after_one[(g["table"], g["rule"])] == g["rows"] - 1


def test_tui_safety_drop_is_undone_with_u_and_can_then_be_released(home: Path):
    before = held(home)

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=SIZE) as pilot:
            await press(pilot, app, "3", "t")
            # the smallest group (the release afterwards re-runs its rows through the rules)
            groups = app.screen.query_one("#q-groups", RowsTable)
            idx = min(range(len(app.screen.groups)), key=lambda i: app.screen.groups[i]["rows"])
            groups.move_cursor(row=idx)
            await settle(pilot, app)
            g = app.screen.selected_group()
            await press(pilot, app, "D", "y")
            assert app.last_action.ok and app.last_action.result == {"dropped": g["rows"]}
            assert (g["table"], g["rule"]) not in held(home)
            await press(pilot, app, "u")
            assert isinstance(app.screen, ConfirmScreen) and app.focused.id == "no"
            assert g["table"] in app.screen.plain and g["rule"] in app.screen.plain and f"{g['rows']:,} dropped" in app.screen.plain
            await press(pilot, app, "enter")  # No: still dropped
            assert (g["table"], g["rule"]) not in held(home)
            await press(pilot, app, "u", "y")
            assert app.last_action.ok and app.last_action.result == {"held": g["rows"]}
            assert held(home) == before
            # held again: the group is back under the cursor's key and can be released
            groups.move_cursor(row=groups.get_row_index(group_key(g)))
            groups.focus()
            await settle(pilot, app)
            await press(pilot, app, "R", "y")
            r = app.last_action
            assert r.ok and r.action == "release" and r.result["released"] == g["rows"]

    run(go())
