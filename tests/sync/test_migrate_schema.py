"""`cbi sync migrate-schema TABLE [--apply]`: the schema changes a push refuses, planned, applied, verified.

The cases are the user's legacy project: two copies of one table with different schemas. Here the
BigQuery copy of `regimes.regime_weights` is the one an earlier load made, holding the real
registry rows, but with `regime_weight` as STRING (a CSV load's type) and an extra column the
contract never declared; the warehouse's copy is the contract's. The push refuses the table and
names the command; the plan measures each change on the rows and changes nothing; --apply
rebuilds BigQuery's table through a verified holding table, and afterwards parity holds and the
push goes through. A kill at each point of the rebuild, then a rerun, ends the same. Crafted
values appear only where the test expects them refused (a weight that does not cast).
"""

from __future__ import annotations

import json
import signal

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

import data_contracts as dc
from cbi_local import audit, warehouse
from data_contracts import to_bigquery
from sync import migrate as migrate_mod
from sync import push as push_mod
from sync.bigquery.client import make_client
from sync.pull import diff

from .conftest import copy_home, count, local_count, run_cli

WEIGHTS = dc.get("regimes.regime_weights")


def _legacy_copy(s, client, tmp_path, note: bool = True) -> int:
    """BigQuery's regime_weights as a legacy load made it: regime_weight STRING, plus `legacy_note`."""
    ds = bigquery.Dataset(f"{client.project}.regimes")
    ds.location = s.bq_location
    client.create_dataset(ds, exists_ok=True)
    table = to_bigquery.table(WEIGHTS, client.project)
    table.schema = [bigquery.SchemaField(f.name, "STRING", mode=f.mode, description=f.description) if f.name == "regime_weight" else f
                    for f in table.schema] + ([bigquery.SchemaField("legacy_note", "STRING")] if note else [])
    client.create_table(table)
    parquet = tmp_path / "legacy_weights.parquet"
    cols = ", ".join("CAST(regime_weight AS VARCHAR) AS regime_weight" if c == "regime_weight" else c for c in WEIGHTS.column_names)
    extra = ", 'loaded by hand, 2025' AS legacy_note" if note else ""
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        con.execute(f"COPY (SELECT {cols}{extra} FROM regimes.regime_weights) TO '{parquet}' (FORMAT parquet)")
    with parquet.open("rb") as f:
        client.load_table_from_file(f, table, job_config=bigquery.LoadJobConfig(source_format="PARQUET")).result()
    return count(client, WEIGHTS.fqn)


def _migrate(s, apply: bool = False) -> migrate_mod.MigrationReport:
    with warehouse.open_warehouse(s.warehouse_path) as con:
        return migrate_mod.migrate(con, make_client(s), s, WEIGHTS.fqn, apply=apply)


def _assert_migrated(s, client) -> None:
    table = client.get_table(f"{client.project}.{WEIGHTS.fqn}")
    assert [f.name for f in table.schema] == WEIGHTS.column_names  # legacy_note gone
    assert next(f for f in table.schema if f.name == "regime_weight").field_type in ("INTEGER", "INT64")
    with pytest.raises(NotFound):
        client.get_table(f"{client.project}.{WEIGHTS.fqn}{push_mod.REBUILD_SUFFIX}")
    assert count(client, WEIGHTS.fqn) == local_count(s.home, WEIGHTS.fqn) > 0
    remote = dict(client.query(f"SELECT regime_name, regime_weight FROM `{client.project}.{WEIGHTS.fqn}`").result())
    with warehouse.open_warehouse(s.warehouse_path) as con:
        local = dict(con.execute("SELECT regime_name, regime_weight FROM regimes.regime_weights").fetchall())
        (d,) = diff(con, make_client(s), s, [WEIGHTS.fqn])
    assert remote == local
    assert d.ok, d.as_dict()


