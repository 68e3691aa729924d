"""Health: each rule passes on real data and fails on a crafted bad input; exit codes; the batch gate."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pytest
from typer.testing import CliRunner

import data_contracts as dc
from cbi_local import health, quarantine, warehouse
from cbi_local.cli import app
from cbi_local.ingest.core import IngestRun, identify
from data_contracts import columns as catalog



def _verdicts(con, fqn: str, **kw) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for r in health.run_health(con, [fqn], **kw):
        key = (r.rule, r.columns)
        # several measures can share a key (one per sentinel): any failure wins
        out[key] = "fail" if "fail" in (out.get(key), r.status) else r.status
    return out


def test_real_yahoo_prices_pass_the_price_rules(con, sample_data, load_yahoo_zl_bridge):
    load_yahoo_zl_bridge(con)
    v = _verdicts(con, "market_data.yahoo_historical")
    for key in [("ohlc_sane", "open,high,low,close"), ("non_negative", "volume"), ("unique_key", "symbol,date"),
                ("not_single_timestamp", "date"), ("source_hierarchy", "source")]:
        assert v[key] == "pass", key


def test_crafted_bad_prices_fail_each_price_rule(con, sample_data, load_yahoo_zl_bridge):
    load_yahoo_zl_bridge(con)
    # Crafted rejects: an inverted bar, a negative volume, a duplicate key, a forbidden source.
    con.execute(
        """
        INSERT INTO market_data.yahoo_historical (date, symbol, open, high, low, close, volume, source, source_name) VALUES
          (DATE '2030-01-02', 'ZL', 50, 40, 45, 42, 10, 'yahoo', 'crafted'),
          (DATE '2030-01-03', 'ZL', 50, 55, 45, 52, -1, 'yahoo', 'crafted'),
          (DATE '2030-01-03', 'ZL', 50, 55, 45, 52, 1, 'yahoo', 'crafted'),
          (DATE '2030-01-04', 'ZL', 50, 55, 45, 52, 1, 'databento', 'crafted')
        """
    )
    results = {(r.rule, r.columns): r for r in health.run_health(con, ["market_data.yahoo_historical"])}
    assert results[("ohlc_sane", "open,high,low,close")].status == "fail"
    assert results[("ohlc_sane", "open,high,low,close")].sample[0]["date"] == "2030-01-02"
    assert results[("non_negative", "volume")].measured_value == 1
    assert results[("unique_key", "symbol,date")].sample == [{"key": {"symbol": "ZL", "date": "2030-01-03"}, "rows": 2}]
    assert results[("source_hierarchy", "source")].status == "fail"


def test_one_timestamp_shared_by_every_row_is_caught(con):
    # Crafted: the shape of the legacy treasury_prices defect (1,961 rows, one timestamp).
    con.execute(
        """
        INSERT INTO market_data.yahoo_historical (date, symbol, close, source, source_name)
        SELECT DATE '2025-11-05', 'TNX' || i, 4.1, 'yahoo', 'crafted' FROM range(50) t(i)
        """
    )
    assert _verdicts(con, "market_data.yahoo_historical")[("not_single_timestamp", "date")] == "fail"


def test_placeholder_columns_are_caught_and_real_positions_pass(con, load_cftc_cot):
    # Real CFTC rows: commercial positions vary (pass); managed-money columns are all zero in the
    # legacy export (the known defect: fail).
    load_cftc_cot(con)
    v = _verdicts(con, "raw_intelligence.cftc_cot")
    assert v[("no_placeholders", "commercial_long")] == "pass"
    assert v[("no_placeholders", "commercial_short")] == "pass"
    assert v[("no_placeholders", "managed_money_long")] == "fail"


def test_the_half_sentinel_is_caught_in_the_feature_matrix(con):
    # Crafted: a 0.5 placeholder column, as the seeds loaded 1,404 such rows.
    con.execute(
        """
        INSERT INTO features.daily_ml_matrix (date, symbol, matrix_source, market_data)
        SELECT DATE '2020-01-01' + CAST(i AS INTEGER), 'ZL', 'canonical', {'close': 40 + i, 'volatility_21d': 0.5}
        FROM range(30) t(i)
        """
    )
    v = _verdicts(con, "features.daily_ml_matrix")
    assert v[("no_placeholders", "market_data.volatility_21d")] == "fail"
    assert v[("no_placeholders", "market_data.close")] == "pass"


def test_regime_rules_range_diversity_and_allhistory(con, sample_data):
    # Real registry weights (from the legacy calendar parquet) pass the range rule ...
    con.execute(
        f"""
        INSERT INTO regimes.regime_calendar (date, regime_name, regime_weight, source)
        SELECT CAST(date AS DATE), regime, training_weight, 'registry'
        FROM read_parquet('{sample_data / "registry" / "regime_calendar.parquet"}')
        """
    )
    v = _verdicts(con, "regimes.regime_calendar")
    assert v[("value_range", "regime_weight")] == "pass"
    assert v[("min_distinct", "regime_name")] == "pass"
    assert v[("forbidden_values", "regime_name")] == "pass"
    # ... crafted: a weight out of range and the 'allhistory' placeholder regime.
    con.execute("UPDATE regimes.regime_calendar SET regime_weight = 1, regime_name = 'allhistory' WHERE date = DATE '2001-01-01'")
    v = _verdicts(con, "regimes.regime_calendar")
    assert v[("value_range", "regime_weight")] == "fail"
    assert v[("forbidden_values", "regime_name")] == "fail"


def test_too_few_regimes_fail_the_diversity_rule(con):
    con.execute(
        """
        INSERT INTO regimes.regime_calendar (date, regime_name, regime_weight, source)
        SELECT DATE '2020-01-01' + CAST(i AS INTEGER), 'r' || (i % 3), 100, 'registry' FROM range(90) t(i)
        """
    )
    r = {x.rule: x for x in health.run_health(con, ["regimes.regime_calendar"])}["min_distinct"]
    assert (r.status, r.measured_value) == ("fail", 3.0)


def test_freshness_warns_on_stale_real_series(con, sample_data):
    con.execute(
        f"""
        INSERT INTO raw_intelligence.fred_economic (series_id, date, value, source)
        SELECT 'DGS10', date, value, 'fred' FROM read_csv('{sample_data / "fred" / "DGS10.csv"}', header = true)
        """
    )
    last = con.execute("SELECT max(date) FROM raw_intelligence.fred_economic").fetchall()[0][0]
    fresh = {r.rule: r for r in health.run_health(con, ["raw_intelligence.fred_economic"], today=last)}
    assert fresh["freshness"].status == "pass"
    stale = {r.rule: r for r in health.run_health(con, ["raw_intelligence.fred_economic"], today=date(2026, 11, 22))}
    assert stale["freshness"].status == "warn" and stale["freshness"].severity == "warning"


def test_target_naming():
    matrix = dc.get("features.daily_ml_matrix")
    assert health.target_naming_violations(matrix) == []
    assert health.target_naming_violations(dc.get("market_data.databento_futures_ohlcv_1m")) == []  # bar size, not horizon
    ok = dataclasses.replace(matrix, table="training_1m", columns=matrix.columns[:8] + (catalog.TARGETS[1],), rules=())
    assert health.target_naming_violations(ok) == []
    # Crafted: a _1m table whose DDL says target_1w (the seeds' defect).
    bad = dataclasses.replace(matrix, table="training_1m", columns=matrix.columns[:8] + (catalog.TARGETS[0],), rules=())
    assert health.target_naming_violations(bad) == [
        "features.training_1m is a 1m table without target_1m",
        "features.training_1m carries target_1w, another horizon's target",
    ]


def test_results_are_recorded_with_history_and_the_cli_exit_code(home, sample_data, load_yahoo_zl_bridge):
    runner = CliRunner()
    with warehouse.open_warehouse(home / "warehouse.duckdb") as c:
        load_yahoo_zl_bridge(c)
    ok = runner.invoke(app, ["health", "--home", str(home), "--table", "market_data.yahoo_historical", "--json"])
    assert ok.exit_code == 0, ok.output
    with warehouse.open_warehouse(home / "warehouse.duckdb") as c:
        c.execute("UPDATE market_data.yahoo_historical SET high = low - 1 WHERE date = DATE '2005-03-01'")
    bad = runner.invoke(app, ["health", "--home", str(home), "--table", "market_data.yahoo_historical"])
    assert bad.exit_code == 1
    assert "market_data.yahoo_historical ohlc_sane" in bad.output
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as c:
        runs = c.execute("SELECT COUNT(DISTINCT checked_at), COUNT(*) FILTER (WHERE status = 'fail') FROM monitoring.health_checks").fetchall()[0]
    assert runs[0] == 2 and runs[1] >= 1


def test_a_batch_failing_a_blocking_rule_is_quarantined_and_can_be_released(con, tmp_path, sample_data):
    # Real weights ingested as one batch whose rows then share a primary key (crafted duplicate file).
    src = sample_data / "registry" / "regime_calendar.parquet"
    fid = identify(src, "legacy_parquet", "parquet")
    run = IngestRun(con)
    run.plan([fid])
    rel = con.sql(
        f"SELECT CAST(date AS DATE) AS date, regime AS regime_name, training_weight AS regime_weight, "
        f"'{fid.path}' AS source_file, row_number() OVER (ORDER BY date) AS record_number FROM read_parquet('{src}')"
    )
    run.stage(dc.get("regimes.regime_calendar"), rel, [fid])
    batch = run.finish().batch_id
    assert health.validate_batch(con, batch)["failed"] == {}
    # Crafted: the batch's weights overwritten with a single value (zero variance is not a rule here,
    # but the 'allhistory' placeholder is blocking).
    con.execute("UPDATE regimes.regime_calendar SET regime_name = 'allhistory' WHERE batch_id = ?", [batch])
    gate = health.validate_batch(con, batch)
    assert gate["failed"] == {"regimes.regime_calendar": ["forbidden_values", "min_distinct"]}
    assert gate["rows_quarantined"] == 9497
    assert con.execute("SELECT COUNT(*) FROM regimes.regime_calendar").fetchall()[0][0] == 0
    assert con.execute("SELECT status FROM ops.batches WHERE batch_id = ?", [batch]).fetchall()[0][0] == "failed_validation"
    # Released without a fix, the rows go straight back to the quarantine: nothing bypasses the rules.
    report = quarantine.release(con, batch=batch)
    assert (report.released, report.loaded, report.requarantined) == (9497, 0, 9497)
    held = quarantine.summary(con)
    assert held == [{"table": "regimes.regime_calendar", "rule": "forbidden_values", "status": "held", "rows": 9497,
                     "files": 1, "example": held[0]["example"]}]
    assert "allhistory" in held[0]["example"]


# --- the audit against reality: the real legacy exports' known defects, named by `cbi health` -----------


def test_health_names_each_known_legacy_defect_after_migrating_the_real_exports(home, sample_data):
    from cbi_local import pipeline

    with warehouse.open_warehouse(home / "warehouse.duckdb") as c:
        migrated = pipeline.migrate_legacy_dir(c, sample_data / "legacy_bq")
    runner = CliRunner()
    out = runner.invoke(app, ["health", "--home", str(home), "--json"])
    # The live warehouse passes every blocking rule (the defects were quarantined or resolved on the way in):
    # recorded defects are shown, but only live failures set the exit code.
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert payload["ok"] is True and payload["failed"] == 0
    rec = payload["recorded"]
    assert rec["batch_id"] == migrated["batch"]["batch_id"]
    defects = rec["defects"]

    def one(rule: str, table: str, legacy: str) -> dict:
        found = [d for d in defects if d["rule"] == rule and d["table"] == table and d["legacy_table"].endswith(legacy)]
        assert len(found) == 1, (rule, legacy, [(d["rule"], d["legacy_table"]) for d in defects])
        assert found[0]["rows"] > 0 and found[0]["sample"], found[0]
        return found[0]

    prices = "market_data.yahoo_historical"
    # mixed source_name -> source_hierarchy (the spellings are named)
    mixed = one("source_hierarchy", prices, ".soybean_oil_prices")
    assert "Yahoo_Finance" in mixed["message"] and "yahoo_finance_comprehensive_historical" in mixed["message"]
    # ^GSPC/SPX and DX-Y.NYB/DXY -> canonical_symbol, samples showing both spellings
    spx = one("canonical_symbol", prices, ".sp500_prices")
    assert {s["row"]["symbol"] for s in spx["sample"]} == {"SPX", "^GSPC"}
    dxy = one("canonical_symbol", prices, ".usd_index_prices")
    assert {s["row"]["symbol"] for s in dxy["sample"]} == {"DX-Y.NYB", "DXY"}
    # null provenance -> not_null (quarantined: a blocking failure at migration time)
    nulls = one("not_null", prices, ".usd_index_prices")
    assert nulls["status"] == "fail" and all(s["row"]["source_name"] is None for s in nulls["sample"])
    # the treasury table's one timestamp -> not_single_timestamp, 1,961 rows
    tsy = one("not_single_timestamp", prices, ".treasury_prices")
    assert tsy["rows"] == 1961 and "1961 rows" in tsy["message"]
    # CFTC all-zero managed-money columns -> no_placeholders
    cot = one("no_placeholders", "raw_intelligence.cftc_cot", ".cftc_cot")
    assert "managed_money_long" in cot["message"] and cot["sample"][0]["row"]["managed_money_long"] == 0
    # intraday rows in daily tables -> daily_grain, sample times are not midnight
    for legacy in (".soybean_oil_prices", ".soybean_meal_prices", ".soybean_prices"):
        grain = one("daily_grain", prices, legacy)
        assert grain["status"] == "fail"
        assert all(not s["row"]["time"][11:19] in ("", "00:00:00") for s in grain["sample"])
    # The human view names them too, with the live result line first.
    text = runner.invoke(app, ["health", "--home", str(home)])
    assert text.exit_code == 0
    assert "recorded by migration batch" in text.output
    assert "market_data.yahoo_historical canonical_symbol" in text.output
    # --batch shows that batch: its live checks over the batch's rows and its recorded defects.
    batch = runner.invoke(app, ["health", "--home", str(home), "--json", "--batch", rec["batch_id"]])
    assert batch.exit_code == 0
    assert len(json.loads(batch.output)["recorded"]["defects"]) == len(defects)
    # A live blocking failure still sets exit 1 (crafted: an inverted bar).
    with warehouse.open_warehouse(home / "warehouse.duckdb") as c:
        c.execute("UPDATE market_data.yahoo_historical SET high = low - 1 WHERE symbol = 'ZL' AND date = DATE '2005-03-01'")
    assert runner.invoke(app, ["health", "--home", str(home)]).exit_code == 1


def test_one_key_text_counts_like_a_struct(con, sample_data, load_yahoo_zl_bridge):
    # The portable key encoding (BigQuery cannot COUNT(DISTINCT STRUCT)) counts real keys like DuckDB's struct.
    load_yahoo_zl_bridge(con)
    keys = health.key_text(dc.get("market_data.yahoo_historical"))
    a, b = con.execute(
        f"SELECT COUNT(DISTINCT {keys}), COUNT(DISTINCT struct_pack(symbol, date)) FROM market_data.yahoo_historical"
    ).fetchall()[0]
    assert a == b > 2000
    # Length prefixes keep ('ab','c') and ('a','bc') apart.
    parts = con.execute(
        f"SELECT COUNT(DISTINCT {health.key_text(dc.get('market_data.yahoo_historical'), ('symbol', 'source'))}) "
        "FROM (VALUES ('ab', 'c'), ('a', 'bc'), ('a', NULL)) t(symbol, source)"
    ).fetchall()[0][0]
    assert parts == 3


def test_a_column_constant_over_a_window_is_a_placeholder(con, load_cftc_cot):
    # Real CFTC weeks: commercial positions never repeat for 20 reports in a row (pass).
    load_cftc_cot(con)
    window = ("no_placeholders", "commercial_long")
    runs = [r for r in health.run_health(con, ["raw_intelligence.cftc_cot"]) if (r.rule, r.columns) == window
            and "run of" in r.threshold]
    assert [r.status for r in runs] == ["pass"]
    # Crafted: 25 consecutive reports frozen at one value (a forward-filled placeholder), the rest real.
    con.execute(
        """
        UPDATE raw_intelligence.cftc_cot SET commercial_long = 123456
        WHERE report_date IN (SELECT report_date FROM raw_intelligence.cftc_cot ORDER BY report_date LIMIT 25 OFFSET 100)
        """
    )
    r = [r for r in health.run_health(con, ["raw_intelligence.cftc_cot"]) if (r.rule, r.columns) == window
         and "run of" in r.threshold][0]
    assert (r.status, r.measured_value) == ("fail", 6.0)  # rows 20..25 of the run each end a 20-row window


# --- the feature matrix: placeholder checks on every numeric field of every STRUCT -----------------------

MATRIX = "features.daily_ml_matrix"
_NUMERIC = ("FLOAT64", "INT64", "NUMERIC", "BOOL")


def _numeric_fields(contract) -> list[tuple[str, str]]:
    return [(f"{c.name}.{f.name}", f.type) for c in contract.columns if c.type == "STRUCT" and c.mode != "REPEATED"
            for f in c.fields if f.type in _NUMERIC]


@pytest.fixture(scope="module")
def matrix_home(tmp_path_factory, sample_data):
    """The real pipeline: the legacy exports migrated, the real FRED series and registry ingested, both
    matrix sources built (each build passed its own batch gate)."""
    from cbi_local import pipeline
    from cbi_local.features import build_features

    h = tmp_path_factory.mktemp("matrix-health")
    warehouse.init(h / "warehouse.duckdb")
    with warehouse.open_warehouse(h / "warehouse.duckdb") as c:
        assert pipeline.migrate_legacy_dir(c, sample_data / "legacy_bq")["ok"]
        assert pipeline.ingest_paths(c, [sample_data / "fred", sample_data / "registry"])["ok"]
        for symbols, source in ((None, "canonical"), (["ZL"], "yahoo_historical")):
            built = build_features(c, symbols, source)
            assert built.ok and built.gate["failed"] == {}, (source, built.gate)
    return h


def test_every_numeric_field_of_every_matrix_struct_has_exactly_one_placeholder_rule():
    matrix = dc.get(MATRIX)
    covered = [col for rule in matrix.rules_of("no_placeholders") for col in rule.columns]
    fields = _numeric_fields(matrix)
    assert sorted(covered) == sorted(name for name, _ in fields)  # each once, none left out
    assert len(fields) > 60 and {"macro.dgs10", "regime.vol_percentile", "positioning.commercial_net_pct_oi"} <= set(covered)
    types = dict(fields)
    for rule in matrix.rules_of("no_placeholders"):
        for col in rule.columns:
            # a boolean has no sentinel (TRUE = 1.0 is its nature; all-TRUE is zero variance)
            assert rule.param("sentinels") == (() if types[col] == "BOOL" else (0.5, 1.0)), col
            window, min_rows = rule.param("window"), rule.param("min_rows")
            assert min_rows >= 2 and (window is None or window >= 8), col


def test_the_placeholder_rules_follow_the_struct_fields_and_reject_a_stale_cadence():
    from data_contracts import rules as r
    from data_contracts.model import Column, struct

    # A field added to a STRUCT later is covered without naming it (the default cadence) ...
    s = struct("s", "a struct", Column("a", "FLOAT64", ""), Column("b", "INT64", ""), Column("t", "STRING", ""),
               Column("f", "BOOL", ""))
    rules = r.no_placeholders_by_field((s,), {"s.b": {"window": 40, "min_rows": 40}}, {"window": 20, "min_rows": 2})
    assert [(x.columns, x.param("window"), x.param("min_rows"), x.param("sentinels")) for x in rules] == [
        (("s.a",), 20, 2, (0.5, 1.0)), (("s.b",), 40, 40, (0.5, 1.0)), (("s.f",), 20, 2, ())]
    # ... and a cadence naming a field that is gone (or not numeric) is an error, never silently ignored.
    with pytest.raises(ValueError, match="s.gone"):
        r.no_placeholders_by_field((s,), {"s.gone": {"window": 40}}, {"window": 20})
    with pytest.raises(ValueError, match="s.t"):
        r.no_placeholders_by_field((s,), {"s.t": {"window": 40}}, {"window": 20})


def test_the_calendar_windows_are_one_more_than_the_season_allows():
    # Recomputed from the season dates the features use (cbi_local/features/seasonal.py): a series has at
    # most one row per date, so a run of one value can last at most this many rows.
    from datetime import date as d

    from cbi_local.features import seasonal

    def days(window) -> int:  # dates inside the window (a leap year does not change it: May-November)
        (m0, d0), (m1, d1) = window
        return (d(2024, m1, d1) - d(2024, m0, d0)).days + 1

    planting, harvest = days(seasonal.PLANTING), days(seasonal.HARVEST)
    assert (planting, harvest) == (46, 52)
    longest = {"calendar.month": 31, "calendar.week_of_year": 7, "calendar.days_to_planting": planting,
               "calendar.days_to_harvest": harvest, "calendar.in_planting": 366 - planting,
               "calendar.in_harvest": 366 - harvest}
    windows = {col: rule.param("window") for rule in dc.get(MATRIX).rules_of("no_placeholders") for col in rule.columns}
    assert {k: windows[k] for k in longest} == {k: v + 1 for k, v in longest.items()}


def _matrix_placeholder_failures(results) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for x in results:
        if x.rule == "no_placeholders" and x.status == "fail":
            out.setdefault(x.columns, set()).add(x.threshold)
    return out


def test_the_real_matrix_passes_every_placeholder_check(matrix_home):
    with warehouse.open_warehouse(matrix_home / "warehouse.duckdb", read_only=True) as c:
        # real data, both sources: monthly fed funds, weekly COT, regimes and calendar fields hold one value
        # for many rows, and several fields are NULL everywhere in the sample (vwap without 1h bars, managed
        # money quarantined by the migration, the canonical cross-asset series)
        assert c.execute(f"SELECT COUNT(*) FROM {MATRIX} WHERE matrix_source = 'yahoo_historical'").fetchall()[0][0] > 6000
        results = [x for x in health.run_health(c, [MATRIX], record=False) if x.rule == "no_placeholders"]
    assert _matrix_placeholder_failures(results) == {}
    checked = {x.columns for x in results}
    assert checked == {name for name, _ in _numeric_fields(dc.get(MATRIX))}


# Crafted values, each set on every row of the real matrix, only to be rejected: each fails naming its field.
CRAFTED = [
    ("macro", "dgs10", "4.0", {"more than one distinct value (judged over >= 20 values)", "no run of 20 equal values"}),
    ("regime", "vol_percentile", "1.0", {"not every value = 1.0 (judged over >= 63 values)",
                                         "more than one distinct value (judged over >= 63 values)",
                                         "no run of 63 equal values"}),
    ("positioning", "commercial_net_pct_oi", "4.0", {"more than one distinct value (judged over >= 20 values)",
                                                     "no run of 20 equal values"}),
    ("positioning", "commercial_net_pctile_3y", "1.0", {"not every value = 1.0 (judged over >= 63 values)",
                                                        "more than one distinct value (judged over >= 63 values)",
                                                        "no run of 63 equal values"}),
    ("macro", "fed_funds", "5.33", {"more than one distinct value (judged over >= 504 values)",
                                    "no run of 504 equal values"}),
    ("calendar", "in_planting", "false", {"more than one distinct value (judged over >= 321 values)",
                                          "no run of 321 equal values"}),
    ("regime", "weight", "100", {"more than one distinct value (judged over >= 1260 values)"}),
    ("market_data", "volume", "1", {"not every value = 1.0", "more than one distinct value", "no run of 20 equal values"}),
]


@pytest.mark.parametrize("struct_name, field, value, thresholds", CRAFTED, ids=[f"{s}.{f}" for s, f, _, _ in CRAFTED])
def test_a_field_constant_on_every_row_fails_naming_it(matrix_home, struct_name, field, value, thresholds):
    with warehouse.open_warehouse(matrix_home / "warehouse.duckdb") as c:
        c.execute("BEGIN TRANSACTION")
        try:
            c.execute(f"UPDATE {MATRIX} SET {struct_name} = struct_update({struct_name}, {field} := {value})")
            results = health.run_health(c, [MATRIX], record=False)
        finally:
            c.execute("ROLLBACK")
    assert _matrix_placeholder_failures(results) == {f"{struct_name}.{field}": thresholds}
    assert {x.rule for x in results if x.status == "fail"} == {"no_placeholders"}


def test_cbi_health_fails_on_a_constant_macro_field_and_passes_on_the_real_matrix(matrix_home, tmp_path):
    import shutil

    runner = CliRunner()
    shutil.copy(matrix_home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    ok = runner.invoke(app, ["health", "--home", str(tmp_path), "--table", MATRIX, "--json"])
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.output)
    assert payload["ok"] is True and payload["failed"] == 0 and payload["checks"] > 250
    with warehouse.open_warehouse(tmp_path / "warehouse.duckdb") as c:
        c.execute(f"UPDATE {MATRIX} SET macro = struct_update(macro, dgs10 := 4.0)")  # crafted, to be rejected
    bad = runner.invoke(app, ["health", "--home", str(tmp_path), "--table", MATRIX])
    assert bad.exit_code == 1, bad.output
    assert "features.daily_ml_matrix no_placeholders" in bad.output and "macro.dgs10: zero variance" in bad.output


def test_a_few_real_rows_where_slow_fields_hold_one_value_pass_the_batch_gate(matrix_home):
    # The batch gate checks only the rows a build changed. Seven real sessions of January 2024: one month, one
    # regime, fed funds 5.33 all along, outside planting and harvest, one or two COT reports; too few rows to
    # say any of them is a placeholder (each judges over its min_rows), while the daily fields vary.
    with warehouse.open_warehouse(matrix_home / "warehouse.duckdb") as c:
        c.execute("BEGIN TRANSACTION")
        try:
            c.execute(f"UPDATE {MATRIX} SET batch_id = 'b-few' WHERE matrix_source = 'yahoo_historical' "
                      "AND date BETWEEN DATE '2024-01-02' AND DATE '2024-01-10'")
            same = c.execute(
                f"SELECT COUNT(*), COUNT(DISTINCT macro.fed_funds), COUNT(DISTINCT calendar.month), "
                f"COUNT(DISTINCT regime.weight), COUNT(DISTINCT calendar.in_planting), COUNT(DISTINCT market_data.close) "
                f"FROM {MATRIX} WHERE batch_id = 'b-few'").fetchall()[0]
            results = health.run_health(c, [MATRIX], batch_id="b-few", record=False)
        finally:
            c.execute("ROLLBACK")
    assert same[0] == 7 and same[1:5] == (1, 1, 1, 1) and same[5] == 7
    assert [x for x in results if x.status == "fail"] == []
