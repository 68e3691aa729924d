"""`cbi sync archive`: the legacy project's clutter, inventoried and archived safely.

The legacy tables are the user's real exports (`legacy_bq/*.parquet`) loaded into the emulator
under their real names. The clutter is made the way the user made it: a backup is a copy job of
a real table (`*_backup_*`), and an archive dataset holds a table created empty with a real
table's columns. The contract tables exist beside them and are never touched.
"""

from __future__ import annotations

import json

from google.cloud import bigquery

from sync.bigquery.layout import ensure_layout

from .conftest import count, run_cli

LEGACY = ("forecasting_data_warehouse.soybean_oil_prices", "forecasting_data_warehouse.cftc_cot", "market_data.hourly_prices")
BACKUP = "forecasting_data_warehouse.soybean_oil_prices_backup_20251101"
EMPTY = "z_archive_2024.crude_oil_prices"


def _legacy_project(client, s, sample_data) -> None:
    ensure_layout(client, s.bq_project, s.bq_location)  # the contract tables, empty
    for name in ("forecasting_data_warehouse", "z_archive_2024"):
        ds = bigquery.Dataset(f"{s.bq_project}.{name}")
        ds.location = s.bq_location
        client.create_dataset(ds, exists_ok=True)
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET)
    for fqn in LEGACY:
        with open(sample_data / "legacy_bq" / f"{fqn}.parquet", "rb") as fh:
            client.load_table_from_file(fh, f"{s.bq_project}.{fqn}", job_config=config).result()
    client.copy_table(f"{s.bq_project}.{LEGACY[0]}", f"{s.bq_project}.{BACKUP}").result()
    with open(sample_data / "legacy_bq" / "forecasting_data_warehouse.crude_oil_prices.parquet", "rb") as fh:
        client.load_table_from_file(fh, f"{s.bq_project}.forecasting_data_warehouse.crude_oil_prices", job_config=config).result()
    client.query(
        f"CREATE TABLE `{s.bq_project}.{EMPTY}` AS SELECT * FROM `{s.bq_project}.forecasting_data_warehouse.crude_oil_prices` WHERE FALSE"
    ).result()


def test_archive_plans_then_moves_verified_copies_and_drops_only_empty_tables(sample_data, tmp_path, make_settings, client):
    s = make_settings(tmp_path / "home")
    _legacy_project(client, s, sample_data)
    rows = {fqn: count(client, fqn) for fqn in (*LEGACY, BACKUP)}
    assert all(rows.values()) and count(client, EMPTY) == 0

    planned = run_cli(s, "sync", "archive", "--json")
    assert planned.returncode == 0, planned.stderr[-2000:]
    plan = json.loads(planned.stdout)
    verdicts = {t["table"]: (t["verdict"], t["of"]) for t in plan["tables"]}
    assert verdicts[LEGACY[0]] == ("legacy_source", "market_data.yahoo_historical")
    assert verdicts["market_data.hourly_prices"] == ("legacy_source", "market_data.yahoo_quote_snapshots")
    assert verdicts[BACKUP] == ("duplicate", LEGACY[0])
    assert verdicts[EMPTY] == ("empty", None)
    assert not [t for t in verdicts if t.split(".")[0] in ("regimes", "ops", "api")]  # contract tables are not clutter
    actions = {a["table"]: a for a in plan["actions"]}
    assert actions[BACKUP]["action"] == "move" and actions[BACKUP]["to"] == "z_cbi_archive.forecasting_data_warehouse__soybean_oil_prices_backup_20251101"
    assert actions[EMPTY]["action"] == "drop"
    assert {a["action"] for t, a in actions.items() if t in LEGACY} == {"keep"}
    assert count(client, BACKUP) == rows[BACKUP]  # the plan changed nothing

    text = run_cli(s, "sync", "archive")
    assert text.returncode == 0 and f"would move {BACKUP}" in text.stdout and f"would drop {EMPTY}" in text.stdout

    applied = run_cli(s, "sync", "archive", "--apply", "--json")
    assert applied.returncode == 0, applied.stderr[-2000:]
    done = {a["table"]: a for a in json.loads(applied.stdout)["actions"]}
    assert done[BACKUP]["done"] and done[BACKUP]["verified_rows"] == rows[BACKUP]
    assert count(client, "z_cbi_archive.forecasting_data_warehouse__soybean_oil_prices_backup_20251101") == rows[BACKUP]
    assert BACKUP.split(".")[1] not in [t.table_id for t in client.list_tables(f"{s.bq_project}.forecasting_data_warehouse")]
    assert "z_archive_2024" in json.loads(applied.stdout)["dropped_datasets"]
    assert "z_archive_2024" not in [d.dataset_id for d in client.list_datasets()]
    for fqn in LEGACY:
        assert count(client, fqn) == rows[fqn]  # the migration's sources are kept
    assert client.get_table(f"{s.bq_project}.regimes.regime_calendar")  # contract tables untouched

    again = json.loads(run_cli(s, "sync", "archive", "--json").stdout)
    assert {a["action"] for a in again["actions"]} <= {"keep"}
