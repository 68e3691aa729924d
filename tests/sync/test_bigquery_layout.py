"""Every contract's table created in the BigQuery emulator reads back equal to the contract."""

from __future__ import annotations

import json

import pytest
from google.cloud import bigquery
from typer.testing import CliRunner

import data_contracts as dc
from cbi_local.cli import app
from data_contracts import to_bigquery
from data_contracts.model import Column
from sync.bigquery.layout import audit_bigquery, ensure_layout

PROJECT = "cbi-v14"


def _as_contract_shape(field: bigquery.SchemaField) -> tuple:
    return (
        field.name,
        to_bigquery.normalise_type(field.field_type),
        field.mode or "NULLABLE",
        tuple(_as_contract_shape(f) for f in field.fields),
    )


def _column_shape(col: Column) -> tuple:
    return (col.name, col.type, col.mode, tuple(_column_shape(f) for f in col.fields))


@pytest.fixture(scope="module")
def laid_out(bq_emulator):
    client = bq_emulator.client()
    first = ensure_layout(client, PROJECT, dc.LOCATION)
    again = ensure_layout(client, PROJECT, dc.LOCATION)
    yield client, first, again
    client.close()


def test_layout_creates_every_dataset_and_table_once(laid_out):
    client, first, again = laid_out
    assert set(first.created_datasets) == set(dc.DATASETS)
    assert set(first.created_tables) == {c.fqn for c in dc.CONTRACTS}
    assert again.created_datasets == [] and again.created_tables == []
    for name in dc.DATASETS:
        assert client.get_dataset(f"{PROJECT}.{name}").location == "us-central1"


@pytest.mark.parametrize("contract", dc.CONTRACTS, ids=lambda c: c.fqn)
def test_schema_read_back_equals_the_contract(laid_out, contract):
    client = laid_out[0]
    table = client.get_table(f"{PROJECT}.{contract.fqn}")
    assert [_as_contract_shape(f) for f in table.schema] == [_column_shape(c) for c in contract.columns]
    if contract.partition:
        assert table.time_partitioning.type_ == contract.partition.granularity
        assert table.time_partitioning.field == contract.partition.column
    else:
        assert table.time_partitioning is None
    assert list(table.clustering_fields or []) == list(contract.clustering)


def test_nested_struct_fields_survive_the_round_trip(laid_out):
    table = laid_out[0].get_table(f"{PROJECT}.features.daily_ml_matrix")
    by_name = {f.name: f for f in table.schema}
    assert [f.name for f in by_name["pivots"].fields] == ["p", "r1", "r2", "s1", "s2", "distance_to_p",
                                                         "distance_to_nearest", "weekly_p_distance", "is_above_p"]
    runs = {f.name: f for f in laid_out[0].get_table(f"{PROJECT}.training.model_runs").schema}
    assert runs["fold_metrics"].mode == "REPEATED" and runs["fold_metrics"].fields[0].name == "fold"


def test_bigquery_audit_is_clean_then_names_drift(laid_out):
    client = laid_out[0]
    assert audit_bigquery(client, PROJECT, dc.LOCATION).ok
    # A hand-made copy of regime_calendar with other columns, as the failed migration had.
    client.create_table(
        bigquery.Table(
            f"{PROJECT}.features.regime_calendar",
            schema=[bigquery.SchemaField("date", "DATE"), bigquery.SchemaField("regime", "STRING")],
        )
    )
    try:
        kinds = {(d.kind, d.table) for d in audit_bigquery(client, PROJECT, dc.LOCATION).drifts}
        assert ("unknown_table", "features.regime_calendar") in kinds
        assert ("same_name_conflict", "regime_calendar") in kinds
    finally:
        client.delete_table(f"{PROJECT}.features.regime_calendar")


def test_cli_audit_bigquery_against_the_emulator(laid_out, bq_emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("CBI_BQ_ENDPOINT", bq_emulator.endpoint)
    monkeypatch.setenv("CBI_BQ_PROJECT", PROJECT)
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--home", str(tmp_path)]).exit_code == 0
    result = runner.invoke(app, ["audit", "--home", str(tmp_path), "--bigquery", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [r["engine"] for r in payload["reports"]] == ["duckdb", "bigquery"]
    assert payload["reports"][1]["tables_checked"] == len(dc.CONTRACTS)


def test_bigquery_audit_flags_a_dataset_in_the_wrong_location(laid_out):
    client = laid_out[0]
    client.delete_dataset(f"{PROJECT}.neural", delete_contents=True)
    ds = bigquery.Dataset(f"{PROJECT}.neural")
    ds.location = "EU"
    client.create_dataset(ds)
    try:
        drifts = audit_bigquery(client, PROJECT, dc.LOCATION).drifts
        assert [(d.kind, d.table, d.expected, d.actual) for d in drifts] == [("wrong_location", "neural", "us-central1", "EU")]
    finally:
        client.delete_dataset(f"{PROJECT}.neural", delete_contents=True)
        ensure_layout(client, PROJECT, dc.LOCATION)
