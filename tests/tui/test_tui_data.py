"""The TUI's read layer on the real sample warehouse: cheap counts, latest checks, and what a
writer's lock does to a reader (measured here, it is the reason for the design in tui/data.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import data_contracts as dc
from data_contracts.to_duckdb import table_ref
from cbi_local import health, quarantine, warehouse
from tui import data
from tui.widgets.checks_table import check_key
from tui.widgets.summary import batches_line


def test_overview_counts_and_checks_match_the_warehouse(home: Path):
    path = home / "warehouse.duckdb"
    ov = data.overview(path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        for s in ov.tables:
            assert s.exists
            assert s.rows == con.execute(f"SELECT COUNT(*) FROM {table_ref(dc.get(s.fqn))}").fetchall()[0][0], s.fqn
        latest = con.execute(
            f"SELECT status, severity FROM monitoring.health_checks WHERE {health.LIVE_CHECKS_SQL} QUALIFY row_number() OVER ("
            "PARTITION BY table_name, rule, coalesce(rule_columns, ''), coalesce(threshold, ''), coalesce(engine, '') ORDER BY checked_at DESC, measured_value DESC NULLS LAST, message) = 1"
        ).fetchall()
        defects = con.execute(
            "SELECT count(*) FROM monitoring.health_checks WHERE starts_with(message, ?)", [health.MIGRATION_PREFIX]
        ).fetchall()[0][0]
        held = con.execute("SELECT count(*) FROM monitoring.quarantine WHERE status = 'held'").fetchall()[0][0]
        batches = dict(con.execute("SELECT status, count(*) FROM ops.batches GROUP BY 1").fetchall())
    finally:
        con.close()
    assert ov.checks_total == len(latest)
    assert ov.checks_failing == sum(1 for st, sev in latest if st == "fail" and sev != "warning")
    assert ov.recorded_defects == defects > 0  # one migration: every defect it recorded, apart from the live checks
    assert ov.quarantine_held == held > 0
    assert ov.batches == batches and ov.pending_batches == batches.get("validated", 0)
    assert ov.daemon is None and ov.last_push is None  # nothing synced: shown as "no daemon" / "never"
    by = {s.fqn: s for s in ov.tables}
    assert by["market_data.yahoo_historical"].status == "warn"  # its legacy defects' rows are held, not failing
    assert by["training.model_runs"].status == "empty"
    assert by["regimes.regime_calendar"].rows == 10613


def test_overview_tells_the_same_truth_as_cbi_health(home: Path, sample_today):
    """The issue's case: the Overview said "checks 4 failing" where `cbi health` said 0 failed, because
    it counted a migration's recorded defects (rows already quarantined) as live blocking checks."""
    path = home / "warehouse.duckdb"
    with warehouse.open_warehouse(path) as con:
        report = health.health_report(con, today=sample_today)
    ov = data.overview(path)
    assert (ov.checks_failing, ov.checks_warning, ov.checks_total) == (report["failed"], report["warnings"], report["checks"])
    assert ov.recorded_defects == len(report["recorded"]["defects"]) > 0
    checks = data.health(path)["checks"]
    recorded = [c for c in checks if c["status"] == data.RECORDED]
    assert len(recorded) == len(report["recorded"]["defects"])
    assert {c["engine"] for c in recorded} == {"migration"}
    assert len({check_key(c) for c in checks}) == len(checks)  # every row of the Checks list has its own key
    # Dropping a defect's held rows leaves its record (history) but nothing failing.
    with warehouse.open_warehouse(path) as con:
        quarantine.drop(con, rule="plausible_unit")
    assert data.overview(path).checks_failing == report["failed"]


def test_the_batches_line_names_every_status_and_adds_up():
    line = batches_line({"pushed": 5, "empty": 1, "validated": 2, "rolled_back": 1}).plain
    assert line == "9: 2 pending, 1 empty, 5 pushed, 1 rolled back"  # the contract's order
    assert batches_line({}).plain == "0"


def test_preview_is_limited_and_missing_tables_are_reported(home: Path):
    cols, rows = data.preview(home / "warehouse.duckdb", "raw_intelligence.fred_economic", 7)
    assert len(rows) == 7 and cols == dc.get("raw_intelligence.fred_economic").column_names
    with pytest.raises(data.WarehouseMissing):
        data.overview(home / "nowhere.duckdb")


def test_struct_columns_are_listed_with_their_fields():
    lines = [(d, c.name) for top in dc.get("training.model_runs").columns for d, c in data.column_lines(top)]
    assert (0, "metrics") in lines and (1, "mae") in lines and (1, "baseline_mae") in lines


_HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("held", flush=True)
time.sleep(float(sys.argv[3]))
con.close()
"""


def _hold(path: Path, mode: str, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", _HOLD, str(path), mode, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_writer_process_blocks_readers_so_reads_give_up_fast_and_name_the_writer(home: Path):
    path = home / "warehouse.duckdb"
    writer = _hold(path, "rw", 3)
    try:
        t0 = time.perf_counter()
        with pytest.raises(data.WarehouseBusy) as exc:
            data.overview(path)
        waited = time.perf_counter() - t0
        assert exc.value.pid == writer.pid
        assert waited < 1.0  # the UI never waits long; the next refresh tries again
    finally:
        writer.wait()
    assert data.overview(path).tables  # once the writer closes, reads work again


def test_a_reader_process_blocks_writers_so_the_tui_never_keeps_a_connection(home: Path):
    path = home / "warehouse.duckdb"
    reader = _hold(path, "ro", 0.5)
    try:
        with pytest.raises(duckdb.IOException, match="lock"):
            duckdb.connect(str(path))  # DuckDB: a read-only connection elsewhere excludes a writer
        # cbi's writers retry on the lock, so a short read only delays them:
        from cbi_local import warehouse

        t0 = time.perf_counter()
        con = warehouse.connect(path)
        con.close()
        assert time.perf_counter() - t0 < 5
    finally:
        reader.wait()
