"""Pilot tests: every screen and action driven through App.run_test on the real sample warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from cbi_local import health
from tui import data
from tui.app import CbiApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.health import HealthScreen
from tui.screens.help import HelpScreen
from tui.widgets.checks_table import ChecksTable
from tui.widgets.rows_table import RowsTable

from .tui_pilot import q, run, settle



def test_overview_paints_real_counts_and_states(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(100, 50)) as pilot:
            await settle(pilot, app)
            ov = app.last_overview
            assert ov is not None
            text = app.export_text()
            failing = ov.checks_failing
            assert f"{failing} failing" in text
            assert f"{ov.quarantine_held:,} rows held" in text
            assert "no daemon" in text and "last push  never" in text
            assert "regime_calendar  10,613" in text
            assert "read in" in text
            # Enter on a table opens it in the Tables screen
            await pilot.press("down", "down", "enter")
            await settle(pilot, app)
            assert app.current_mode == "tables"
            assert app.screen.selected == "raw_intelligence.fred_economic"

    run(go())


def test_tables_screen_shows_struct_schema_and_a_preview(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("2")
            await settle(pilot, app)
            screen = app.screen
            screen.query_one("#tables-tree").select_fqn("training.model_runs")
            await settle(pilot, app)
            assert screen.selected == "training.model_runs"
            text = app.export_text()
            assert "created_at (MONTH)" in text and "symbol, horizon" in text
            assert "└ mae" in text and "└ baseline_mae" in text  # STRUCT fields
            screen.query_one("#tables-tree").select_fqn("regimes.regime_weights")
            await settle(pilot, app)
            preview = screen.query_one("#preview", RowsTable)
            assert preview.row_count == q(home, "SELECT count(*) FROM regimes.regime_weights")[0][0] == 16
            assert "regime" in [str(c.label) for c in preview.columns.values()][0:3] or preview.columns

    run(go())


def test_health_lists_latest_problems_history_samples_and_toggles(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("3")
            await settle(pilot, app)
            table = app.screen.query_one(ChecksTable)
            live = q(home, f"""SELECT count(*) FROM (SELECT status FROM monitoring.health_checks WHERE {health.LIVE_CHECKS_SQL}
                QUALIFY row_number() OVER (PARTITION BY table_name, rule, coalesce(rule_columns, ''), coalesce(threshold, ''),
                coalesce(engine, '') ORDER BY checked_at DESC, measured_value DESC NULLS LAST, message) = 1)
                WHERE status <> 'pass'""")[0][0]
            recorded = q(home, "SELECT count(*) FROM monitoring.health_checks WHERE starts_with(message, ?)",
                         [health.MIGRATION_PREFIX])[0][0]
            problems = live + recorded  # the live problems, then the migration's recorded defects
            assert table.row_count == problems and live > 0 and recorded > 0
            assert [c["status"] == "recorded" for c in table.checks] == [False] * live + [True] * recorded
            first = table.checks[0]
            assert first["status"] in ("fail", "warn")
            text = app.export_text()
            assert "sample of offending rows/keys" in text
            detail = app.screen.detail_plain
            assert first["message"] in detail
            n = q(home, "SELECT count(*) FROM monitoring.health_checks WHERE table_name = ? AND rule = ?", [first["table_name"], first["rule"]])[0][0]
            assert f"history (latest {min(n, 50)})" in detail
            await pilot.press("a")
            await settle(pilot, app)
            assert table.row_count == app.screen.loaded["checks"].__len__() > problems

    run(go())


async def quarantine_groups(pilot, app) -> RowsTable:
    """Health screen (key 3), Quarantine tab, the held groups' table focused."""
    await pilot.press("3")
    await settle(pilot, app)
    app.screen.query_one("#health-tabs").active = "quarantine-tab"
    await settle(pilot, app)
    groups = app.screen.query_one("#q-groups", RowsTable)
    groups.focus()
    await settle(pilot, app)
    return groups


def _group(app) -> dict:
    return app.screen.selected_group()


@pytest.mark.parametrize("answer", ["n", "y"])
def test_quarantine_drop_needs_confirmation(home: Path, answer: str):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(120, 40)) as pilot:
            await quarantine_groups(pilot, app)
            g = _group(app)
            entries = app.screen.query_one("#q-entries", RowsTable)
            assert entries.row_count == min(200, g["rows"])
            before = q(home, "SELECT count(*) FROM monitoring.quarantine WHERE status = 'held' AND table_name = ? AND rule = ?", [g["table"], g["rule"]])[0][0]
            assert before == g["rows"]
            await pilot.press("D")
            await settle(pilot, app)
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press(answer)
            await settle(pilot, app)
            assert isinstance(app.screen, HealthScreen)
            after = q(home, "SELECT count(*) FROM monitoring.quarantine WHERE status = 'held' AND table_name = ? AND rule = ?", [g["table"], g["rule"]])[0][0]
            if answer == "n":
                assert after == before and app.last_action is None
            else:
                assert app.last_action is not None, "no action"
                assert app.last_action.ok, app.last_action.text
                assert after == 0 and app.last_action.ok and app.last_action.result == {"dropped": before}
                dropped = q(home, "SELECT count(*) FROM monitoring.quarantine WHERE status = 'dropped' AND table_name = ? AND rule = ?", [g["table"], g["rule"]])[0][0]
                assert dropped == before  # kept for the record, never deleted
                assert all(x["rule"] != g["rule"] or x["table"] != g["table"] for x in app.screen.loaded["quarantine"])

    run(go())


