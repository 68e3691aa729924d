"""Sync screen actions (push, diff, pull) run in workers against the local BigQuery emulator, through
the sync module's own functions; the screen shows the outcome and the ledger changes."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import duckdb

from cbi_local import pipeline, warehouse
from tui.app import CbiApp
from tui.widgets.rows_table import RowsTable


async def _until(pilot, cond, timeout: float = 180) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond() and loop.time() < end:
        await pilot.pause(0.1)
    assert cond(), "timed out"


def test_push_diff_pull_from_the_sync_screen(tmp_path: Path, sample_data: Path, bq_emulator, monkeypatch):
    home = tmp_path / "home"
    warehouse.init(home / "warehouse.duckdb")
    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        assert pipeline.ingest_paths(con, [sample_data / "registry"])["ok"]
    monkeypatch.setenv("CBI_BQ_ENDPOINT", bq_emulator.endpoint)
    monkeypatch.setenv("CBI_BQ_PROJECT", "tui" + uuid.uuid4().hex[:10])

    async def go():
        app = CbiApp(home, refresh_every=0)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("5")
            await _until(pilot, lambda: app.screen.reads >= 1)
            screen = app.screen
            assert "1 pending" in app.export_text()
            await pilot.press("p")
            await pilot.pause(0.05)
            assert screen.busy == "push"
            await pilot.press("d")  # a second action while one runs is refused, not queued
            await _until(pilot, lambda: screen.busy is None)
            r = app.last_action
            assert r.action == "push" and r.ok, r.text
            assert r.text.startswith("pushed 1 batches")
            await _until(pilot, lambda: "0 pending, 1 pushed" in app.export_text())
            con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
            try:
                assert con.execute("SELECT status FROM ops.batches").fetchall() == [("pushed",)]
            finally:
                con.close()
            await pilot.press("d")
            await _until(pilot, lambda: screen.busy is None and app.last_action.action == "diff")
            r = app.last_action
            assert r.ok, r.text
            parity = screen.query_one("#parity", RowsTable)
            assert parity.row_count == len(r.result) > 0
            by = {d["table"]: d for d in r.result}
            assert by["regimes.regime_calendar"]["local_rows"] == by["regimes.regime_calendar"]["bigquery_rows"] == 10613
            await pilot.press("l")
            await _until(pilot, lambda: screen.busy is None and app.last_action.action == "pull")
            assert app.last_action.ok, app.last_action.text

    asyncio.run(go())
