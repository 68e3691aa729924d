"""repartition: a BigQuery table whose partitioning is not its contract's is rebuilt by the push.

The case is the user's: `regimes.regime_calendar` was DAY-partitioned (one row a day, 9,497 of
BigQuery's 10,000 partitions per table, a ceiling the calendar would hit by 2027) and is MONTH now.
BigQuery cannot change a table's partitioning in place, so an existing daily table in the user's
project must be rebuilt, rows kept, before the next push merges into it. Here the emulator holds the
daily table as the earlier version pushed it, loaded with the real calendar rows of the sample
registry for 2000-2025 (the span the daily table held); the push repartitions it, verified, and
then merges the days after 2025 on top. A kill at each step of the rebuild, then a rerun, ends the same.
"""

from __future__ import annotations

import datetime as dt
import signal

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

import data_contracts as dc
from cbi_local import warehouse
from data_contracts import to_bigquery
from sync import push as push_mod
from sync.bigquery.client import make_client
from sync.pull import diff

from .conftest import CALENDAR_DAYS, copy_home, count, run_cli

CAL = dc.get("regimes.regime_calendar")
OLD_END = dt.date(2025, 12, 31)


def _daily_calendar_as_pushed_before(s, client, tmp_path) -> int:
    """The daily-partitioned table an earlier version created, holding the real rows to 2025-12-31."""
    ds = bigquery.Dataset(f"{client.project}.regimes")
    ds.location = s.bq_location
    client.create_dataset(ds)
    table = to_bigquery.table(CAL, client.project)
    table.time_partitioning = bigquery.TimePartitioning(type_="DAY", field="date")
    client.create_table(table)
    parquet = tmp_path / "old_calendar.parquet"
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        cols = ", ".join(CAL.column_names)
        con.execute(f"COPY (SELECT {cols} FROM regimes.regime_calendar WHERE date <= DATE '{OLD_END}') TO '{parquet}' (FORMAT parquet)")
    with parquet.open("rb") as f:
        client.load_table_from_file(f, table, job_config=bigquery.LoadJobConfig(source_format="PARQUET")).result()
    return count(client, CAL.fqn)


def _assert_monthly_and_equal(s, client) -> None:
    table = client.get_table(f"{client.project}.{CAL.fqn}")
    assert (table.time_partitioning.type_, table.time_partitioning.field) == ("MONTH", "date")
    assert table.clustering_fields == ["regime_name"]
    assert [f.name for f in table.schema] == CAL.column_names
    assert count(client, CAL.fqn) == CALENDAR_DAYS
    with pytest.raises(NotFound):
        client.get_table(f"{client.project}.{CAL.fqn}{push_mod.REBUILD_SUFFIX}")
    with warehouse.open_warehouse(s.warehouse_path) as con:
        (d,) = diff(con, make_client(s), s, [CAL.fqn])
    assert d.ok, d.as_dict()


def test_a_daily_calendar_in_bigquery_is_repartitioned_monthly_by_the_push(registry_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    old_rows = _daily_calendar_as_pushed_before(s, client, tmp_path)
    assert old_rows == (OLD_END - dt.date(2000, 1, 1)).days + 1 == 9497
    with warehouse.open_warehouse(s.warehouse_path) as con:
        report = push_mod.push(con, make_client(s), s)
        assert report.ok, report.error
        step = con.execute(
            "SELECT row_count, detail FROM ops.sync_log WHERE step = 'repartition' AND table_name = ?", [CAL.fqn]
        ).fetchall()
    assert f"{CAL.fqn}: repartitioned to MONTH on date, clustered by regime_name" in report.schema_changes
    assert len(step) == 1 and step[0][0] == old_rows  # journaled with the rows the holding copy verified
    assert '"from": "DAY on date, clustered by regime_name"' in step[0][1]
    _assert_monthly_and_equal(s, client)


@pytest.mark.parametrize("fault", ["repartition", "rebuild_dropped", "rebuild_recreated"])
def test_a_repartition_killed_at_each_step_is_finished_by_the_next_push(fault, registry_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    _daily_calendar_as_pushed_before(s, client, tmp_path)
    killed = run_cli(s, "sync", "push", CBI_SYNC_FAULT=f"after:{fault}")
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    rerun = run_cli(s, "sync", "push")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    _assert_monthly_and_equal(s, client)


def test_a_column_the_contract_no_longer_has_keeps_its_values_through_the_rebuild(registry_template, tmp_path, make_settings, client):
    """Crafted: the old daily table carries a column the contract does not declare. The rebuild copies it
    with its values (never NULLs it); the schema check after it then refuses the table, naming the column."""
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    _daily_calendar_as_pushed_before(s, client, tmp_path)
    table = client.get_table(f"{client.project}.{CAL.fqn}")
    table.schema = [*table.schema, bigquery.SchemaField("legacy_note", "STRING")]
    client.update_table(table, ["schema"])
    client.query(f"UPDATE `{client.project}.{CAL.fqn}` SET legacy_note = 'kept' WHERE TRUE").result()
    with warehouse.open_warehouse(s.warehouse_path) as con:
        report = push_mod.push(con, make_client(s), s)
    assert not report.ok and "legacy_note" in str(report.batches[0].error)
    after = client.get_table(f"{client.project}.{CAL.fqn}")
    assert after.time_partitioning.type_ == "MONTH"  # rebuilt ...
    kept = list(client.query(f"SELECT count(*) FROM `{client.project}.{CAL.fqn}` WHERE legacy_note = 'kept'").result())[0][0]
    assert kept == 9497  # ... with every value of the undeclared column
