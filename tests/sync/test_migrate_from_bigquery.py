"""`cbi migrate-legacy --from-bigquery`: the legacy tables read from BigQuery migrate as their exports do.

The real exports in ../shared/data/legacy_bq are loaded into the emulator first, into a project of
their own named like the user's legacy project (its `forecasting_data_warehouse` and `market_data`
datasets), plus one table the mapping does not name (a real export under a backup's name). Then
one warehouse migrates the export folder and another migrates `--from-bigquery`: the same rows in
every target table (lineage columns aside: they name the file and batch), the same defects by
rule, the same quarantine. A second run appends nothing and loads no file again. The Storage Read API is used when
reachable; REST (`list_rows`) otherwise, with the same result.
"""

from __future__ import annotations

import json
import shutil
import socket
import uuid

import pytest
from google.cloud import bigquery

import data_contracts as dc
from cbi_local import pipeline, warehouse
from cbi_local.ingest.legacy import LEGACY_TABLES
from data_contracts.columns import LINEAGE
from sync.bigquery.storage import STORAGE_ENDPOINT_ENV

from .conftest import run_cli

TARGETS = sorted({t.target for t in LEGACY_TABLES})
UNMAPPED = "forecasting_data_warehouse.soybean_oil_prices_backup_20250101"


@pytest.fixture(scope="module")
def legacy_project(sync_bq, sample_data):
    """The legacy exports loaded into their own project in the module's emulator."""
    name = "cbi-legacy-" + uuid.uuid4().hex[:6]
    client = sync_bq.client(project=name)
    exports = sorted((sample_data / "legacy_bq").glob("*.parquet"))
    extra = sample_data / "legacy_bq" / "forecasting_data_warehouse.soybean_oil_prices.parquet"
    for path, table in [(p, p.name.removesuffix(".parquet")) for p in exports] + [(extra, UNMAPPED)]:
        dataset = table.split(".")[0]
        client.create_dataset(bigquery.Dataset(f"{name}.{dataset}"), exists_ok=True)
        with path.open("rb") as f:
            client.load_table_from_file(f, f"{name}.{table}", job_config=bigquery.LoadJobConfig(source_format="PARQUET")).result()
    yield name
    for ds in client.list_datasets():
        client.delete_dataset(ds.reference, delete_contents=True, not_found_ok=True)
    client.close()


def _fresh(home):
    home.mkdir(parents=True)
    warehouse.init(home / "warehouse.duckdb")
    return home


def _rows(home) -> dict[str, list[tuple]]:
    """Every target table's rows on its non-lineage columns, sorted."""
    lineage = {c.name for c in LINEAGE}
    out = {}
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        for fqn in TARGETS:
            cols = ", ".join(f'"{c}"' for c in dc.get(fqn).column_names if c not in lineage)
            out[fqn] = sorted(con.execute(f"SELECT {cols} FROM {fqn}").fetchall(), key=repr)
        out["quarantine"] = sorted(con.execute(
            "SELECT table_name, rule, count(*) FROM monitoring.quarantine GROUP BY ALL").fetchall())
    return out


def _from_bigquery(s, legacy, **env):
    return run_cli(s, "migrate-legacy", "--from-bigquery", f"{legacy}.forecasting_data_warehouse",
                   "--from-bigquery", f"{legacy}.market_data", "--json", **env)


@pytest.fixture(scope="module")
def from_exports(tmp_path_factory, sample_data):
    home = _fresh(tmp_path_factory.mktemp("legacy-exports") / "home")
    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        report = pipeline.migrate_legacy_dir(con, sample_data / "legacy_bq")
    return home, report, _rows(home)


def test_migrate_from_bigquery_gives_the_rows_and_defects_of_the_exports(legacy_project, from_exports, sync_bq, tmp_path, make_settings):
    s = make_settings(_fresh(tmp_path / "home"))
    first = _from_bigquery(s, legacy_project, **{STORAGE_ENDPOINT_ENV: f"127.0.0.1:{sync_bq.grpc_port}"})
    _home, exports_report, exports_rows = from_exports
    report = json.loads(first.stdout)
    assert report["ok"] == exports_report["ok"], first.stderr[-2000:]
    got = report["from_bigquery"]
    assert {x["read_api"] for x in got["snapshots"]} == {"storage"}
    assert sorted(x["table"].split(".", 1)[1] for x in got["snapshots"]) == sorted(t.name for t in LEGACY_TABLES)
    assert got["unmapped"] == [f"{legacy_project}.{UNMAPPED}"]
    assert report["defects_by_rule"] == exports_report["defects_by_rule"]
    assert report["dedup_conflicts"] == exports_report["dedup_conflicts"]
    rows = _rows(s.home)
    assert rows == exports_rows
    assert sum(len(v) for k, v in rows.items() if k != "quarantine") > 10_000

    again = json.loads(_from_bigquery(s, legacy_project, **{STORAGE_ENDPOINT_ENV: f"127.0.0.1:{sync_bq.grpc_port}"}).stdout)
    # Real BigQuery keeps `modified` and nothing is read again ("reused"); the emulator reports the time
    # of the call, so the rows are read again and found equal to the snapshot ("unchanged").
    assert all(x["read_api"] == "reused" or x["unchanged"] for x in again["from_bigquery"]["snapshots"])
    assert again["batch"]["files"] == {} and len(again["batch"]["unchanged_files"]) == len(LEGACY_TABLES)
    assert _rows(s.home) == exports_rows  # nothing read, nothing appended


def test_migrate_from_bigquery_falls_back_to_rest_for_one_table(legacy_project, sync_bq, tmp_path, make_settings, sample_data):
    s = make_settings(_fresh(tmp_path / "home"))
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    result = run_cli(s, "migrate-legacy", "--from-bigquery", f"{legacy_project}.market_data.hourly_prices", "--json",
                     **{STORAGE_ENDPOINT_ENV: f"127.0.0.1:{port}", "CBI_SYNC_CALL_DEADLINE": "3"})
    report = json.loads(result.stdout)
    (snap,) = report["from_bigquery"]["snapshots"]
    assert snap["read_api"] == "rest" and snap["storage_unavailable"]
    exports = _fresh(tmp_path / "exports")
    only = tmp_path / "only"
    only.mkdir()
    shutil.copy(sample_data / "legacy_bq" / "market_data.hourly_prices.parquet", only)
    with warehouse.open_warehouse(exports / "warehouse.duckdb") as con:
        expected = pipeline.migrate_legacy_dir(con, only)
    assert report["defects_by_rule"] == expected["defects_by_rule"]
    assert _rows(s.home) == _rows(exports)


@pytest.mark.parametrize("source,words", [
    ("just-a-project", "expected PROJECT.DATASET"),
    ("{legacy}.no_such_dataset", "no such dataset"),
    ("{legacy}." + UNMAPPED, "not a legacy table the migration maps"),
])
def test_migrate_from_bigquery_refuses_what_it_cannot_read(source, words, legacy_project, tmp_path, make_settings):
    s = make_settings(_fresh(tmp_path / "home"))
    result = run_cli(s, "migrate-legacy", "--from-bigquery", source.format(legacy=legacy_project))
    assert result.returncode == 2 and words in result.stderr, (result.returncode, result.stderr[-2000:])
