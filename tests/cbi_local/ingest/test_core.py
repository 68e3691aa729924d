"""The ingest core on real data: accounting, idempotency, replacement, rules as SQL, quarantine."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

import data_contracts as dc
from cbi_local.ingest.core import IngestRun, identify

FRED = dc.get("raw_intelligence.fred_economic")
CONTINUOUS = dc.get("market_data.futures_continuous_1d")



def _fred_rel(con: duckdb.DuckDBPyConnection, files):
    # Line numbers: the header is line 1, so the first observation is line 2.
    paths = [str(f.path) for f in files]
    return con.sql(
        f"""
        SELECT regexp_extract(filename, '([A-Z0-9]+)\\.csv$', 1) AS series_id, date, value,
               filename AS source_file, row_number() OVER (PARTITION BY filename ORDER BY line) + 1 AS record_number
        FROM (SELECT *, row_number() OVER () AS line
              FROM read_csv({paths!r}, header = true, columns = {{'date': 'VARCHAR', 'value': 'VARCHAR'}}, filename = true))
        """
    )


def _ingest_fred(con, folder: Path):
    run = IngestRun(con)
    todo, _ = run.plan([identify(p, "fred_csv", "csv") for p in sorted(folder.glob("*.csv"))])
    if todo:
        run.stage(FRED, _fred_rel(con, todo), todo)
    return run.finish()


@pytest.fixture
def fred_copy(tmp_path: Path, sample_data: Path) -> Path:
    folder = tmp_path / "fred"
    folder.mkdir()
    for name in ("DGS10.csv", "VIXCLS.csv"):
        shutil.copy(sample_data / "fred" / name, folder / name)
    return folder


def _csv_rows(path: Path) -> int:
    return len(path.read_text().strip().splitlines()) - 1


def test_every_row_is_accounted_and_a_rerun_adds_nothing(con, fred_copy: Path):
    first = _ingest_fred(con, fred_copy).as_dict()
    expected = sum(_csv_rows(p) for p in fred_copy.glob("*.csv"))
    assert first["totals"] == {"rows_read": expected, "rows_loaded": expected, "rows_quarantined": 0, "rows_duplicate": 0}
    assert first["balanced"] and first["status"] == "validated"
    # FRED's blank observations stay as NULL values, not dropped and not invented.
    blanks = sum(1 for line in (fred_copy / "DGS10.csv").read_text().splitlines() if line.endswith(","))
    assert con.execute("SELECT COUNT(*) FROM raw_intelligence.fred_economic WHERE series_id = 'DGS10' AND value IS NULL").fetchone()[0] == blanks
    lineage = con.execute("SELECT DISTINCT source, batch_id, length(file_sha256) FROM raw_intelligence.fred_economic").fetchall()
    assert {(s, l) for s, _, l in lineage} == {("fred", 64)} and {b for _, b, _ in lineage} == {first["batch_id"]}

    second = _ingest_fred(con, fred_copy).as_dict()
    assert second["status"] == "empty" and len(second["unchanged_files"]) == 2
    assert con.execute("SELECT COUNT(*) FROM raw_intelligence.fred_economic").fetchone()[0] == expected
    manifest = con.execute("SELECT rows_read, rows_loaded, rows_quarantined, rows_duplicate FROM ops.file_manifest").fetchall()
    assert all(r == l + q + d for r, l, q, d in manifest)


def test_a_changed_file_replaces_exactly_its_own_rows(con, fred_copy: Path):
    _ingest_fred(con, fred_copy)
    dgs10_before = con.execute("SELECT SUM(value) FROM raw_intelligence.fred_economic WHERE series_id = 'DGS10'").fetchone()[0]
    vix = fred_copy / "VIXCLS.csv"
    lines = vix.read_text().splitlines()
    dropped = lines.pop()  # the newest observation disappears from the new version
    vix.write_text("\n".join(lines) + "\n")
    summary = _ingest_fred(con, fred_copy).as_dict()
    assert list(summary["files"]) == [str(vix.resolve())]
    assert summary["files"][str(vix.resolve())]["status"] == "replaced"
    assert con.execute("SELECT COUNT(*) FROM raw_intelligence.fred_economic WHERE series_id = 'VIXCLS'").fetchone()[0] == _csv_rows(vix)
    gone = con.execute("SELECT COUNT(*) FROM raw_intelligence.fred_economic WHERE series_id = 'VIXCLS' AND date = ?", [dropped.split(",")[0]]).fetchone()[0]
    assert gone == 0
    assert con.execute("SELECT SUM(value) FROM raw_intelligence.fred_economic WHERE series_id = 'DGS10'").fetchone()[0] == dgs10_before


def test_bad_values_are_quarantined_with_file_line_and_rule(con, tmp_path: Path, sample_data: Path):
    folder = tmp_path / "bad"
    folder.mkdir()
    real = (sample_data / "fred" / "T10Y2Y.csv").read_text().splitlines()
    # Crafted rejects appended to a real file: an unreadable value and a duplicate date with another value.
    bad = real + ["2026-01-05,abc", real[-1].split(",")[0] + ",12345"]
    (folder / "T10Y2Y.csv").write_text("\n".join(bad) + "\n")
    summary = _ingest_fred(con, folder).as_dict()
    t = summary["totals"]
    assert t["rows_read"] == len(bad) - 1 and t["rows_quarantined"] == 2 and summary["balanced"]
    q = con.execute("SELECT record_number, rule, reason, payload FROM monitoring.quarantine ORDER BY record_number").fetchall()
    assert [(n, r) for n, r, _, _ in q] == [(len(bad) - 1, "bad_type"), (len(bad), "unique_key")]
    assert "T10Y2Y.csv:%d bad_type: value=abc is not a valid FLOAT64" % (len(bad) - 1) in q[0][2]
    assert "12345" in q[1][3]  # the payload keeps the rejected row: nothing is lost


def test_source_hierarchy_keeps_yahoo_out_of_canonical_rows_after_the_zl_stitch(con, tmp_path: Path, sample_data: Path):
    legacy = sample_data / "legacy_bq" / "forecasting_data_warehouse.soybean_oil_prices.parquet"
    fid = identify(legacy, "legacy_parquet", "parquet")
    run = IngestRun(con)
    run.plan([fid])
    # Real Yahoo ZL closes: the declared bridge admits them before 2010-06-06 only.
    rel = con.sql(
        f"""
        SELECT CAST("time" AS DATE) AS date, 'ZL' AS root, 'ZL' AS symbol, open, high, low, close, volume,
               'yahoo' AS source, '{fid.path}' AS source_file, row_number() OVER (ORDER BY "time") AS record_number
        FROM read_parquet('{legacy}')
        WHERE CAST("time" AS DATE) BETWEEN DATE '2010-06-01' AND DATE '2010-06-10'
        QUALIFY row_number() OVER (PARTITION BY CAST("time" AS DATE) ORDER BY "time") = 1
        """
    )
    counts = run.stage(CONTINUOUS, rel, [fid])[str(fid.path)]
    run.finish()
    loaded = con.execute("SELECT max(date) FROM market_data.futures_continuous_1d").fetchone()[0]
    assert str(loaded) < "2010-06-06"
    rules = {r for (r,) in con.execute("SELECT DISTINCT rule FROM monitoring.quarantine").fetchall()}
    assert rules == {"source_hierarchy"}
    assert counts.rows_loaded > 0 and counts.rows_quarantined > 0 and counts.balanced


def test_ohlc_rules_reject_crafted_impossible_bars(con, tmp_path: Path):
    # Crafted rejects only: each row breaks one price rule and none may load.
    f = tmp_path / "crafted.csv"
    f.write_text("x\n")
    fid = identify(f, "crafted", "csv")
    run = IngestRun(con)
    run.plan([fid])
    rel = con.sql(
        """
        SELECT * FROM (VALUES
            (TIMESTAMPTZ '2020-12-28 00:00:00+00', 'ESH1', 'ES', 3702.75, 3697.25, 3707.0, 3705.75, 10, 1),
            (TIMESTAMPTZ '2020-12-28 01:00:00+00', 'ESH1', 'ES', 0.0, 3707.0, 3697.25, 3705.75, 10, 2),
            (TIMESTAMPTZ '2020-12-28 02:00:00+00', 'ESH1', 'ES', 'NaN'::DOUBLE, 3707.0, 3697.25, 3705.75, 10, 3),
            (TIMESTAMPTZ '2020-12-28 03:00:00+00', 'ESH1', 'ES', 3702.75, 3707.0, 3697.25, 3705.75, -5, 4),
            (TIMESTAMPTZ '2020-12-28 04:00:00+00', 'ZLF6-ZLH6', 'ZL', 1.0, 2.0, 0.5, 1.5, 3, 5)
        ) t(ts_event, symbol, root, open, high, low, close, volume, record_number)
        """
    ).select(f"*, '{fid.path}' AS source_file")
    counts = run.stage(dc.get("market_data.databento_futures_ohlcv_1h"), rel, [fid])[str(fid.path)]
    assert (counts.rows_read, counts.rows_loaded, counts.rows_quarantined) == (5, 0, 5)
    rules = dict(con.execute("SELECT record_number, rule FROM monitoring.quarantine").fetchall())
    assert rules == {1: "ohlc_sane", 2: "ohlc_sane", 3: "ohlc_sane", 4: "non_negative", 5: "no_spreads"}


def test_a_file_that_cannot_be_read_is_recorded_not_lost(con, tmp_path: Path):
    f = tmp_path / "broken.csv"
    f.write_bytes(b"\xff\xfe not a csv")
    fid = identify(f, "fred_csv", "csv")
    run = IngestRun(con)
    run.plan([fid])
    run.file_error(fid, "encoding", "not UTF-8 at byte 0")
    summary = run.finish().as_dict()
    assert summary["files"][str(fid.path)]["status"] == "error"
    row = con.execute("SELECT status, error FROM ops.file_manifest").fetchone()
    assert row == ("error", "encoding: not UTF-8 at byte 0")
    assert con.execute("SELECT rule FROM monitoring.quarantine").fetchone() == ("encoding",)


def test_a_file_no_contract_holds_is_recorded_as_skipped(con, sample_data: Path):
    fid = identify(sample_data / "databento" / "GLBX.MDP3" / "test_data.trades.dbn.zst", "trades", "dbn")
    run = IngestRun(con)
    run.plan([fid])
    run.file_skipped(fid, "schema trades has no warehouse table")
    summary = run.finish().as_dict()
    assert summary["files"][str(fid.path)]["status"] == "skipped" and summary["balanced"]
    assert con.execute("SELECT status, error FROM ops.file_manifest").fetchall() == [("skipped", "schema trades has no warehouse table")]
    assert con.execute("SELECT COUNT(*) FROM monitoring.quarantine").fetchall()[0][0] == 0
    # Skipped once, skipped for good: an unchanged file is not looked at again.
    assert IngestRun(con).plan([fid]) == ([], [fid])