def test_schema_evolution_type_change_is_planned_applied_and_verified(registry_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    rows = _legacy_copy(s, client, tmp_path)

    with warehouse.open_warehouse(s.warehouse_path) as con:
        refused = push_mod.push(con, make_client(s), s)
    assert not refused.ok
    assert f"cbi sync migrate-schema {WEIGHTS.fqn}" in refused.batches[0].error

    plan = _migrate(s)  # the plan: measured, nothing changed
    by_path = {c.path: c for c in plan.changes}
    assert set(by_path) == {"regime_weight", "legacy_note"} and not plan.blockers and not plan.applied
    assert by_path["regime_weight"].change == "regime_weight: STRING REQUIRED -> INT64 REQUIRED"
    assert by_path["regime_weight"].how == "CAST to INT64 REQUIRED"
    assert by_path["legacy_note"].loss == rows  # every value of the dropped column, counted
    assert "legacy_note" in [f.name for f in client.get_table(f"{client.project}.{WEIGHTS.fqn}").schema]

    applied = _migrate(s, apply=True)
    assert applied.applied and not applied.blockers
    assert [d["ok"] for d in applied.parity] == [True]
    _assert_migrated(s, client)
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        (step,) = con.execute("SELECT row_count, detail FROM ops.sync_log WHERE step = 'migrate_schema'").fetchall()
    assert step[0] == rows and "regime_weight: STRING REQUIRED -> INT64 REQUIRED" in step[1]

    with warehouse.open_warehouse(s.warehouse_path) as con:  # the push the migration unblocked
        pushed = push_mod.push(con, make_client(s), s)
        statuses = {r[0] for r in con.execute("SELECT status FROM ops.batches").fetchall()}
    assert pushed.ok, pushed.error
    assert statuses == {"pushed"}
    _assert_migrated(s, client)
    assert _migrate(s).changes == []  # nothing left to migrate


def test_schema_evolution_a_value_that_does_not_cast_blocks_the_migration(registry_template, tmp_path, make_settings, client):
    """Crafted: one legacy weight is 'n/a'. The plan names it as a blocker; --apply changes nothing."""
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    _legacy_copy(s, client, tmp_path, note=False)
    client.query(f"UPDATE `{client.project}.{WEIGHTS.fqn}` SET regime_weight = 'n/a' "
                 "WHERE regime_name = (SELECT MIN(regime_name) FROM `" + f"{client.project}.{WEIGHTS.fqn}`)").result()
    result = run_cli(s, "sync", "migrate-schema", WEIGHTS.fqn, "--apply", "--json")
    assert result.returncode == 1, result.stderr[-2000:]
    report = json.loads(result.stdout)
    (blocked,) = [c for c in report["changes"] if c["blocker"]]
    assert blocked["path"] == "regime_weight" and blocked["blocker"] == "1 values do not cast"
    assert report["applied"] is False
    field = next(f for f in client.get_table(f"{client.project}.{WEIGHTS.fqn}").schema if f.name == "regime_weight")
    assert field.field_type == "STRING"  # untouched


def test_schema_evolution_local_drift_is_migrated_in_one_transaction(registry_template, tmp_path, make_settings, client):
    """The warehouse's table is the one an older contract made (regime_weight VARCHAR, an extra column);
    BigQuery's is absent (the next push creates it). The local ALTERs make `cbi audit` clean."""
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    with warehouse.open_warehouse(s.warehouse_path) as con:
        con.execute("ALTER TABLE regimes.regime_weights ALTER COLUMN regime_weight SET DATA TYPE VARCHAR")
        con.execute("ALTER TABLE regimes.regime_weights ADD COLUMN legacy_note VARCHAR")
        before = sorted(con.execute("SELECT regime_name, CAST(regime_weight AS BIGINT) FROM regimes.regime_weights").fetchall())
        drifts = [d.column for d in audit.audit_duckdb(con).drifts if d.table == WEIGHTS.fqn]
    assert sorted(drifts) == ["legacy_note", "regime_weight"]
    plan = _migrate(s)
    assert plan.missing_in_bigquery == [WEIGHTS.fqn]
    assert {(c.engine, c.path) for c in plan.changes} == {("duckdb", "regime_weight"), ("duckdb", "legacy_note")}
    assert _migrate(s, apply=True).applied
    with warehouse.open_warehouse(s.warehouse_path) as con:
        assert [d for d in audit.audit_duckdb(con).drifts if d.table == WEIGHTS.fqn] == []
        assert sorted(con.execute("SELECT regime_name, regime_weight FROM regimes.regime_weights").fetchall()) == before


@pytest.mark.parametrize("fault,rerun", [
    ("migrate_schema", "migrate-schema"), ("rebuild_dropped", "migrate-schema"),
    ("rebuild_recreated", "migrate-schema"), ("rebuild_dropped", "push"),
])
def test_schema_evolution_a_migration_killed_at_each_step_is_finished_by_a_rerun(fault, rerun, registry_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    _legacy_copy(s, client, tmp_path)
    killed = run_cli(s, "sync", "migrate-schema", WEIGHTS.fqn, "--apply", CBI_SYNC_FAULT=f"after:{fault}")
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    again = run_cli(s, "sync", *(["migrate-schema", WEIGHTS.fqn, "--apply"] if rerun == "migrate-schema" else ["push"]))
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    _assert_migrated(s, client)


def test_migrate_schema_refuses_tables_it_cannot_migrate(registry_template, tmp_path, make_settings):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    for name, words in (("regimes.no_such_table", "no contract declares"), ("raw_intelligence.cftc_cot", "cloud collectors")):
        result = run_cli(s, "sync", "migrate-schema", name)
        assert result.returncode == 2 and words in result.stderr, result.stderr[-2000:]
