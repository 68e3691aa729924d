"""TUI fixtures: one warehouse built from the real sample data per session, copied per test."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from cbi_local import health, pipeline, warehouse


# "Today" for the health run the screens show: freshness ages (days since the sample's last bar) are
# measured against it, so snapshots and assertions do not move with the calendar.
SAMPLE_TODAY = date(2026, 12, 2)


@pytest.fixture(scope="session")
def sample_today() -> date:
    return SAMPLE_TODAY


@pytest.fixture(scope="session")
def tui_template(tmp_path_factory, sample_data) -> Path:
    """Databento GLBX.MDP3, FRED and the registry ingested, the legacy exports migrated, health run
    (as of SAMPLE_TODAY)."""
    home = tmp_path_factory.mktemp("tui-sample") / "home"
    home.mkdir()
    path = home / "warehouse.duckdb"
    warehouse.init(path)
    with warehouse.open_warehouse(path) as con:
        ingested = pipeline.ingest_paths(con, [sample_data / "databento" / "GLBX.MDP3", sample_data / "fred", sample_data / "registry"])
        migrated = pipeline.migrate_legacy_dir(con, sample_data / "legacy_bq")
        health.run_health(con, today=SAMPLE_TODAY)
    assert ingested["ok"] and migrated["ok"]
    return path


@pytest.fixture
def home(tui_template: Path, tmp_path: Path) -> Path:
    """A private copy of the sample warehouse (tests may release/drop quarantine rows)."""
    dest = tmp_path / "home"
    dest.mkdir()
    shutil.copy(tui_template, dest / "warehouse.duckdb")
    return dest
