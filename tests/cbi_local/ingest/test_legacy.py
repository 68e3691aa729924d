"""Legacy BigQuery exports on the user's real files: mapping, every known defect by rule, dedup, accounting."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb

from cbi_local.ingest.core import IngestRun
from cbi_local.ingest.legacy import BY_FILE, SOURCE_NAMES, SYMBOLS, migrate_legacy



def _migrate(con, legacy_dir: Path):
    run = IngestRun(con, kind="migrate")
    report = migrate_legacy(con, legacy_dir, run)
    return report, run.finish()


def _rows(path: Path) -> int:
    return duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]


def _defects(report, rule: str, table: str) -> list:
    return [d for d in report.defects if d.rule == rule and d.legacy_table == table]


def _count(con, sql: str, params=None) -> int:
    return con.execute(sql, params or []).fetchall()[0][0]


def test_every_row_of_every_export_is_loaded_quarantined_or_a_duplicate(con, sample_data: Path):
    legacy = sample_data / "legacy_bq"
    files = sorted(legacy.glob("*.parquet"))
    assert {f.name for f in files} == set(BY_FILE)  # every real export has a declared mapping

    report, summary = _migrate(con, legacy)

    assert not report.unmapped and not report.errors
    assert set(report.files) == {str(f.resolve()) for f in files}
    for f in files:
        c = report.files[str(f.resolve())]
        assert c.rows_read == _rows(f), f.name
        assert c.rows_read == c.rows_loaded + c.rows_quarantined + c.rows_duplicate, f.name
    assert report.balanced and summary.as_dict()["balanced"]
    t = report.totals
    assert t.rows_read == sum(_rows(f) for f in files)
    # The manifest, the tables and the quarantine agree with the report.
    manifest = {p: (r, l, q, d) for p, r, l, q, d in con.execute(
        "SELECT path, rows_read, rows_loaded, rows_quarantined, rows_duplicate FROM ops.file_manifest").fetchall()}
    assert manifest == {p: (c.rows_read, c.rows_loaded, c.rows_quarantined, c.rows_duplicate) for p, c in report.files.items()}
    loaded = sum(_count(con, f"SELECT count(*) FROM {fqn}") for fqn in {m.target for m in BY_FILE.values()})
    assert loaded == t.rows_loaded
    assert _count(con, "SELECT count(*) FROM monitoring.quarantine WHERE batch_id = ?", [report.batch_id]) == t.rows_quarantined
    # One symbol per series; ZL is 'ZL' (the continuous series stitches it from here before 2010-06-06).
    symbols = {r[0] for r in con.execute("SELECT DISTINCT symbol FROM market_data.yahoo_historical").fetchall()}
    assert symbols <= set(SYMBOLS.values()) and "ZL" in symbols
    assert not {s for s in symbols if s.startswith("^") or s.endswith("=F") or "." in s}
    zl = con.execute(
        "SELECT count(*), min(date), list(DISTINCT source_symbol), list(DISTINCT source), count(*) FILTER (WHERE legacy_table IS NULL) "
        "FROM market_data.yahoo_historical WHERE symbol = 'ZL'"
    ).fetchall()[0]
    assert zl[0] > 5000 and zl[1] < dt.date(2010, 6, 6) and zl[2] == ["ZL"] and zl[3] == ["yahoo"] and zl[4] == 0
    assert _count(con, "SELECT count(*) FROM market_data.yahoo_historical GROUP BY symbol, date ORDER BY 1 DESC LIMIT 1") == 1
    # CFTC and weather land in their contracts; the quote snapshots in their research table.
    assert _count(con, "SELECT count(*) FROM raw_intelligence.cftc_cot") > 800
    assert _count(con, "SELECT count(*) FROM raw_intelligence.weather_daily") > 0
    assert _count(con, "SELECT count(*) FROM market_data.yahoo_quote_snapshots") == _rows(legacy / "market_data.hourly_prices.parquet")


def test_every_known_defect_is_reported_by_rule_with_samples(con, sample_data: Path):
    report, _ = _migrate(con, sample_data / "legacy_bq")
    fdw = "forecasting_data_warehouse."

    # Mixed source_name values (the ZL table has three spellings from three loaders).
    mixed = _defects(report, "source_hierarchy", fdw + "soybean_oil_prices")
    assert mixed and {"Yahoo_Finance", "yahoo_finance_comprehensive_historical", "yahoo_realtime_emergency_nov5"} <= {
        s["row"]["source_name"] for s in mixed[0].samples}
    assert all(s in SOURCE_NAMES for s in ("Yahoo_Finance", "yahoo_finance"))  # both spellings declared, ranked

    # Duplicate symbols for one series.
    for table, spellings, symbol in (("sp500_prices", {"^GSPC", "SPX"}, "SPX"), ("usd_index_prices", {"DX-Y.NYB", "DXY"}, "DXY")):
        (d,) = _defects(report, "canonical_symbol", fdw + table)
        assert {s["row"]["symbol"] for s in d.samples} == spellings and d.rows > 0
        got = {r[0] for r in con.execute(
            "SELECT DISTINCT source_symbol FROM market_data.yahoo_historical WHERE symbol = ?", [symbol]).fetchall()}
        assert got <= spellings

    # Null provenance: quarantined with the rule, never loaded.
    (d,) = _defects(report, "not_null", fdw + "usd_index_prices")
    assert d.resolution == "quarantined" and all(s["row"]["source_name"] is None for s in d.samples)
    assert d.rows == _count(con, "SELECT count(*) FROM monitoring.quarantine WHERE rule = 'not_null' AND reason LIKE '%null provenance%'")
    assert _count(con, "SELECT count(*) FROM market_data.yahoo_historical WHERE source_name IS NULL") == 0

    # 1,961 rows sharing one timestamp (treasury_prices.time).
    (d,) = _defects(report, "not_single_timestamp", fdw + "treasury_prices")
    assert d.rows == 1961 and len({s["row"]["time"] for s in d.samples}) == 1

    # All-zero columns in the CFTC table: placeholders, loaded as NULL rather than as zero positions.
    (d,) = _defects(report, "no_placeholders", fdw + "cftc_cot")
    assert "managed_money_long" in d.detail and "managed_money_short" in d.detail
    assert all(s["row"]["managed_money_long"] == 0 for s in d.samples)
    assert _count(con, "SELECT count(*) FROM raw_intelligence.cftc_cot WHERE managed_money_long IS NOT NULL OR managed_money_short IS NOT NULL") == 0
    assert _count(con, "SELECT count(*) FROM raw_intelligence.cftc_cot WHERE commercial_long IS NULL") == 0

    # Intraday rows mixed into daily tables.
    (d,) = _defects(report, "daily_grain", fdw + "soybean_oil_prices")
    assert d.resolution == "quarantined" and all(not s["row"]["time"].endswith("00:00:00") for s in d.samples)
    assert d.rows == _count(
        con, "SELECT count(*) FROM monitoring.quarantine WHERE rule = 'daily_grain' AND source_file LIKE '%soybean_oil_prices.parquet'")

    # Found beyond the README: prices exported as INT64, weather not in degrees C; both caught by rule.
    assert _defects(report, "lossless_prices", fdw + "crude_oil_prices")[0].rows > 0
    assert _count(con, "SELECT count(open) FROM market_data.yahoo_historical WHERE symbol = 'CL'") == 0
    assert _defects(report, "plausible_unit", fdw + "weather_data")[0].rows > 0
    assert _count(con, "SELECT count(*) FROM raw_intelligence.weather_daily WHERE temp_max > 50 OR station_id LIKE 'GHCND:%'") == 0

    # Every defect names its rule, table and target and carries samples; by_rule adds them up.
    for d in report.defects:
        assert d.rule and d.legacy_table in {t.name for t in BY_FILE.values()} and d.target and d.samples, d
    by_rule = report.as_dict()["by_rule"]
    assert {"source_hierarchy", "canonical_symbol", "not_null", "not_single_timestamp", "no_placeholders",
            "daily_grain", "unique_key"} <= set(by_rule)
    assert by_rule["unique_key"]["rows"] == report.totals.rows_duplicate
    # The defects are kept in the warehouse too.
    assert _count(con, "SELECT count(*) FROM monitoring.health_checks WHERE batch_id = ?", [report.batch_id]) == len(report.defects)


def test_duplicates_are_resolved_by_precedence_and_logged(con, sample_data: Path):
    report, _ = _migrate(con, sample_data / "legacy_bq")

    assert report.dedup_conflicts == _count(con, "SELECT count(*) FROM monitoring.dedup_conflicts") > 0
    # ZL 2025-10-21: the cron's partial-day bar loses to the final values of the curated series.
    kept, dropped, reason, kept_payload, dropped_payload = con.execute(
        """SELECT kept_source, dropped_source, reason, kept_payload, dropped_payload FROM monitoring.dedup_conflicts
           WHERE table_name = 'market_data.yahoo_historical' AND key_values = '{"symbol":"ZL","date":"2025-10-21"}'
           AND dropped_source LIKE '%/ Yahoo_Finance'"""
    ).fetchall()[0]
    assert kept.endswith("soybean_oil_prices_historical_view / yahoo_finance_comprehensive")
    assert "precedence" in reason and "values differ" in reason
    kept_row, dropped_row = json.loads(kept_payload), json.loads(dropped_payload)
    assert kept_row["close"] != dropped_row["row"]["close"] and dropped_row["record_number"] > 0
    loaded = con.execute(
        "SELECT close, volume, legacy_table FROM market_data.yahoo_historical WHERE symbol = 'ZL' AND date = DATE '2025-10-21'"
    ).fetchall()
    assert loaded == [(kept_row["close"], kept_row["volume"], kept_row["legacy_table"])]
    # Every logged key was loaded exactly once, from the kept source; the losers counted as duplicates.
    assert _count(con, """
        SELECT count(*) FROM monitoring.dedup_conflicts c
        WHERE c.table_name = 'market_data.yahoo_historical' AND NOT EXISTS (
            SELECT 1 FROM market_data.yahoo_historical y
            WHERE y.symbol = json_extract_string(c.key_values, '$.symbol')
              AND y.date = CAST(json_extract_string(c.key_values, '$.date') AS DATE)
              AND json_extract_string(c.kept_payload, '$.legacy_table') = y.legacy_table)""") == 0
    zl = report.files[str((sample_data / "legacy_bq" / "forecasting_data_warehouse.soybean_oil_prices.parquet").resolve())]
    assert zl.rows_duplicate >= _count(con, "SELECT count(*) FROM monitoring.dedup_conflicts WHERE dropped_source LIKE '%.soybean_oil_prices /%'")


def test_rerun_adds_nothing(con, sample_data: Path):
    _migrate(con, sample_data / "legacy_bq")
    tables = ("market_data.yahoo_historical", "market_data.yahoo_quote_snapshots", "raw_intelligence.cftc_cot",
              "raw_intelligence.weather_daily", "monitoring.quarantine", "monitoring.dedup_conflicts", "monitoring.health_checks")
    before = [_count(con, f"SELECT count(*) FROM {t}") for t in tables]

    report, summary = _migrate(con, sample_data / "legacy_bq")

    assert summary.as_dict()["totals"] == {"rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0, "rows_duplicate": 0}
    assert len(report.unchanged) == len(BY_FILE) and not report.files
    assert [_count(con, f"SELECT count(*) FROM {t}") for t in tables] == before
    assert report.defects  # the exports are still described


def test_treasury_dates_come_from_the_date_column_and_agree_with_fred(con, sample_data: Path):
    _migrate(con, sample_data / "legacy_bq")
    with (sample_data / "fred" / "DGS10.csv").open(newline="") as fh:
        dgs10 = {dt.date.fromisoformat(r["date"]): float(r["value"]) for r in csv.DictReader(fh) if r["value"]}

    tnx = con.execute("SELECT date, close FROM market_data.yahoo_historical WHERE symbol = 'TNX'").fetchall()

    assert len(tnx) == len({d for d, _ in tnx}) == 1961
    close = [abs(c - dgs10[d]) < 0.06 for d, c in tnx if d in dgs10]
    assert len(close) > 1900 and sum(close) / len(close) > 0.95


def test_an_export_without_a_mapping_is_reported_and_not_recorded(con, tmp_path: Path, sample_data: Path):
    legacy = tmp_path / "legacy_bq"
    legacy.mkdir()
    shutil.copy(sample_data / "legacy_bq" / "market_data.hourly_prices.parquet", legacy / "market_data.hourly_prices.parquet")
    shutil.copy(sample_data / "legacy_bq" / "market_data.hourly_prices.parquet", legacy / "market_data.minute_prices.parquet")

    report, _ = _migrate(con, legacy)

    assert report.unmapped == [str((legacy / "market_data.minute_prices.parquet").resolve())]
    assert [r[0] for r in con.execute("SELECT path FROM ops.file_manifest").fetchall()] == [
        str((legacy / "market_data.hourly_prices.parquet").resolve())]
