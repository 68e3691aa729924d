"""SVG snapshots of the main screens on the real sample warehouse (values that change between runs
-- paths, timestamps, ages, sizes, ids -- are masked by CbiApp(stable=True)).
Update after an intended UI change: pytest tests/tui/test_tui_snapshots.py --snapshot-update"""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.app import CbiApp

from .tui_pilot import settle

SIZE = (100, 32)


async def _settle(pilot) -> None:
    await settle(pilot, pilot.app)
    await pilot.pause(0.1)


def _before(*keys: str):
    async def run_before(pilot) -> None:
        await _settle(pilot)
        for k in keys:
            await pilot.press(k)
            await _settle(pilot)

    return run_before


@pytest.mark.parametrize(
    "name, keys",
    [
        ("overview", ()),
        ("tables", ("2",)),
        # The cursor on the last problem (a migration's recorded defect): the first, a freshness warning,
        # lists its history, whose ingest-gate entry is an age measured against the real today.
        ("health", ("3", "ctrl+end")),
        ("coverage", ("4",)),
        ("sync", ("5",)),
        ("training", ("6",)),
    ],
)
def test_screen_snapshot(snap_compare, home: Path, name: str, keys: tuple[str, ...]):
    app = CbiApp(home, stable=True, refresh_every=0)
    assert snap_compare(app, terminal_size=SIZE, run_before=_before(*keys))


def test_snapshot_inputs_do_not_move_with_the_calendar(home: Path, sample_today):
    """The freshness ages the Health snapshot shows are measured against the fixtures' SAMPLE_TODAY."""
    import duckdb

    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        last = con.execute("SELECT max(date) FROM market_data.futures_continuous_1d").fetchall()[0][0]
        measured = con.execute(
            "SELECT measured_value FROM monitoring.health_checks WHERE table_name = 'market_data.futures_continuous_1d' "
            "AND rule = 'freshness' ORDER BY checked_at DESC LIMIT 1").fetchall()[0][0]
    finally:
        con.close()
    assert measured == (sample_today - last).days
