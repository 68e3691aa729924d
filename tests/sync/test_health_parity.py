"""One rule, one verdict: the health query generated once runs on DuckDB and, transpiled, on BigQuery.

Real rows (legacy Yahoo ZL, real CFTC with its all-zero managed-money columns, the real regime calendar,
the real Databento ES bars) are loaded into a local warehouse, pushed unchanged to the BigQuery emulator
(tables from sync.bigquery.layout.ensure_layout, Parquet through load_table_from_file), and every rule is
run on both. Crafted rows appear only to make a rule fail; verdicts and measured values must be equal for
every rule, passing and failing.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import pytest
from google.cloud import bigquery

import data_contracts as dc
from cbi_local import health, pipeline, warehouse
from sync.bigquery import health as bq_health
from data_contracts import to_bigquery
from sync.bigquery.layout import ensure_layout

PROJECT = f"cbi-parity-{uuid.uuid4().hex[:8]}"  # a project of its own in the shared emulator
TODAY = date(2026, 11, 22)
TABLES = (
    "market_data.yahoo_historical",
    "raw_intelligence.cftc_cot",
    "regimes.regime_calendar",
    "market_data.databento_futures_ohlcv_1h",
)


def _load_local(con, sample_data: Path, load_yahoo_zl_bridge, load_cftc_cot) -> None:
    # Real rows.
    load_yahoo_zl_bridge(con)
    load_cftc_cot(con)
    con.execute(
        f"""
        INSERT INTO regimes.regime_calendar (date, regime_name, regime_weight, source)
        SELECT CAST(date AS DATE), regime, training_weight, 'registry'
        FROM read_parquet('{sample_data / "registry" / "regime_calendar.parquet"}')
        """
    )
    report = pipeline.ingest_paths(con, [sample_data / "databento" / "GLBX.MDP3"])
    assert report["ok"], report
    # Crafted rejects, one per rule to fail: inverted bar, negative volume, duplicate key, forbidden source,
    # missing provenance; out-of-range weight + 'allhistory'; a calendar spread, a NaN price and a duplicate bar.
    con.execute(
        """
        INSERT INTO market_data.yahoo_historical (date, symbol, open, high, low, close, volume, source, source_name) VALUES
          (DATE '2030-01-02', 'ZL', 50, 40, 45, 42, 10, 'yahoo', 'crafted'),
          (DATE '2030-01-03', 'ZL', 50, 55, 45, 52, -1, 'yahoo', 'crafted'),
          (DATE '2030-01-03', 'ZL', 50, 55, 45, 52, 1, 'yahoo', 'crafted'),
          (DATE '2030-01-04', 'ZL', 50, 55, 45, 52, 1, 'databento', 'crafted'),
          (DATE '2030-01-07', 'ZL', 50, 55, 45, 52, 1, 'yahoo', NULL)
        """
    )
    con.execute("UPDATE regimes.regime_calendar SET regime_weight = 1, regime_name = 'allhistory' WHERE date = DATE '2001-01-01'")
    con.execute(
        """
        INSERT INTO market_data.databento_futures_ohlcv_1h (ts_event, symbol, root, open, high, low, close, volume, source, batch_id)
        SELECT ts_event + INTERVAL 1 DAY, 'ESH1-ESM1', root, open, high, low, close, volume, source, 'crafted'
        FROM market_data.databento_futures_ohlcv_1h WHERE ts_event = TIMESTAMPTZ '2020-12-28 00:00:00+00';
        INSERT INTO market_data.databento_futures_ohlcv_1h (ts_event, symbol, root, open, high, low, close, volume, source, batch_id)
        SELECT ts_event + INTERVAL 2 DAY, symbol, root, 'nan'::DOUBLE, high, low, close, volume, source, 'crafted'
        FROM market_data.databento_futures_ohlcv_1h WHERE ts_event = TIMESTAMPTZ '2020-12-28 01:00:00+00';
        INSERT INTO market_data.databento_futures_ohlcv_1h
        SELECT * FROM market_data.databento_futures_ohlcv_1h WHERE ts_event = TIMESTAMPTZ '2020-12-28 02:00:00+00';
        """
    )


@pytest.fixture(scope="module")
def both(tmp_path_factory, sample_data, bq_emulator, load_yahoo_zl_bridge, load_cftc_cot):
    home = tmp_path_factory.mktemp("parity")
    warehouse.init(home / "warehouse.duckdb")
    con = warehouse.connect(home / "warehouse.duckdb")
    _load_local(con, sample_data, load_yahoo_zl_bridge, load_cftc_cot)
    client = bq_emulator.client(project=PROJECT)
    ensure_layout(client, PROJECT, dc.LOCATION)
    for fqn in TABLES:
        contract = dc.get(fqn)
        path = home / f"{fqn}.parquet"
        con.execute(f"COPY (SELECT * FROM {fqn}) TO '{path}' (FORMAT parquet)")
        job = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET, write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            schema=to_bigquery.schema(contract),
        )
        with path.open("rb") as f:
            client.load_table_from_file(f, f"{PROJECT}.{contract.fqn}", job_config=job).result()
    yield con, client
    client.close()
    con.close()


@pytest.mark.parametrize("fqn", TABLES)
def test_same_rows_on_both_engines(both, fqn):
    con, client = both
    local = con.execute(f"SELECT COUNT(*) FROM {fqn}").fetchall()[0][0]
    remote = list(client.query(f"SELECT COUNT(*) AS n FROM `{PROJECT}.{fqn}`").result())[0]["n"]
    assert local == remote > 0


def _verdicts(results) -> list[tuple]:
    return [(r.rule, r.columns, r.threshold, r.status, r.measured_value) for r in results]


# Rules the crafted rows (or the real defect: CFTC's all-zero managed money) make fail, per table.
EXPECTED_FAILS = {
    "market_data.yahoo_historical": {"ohlc_sane", "non_negative", "unique_key", "source_hierarchy", "not_null"},
    "raw_intelligence.cftc_cot": {"no_placeholders"},
    "regimes.regime_calendar": {"value_range", "forbidden_values"},
    "market_data.databento_futures_ohlcv_1h": {"no_spreads", "ohlc_sane", "unique_key"},
}


@pytest.mark.parametrize("fqn", TABLES)
def test_every_rule_has_the_same_verdict_and_measure_on_duckdb_and_bigquery(both, fqn):
    con, client = both
    contract = dc.get(fqn)
    local = health.check_table(con, contract, today=TODAY)
    remote = bq_health.check_table(client, PROJECT, contract, today=TODAY)
    assert _verdicts(local) == _verdicts(remote)
    failed = {r.rule for r in local if r.status == "fail"}
    assert failed == EXPECTED_FAILS[fqn]
    assert {r.rule for r in local if r.status == "pass"}  # passing rules are compared too
    for lr, rr in zip(local, remote):
        if lr.status != "pass" and lr.rule != "freshness" and lr.sample:
            assert rr.sample, (fqn, lr.rule)  # the BigQuery side finds offending rows as well
            assert len(rr.sample) == len(lr.sample)


def test_specific_measures(both):
    con, client = both
    remote = {(r.rule, r.columns): r for r in bq_health.check_table(client, PROJECT, dc.get("raw_intelligence.cftc_cot"), today=TODAY)}
    # The real defect: managed_money_long is zero on every real row (zero variance), commercial positions vary.
    assert remote[("no_placeholders", "managed_money_long")].status == "fail"
    assert remote[("no_placeholders", "commercial_long")].status == "pass"
    y = [r for r in bq_health.check_table(client, PROJECT, dc.get("market_data.yahoo_historical"), today=TODAY)
         if r.rule == "unique_key"][0]
    assert (y.measured_value, y.sample) == (1.0, [{"key": {"symbol": "ZL", "date": "2030-01-03"}, "rows": 2}])
    bars = {r.rule: r for r in bq_health.check_table(client, PROJECT, dc.get("market_data.databento_futures_ohlcv_1h"), today=TODAY)}
    assert bars["no_spreads"].sample[0]["symbol"] == "ESH1-ESM1"
    assert bars["ohlc_sane"].measured_value == 1.0  # the NaN open, seen as non-finite by BigQuery too


def test_generated_sql_is_portable():
    for contract in dc.CONTRACTS:
        sql, _ = health.table_query(contract)
        out = health.bigquery_sql(sql)
        assert "COUNTIF" in out or "FILTER" not in sql
        assert "STRUCT(" not in out
    with pytest.raises(ValueError, match="isfinite"):
        health.bigquery_sql("SELECT COUNT(*) FILTER (WHERE NOT isfinite(x)) FROM t")