def test_quarantine_release_reloads_through_the_rules(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(120, 40)) as pilot:
            groups = await quarantine_groups(pilot, app)
            # the smallest held group (the release re-runs the rules over its rows)
            idx = min(range(len(app.screen.groups)), key=lambda i: app.screen.groups[i]["rows"])
            groups.move_cursor(row=idx)
            await settle(pilot, app)
            g = _group(app)
            entries = app.screen.query_one("#q-entries", RowsTable)
            entries.focus()
            entries.move_cursor(row=0)
            await settle(pilot, app)
            payload = str(app.screen.query_one("#q-payload").render())
            assert g["rule"] in payload
            groups.focus()  # R acts on the focused groups table only (tests/tui/test_tui_safety.py)
            await settle(pilot, app)
            await pilot.press("R", "y")
            await settle(pilot, app)
            r = app.last_action
            assert r.ok and r.action == "release" and r.result["released"] == g["rows"]
            assert r.result["loaded"] + r.result["duplicates"] + r.result["requarantined"] == g["rows"]
            held_old = q(home, "SELECT count(*) FROM monitoring.quarantine WHERE status = 'released' AND table_name = ? AND rule = ?", [g["table"], g["rule"]])[0][0]
            assert held_old == g["rows"]

    run(go())


def test_coverage_screen_uses_cbi_local_coverage(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("4")
            await settle(pilot, app)
            if data.coverage_module() is None:
                assert "not available yet" in app.export_text()
                return
            from cbi_local import coverage

            con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
            try:
                expected = coverage.coverage(con)
            finally:
                con.close()
            series = app.screen.query_one("#series", RowsTable)
            assert series.row_count == len(expected) > 0
            text = app.export_text()
            first = expected[0]
            assert f"{first.present:,} of {first.expected:,} {first.unit} present" in app.screen.detail_plain
            assert f"gaps ({len(first.gaps)})" in app.screen.detail_plain
            assert "legend:" in text
            series.focus()
            series.move_cursor(row=len(expected) - 1)
            await settle(pilot, app)
            last = expected[-1]
            assert f"{last.present:,} of {last.expected:,} {last.unit} present" in app.screen.detail_plain

    run(go())


def test_sync_screen_ledger_and_state(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("5")
            await settle(pilot, app)
            ledger = app.screen.query_one("#ledger", RowsTable)
            assert ledger.row_count == q(home, "SELECT count(*) FROM ops.batches")[0][0] == 2
            text = app.export_text()
            if data.sync_module_available():
                assert "2 pending" in text and "no daemon" in text
            else:
                assert "not available yet" in text

    run(go())


def test_training_screen_says_no_runs_yet(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("6")
            await settle(pilot, app)
            assert q(home, "SELECT count(*) FROM training.model_runs")[0][0] == 0
            text = app.export_text()
            assert "no runs yet" in text and "no forecasts yet" in text

    run(go())


def test_training_screen_shows_a_real_research_run_and_its_fan(home: Path):
    from cbi_local import warehouse
    from cbi_local.features.build import build_features
    from cbi_local.training.runs import TrainOptions, train

    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        build_features(con, ["ZL"], source="yahoo_historical")
        report = train(con, home, TrainOptions(symbol="ZL", matrix_source="yahoo_historical", horizons=["1w", "1m"], folds=3))

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(100, 32)) as pilot:
            await pilot.press("6")
            await settle(pilot, app)
            text = app.export_text()
            assert report["run_id"] in text and "baseline_mae" in text
            mae = report["horizons"]["1w"]["metrics"]["mae"]
            assert f"{mae:.4f}"[:5] in text  # the recorded metric, beside its baseline
            as_of = report["as_of"]["date"]  # the last row with a real volume (publish.as_of), named by the run
            assert as_of <= report["window"][1] and report["as_of"]["last_row"] == report["window"][1]
            assert f"forecast fan, as of {as_of}" in text and "P10" in text and "P90" in text

    run(go())


def test_help_refresh_and_80x24(home: Path):
    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            reads = app.screen.reads
            await pilot.press("r")
            await settle(pilot, app)
            assert app.screen.reads == reads + 1
            await pilot.press("question_mark")
            await settle(pilot, app)
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            for key in "123456":
                await pilot.press(key)
                await settle(pilot, app)
                lines = app.export_text().splitlines()
                assert len(lines) == 24 and all(len(line) <= 80 for line in lines)
                footer = lines[-1]
                assert "? Help" in footer and "q Quit" in footer, footer  # on every screen, at 80x24
                assert "1 Overview" in footer or len(footer) >= 79, footer  # the screens' keys fill the rest

    run(go())
