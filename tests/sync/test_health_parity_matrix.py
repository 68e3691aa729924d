"""The feature matrix's placeholder checks (every numeric STRUCT field, per-field windows) reach the same
verdict and measured value on DuckDB and, transpiled, on the BigQuery emulator.

The real matrix (legacy Yahoo ZL research rows and the canonical bridge, real FRED, COT and registry) is
built locally and loaded unchanged into the emulator, beside crafted copies of the research rows (matrix_source
'crafted': macro.dgs10 = 4.0, regime.vol_percentile = 1.0 and pivots.is_above_p = TRUE on every row), made
only to be rejected. The real rows pass every check on both engines; the crafted ones fail on those fields.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from google.cloud import bigquery

import data_contracts as dc
from cbi_local import health, pipeline, warehouse
from cbi_local.features import build_features
from data_contracts import to_bigquery
from sync.bigquery import health as bq_health
from sync.bigquery.layout import ensure_layout

PROJECT = f"cbi-parity-matrix-{uuid.uuid4().hex[:8]}"
TODAY = date(2026, 11, 22)
MATRIX = dc.get("features.daily_ml_matrix")
REAL, CRAFTED = "matrix_source <> 'crafted'", "matrix_source = 'crafted'"


@pytest.fixture(scope="module")
def both(tmp_path_factory, sample_data, bq_emulator):
    home = tmp_path_factory.mktemp("parity-matrix")
    warehouse.init(home / "warehouse.duckdb")
    con = warehouse.connect(home / "warehouse.duckdb")
    assert pipeline.migrate_legacy_dir(con, sample_data / "legacy_bq")["ok"]
    assert pipeline.ingest_paths(con, [sample_data / "fred", sample_data / "registry"])["ok"]
    assert build_features(con, None, "canonical").ok and build_features(con, ["ZL"], "yahoo_historical").ok
    con.execute(
        f"""
        INSERT INTO {MATRIX.fqn} BY NAME
        SELECT * REPLACE ('crafted' AS matrix_source, struct_update(macro, dgs10 := 4.0) AS macro,
                          struct_update(regime, vol_percentile := 1.0) AS regime,
                          struct_update(pivots, is_above_p := TRUE) AS pivots)
        FROM {MATRIX.fqn} WHERE matrix_source = 'yahoo_historical'
        """
    )
    client = bq_emulator.client(project=PROJECT)
    ensure_layout(client, PROJECT, dc.LOCATION)
    path = home / "matrix.parquet"
    con.execute(f"COPY (SELECT * FROM {MATRIX.fqn}) TO '{path}' (FORMAT parquet)")
    job = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET,
                                 write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                                 schema=to_bigquery.schema(MATRIX))
    with path.open("rb") as f:
        client.load_table_from_file(f, f"{PROJECT}.{MATRIX.fqn}", job_config=job).result()
    yield con, client
    client.close()
    con.close()


def _placeholders(results) -> list[tuple]:
    return [(r.columns, r.threshold, r.status, r.measured_value) for r in results if r.rule == "no_placeholders"]


@pytest.mark.parametrize("where", [REAL, CRAFTED], ids=["real", "crafted"])
def test_the_matrix_placeholder_checks_agree_on_duckdb_and_bigquery(both, where):
    con, client = both
    local = health.check_table(con, MATRIX, where=where, today=TODAY)
    remote = bq_health.check_table(client, PROJECT, MATRIX, where=where, today=TODAY, samples=False)
    assert _placeholders(local) == _placeholders(remote)
    failed = {r.columns for r in local if r.rule == "no_placeholders" and r.status == "fail"}
    assert failed == (set() if where == REAL else {"macro.dgs10", "regime.vol_percentile", "pivots.is_above_p"})
