"""Privacy: private rows go only to private tables; api views never expose them; RAP DDL is valid SQL."""

from __future__ import annotations

import json


import data_contracts as dc
from cbi_local import warehouse
from data_contracts.to_duckdb import table_ref
from sync import privacy
from sync.bigquery.client import make_client
from sync.push import bq_table_for, push, targets

from .conftest import copy_home, count, local_count, run_cli

CONT = "market_data.futures_continuous_1d"


def test_private_rows_are_routed_to_the_private_twin_only(sample_template):
    """On the real bars: every row goes to exactly one target; the private twin's predicate is MES."""
    with warehouse.open_warehouse(sample_template, read_only=True) as con:
        for c in dc.CONTRACTS:
            if not c.private_rows or c.sync != "push":
                continue
            public, private = targets(c)
            assert private.private and private.table == c.table + "_private" and "MES" in private.predicate
            total = con.execute(f"SELECT count(*) FROM {table_ref(c)}").fetchall()[0][0]
            pub = con.execute(f"SELECT count(*) FROM {table_ref(c)} AS t WHERE {public.predicate}").fetchall()[0][0]
            prv = con.execute(f"SELECT count(*) FROM {table_ref(c)} AS t WHERE {private.predicate}").fetchall()[0][0]
            assert pub + prv == total
            roots = {r[0] for r in con.execute(f"SELECT DISTINCT root FROM {table_ref(c)} AS t WHERE {public.predicate}").fetchall()}
            assert "MES" not in roots


def test_api_views_never_expose_private_rows(sample_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(sample_template, tmp_path / "home"))
    with warehouse.open_warehouse(s.warehouse_path) as con:
        assert push(con, make_client(s), s).ok
    created = json.loads(run_cli(s, "sync", "views", "--json").stdout)["views"]
    assert set(created) == {"api.vw_zl_dashboard", "api.vw_futures_continuous_public"}
    zl = local_count(s.home, f"{CONT} WHERE root = 'ZL'")
    assert count(client, "api.vw_zl_dashboard") == zl
    with_regime = list(client.query(f"SELECT COUNT(regime_name) FROM `{s.bq_project}.api.vw_zl_dashboard`").result())[0][0]
    assert with_regime == local_count(s.home, f"{CONT} WHERE root = 'ZL' AND date <= DATE '2025-12-31' AND date >= DATE '2000-01-01'")
    public_before = count(client, "api.vw_futures_continuous_public")
    assert public_before == local_count(s.home, CONT)
    # A forbidden record: an MES bar written into the public table behind the push's back must not surface.
    client.query(
        f"INSERT INTO `{s.bq_project}.{CONT}` (date, root, symbol, close, source) VALUES ('2024-01-02', 'MES', 'MESH4', 4800.0, 'databento')"
    ).result()
    assert count(client, "api.vw_futures_continuous_public") == public_before
    roots = {r[0] for r in client.query(f"SELECT DISTINCT root FROM `{s.bq_project}.api.vw_futures_continuous_public`").result()}
    assert "MES" not in roots
    lineage = {f.name for f in client.get_table(f"{s.bq_project}.api.vw_zl_dashboard").schema}
    assert "source_file" not in lineage and "batch_id" not in lineage


def test_row_access_policy_ddl_runs_in_bigquery(tmp_path, make_settings, client):
    s = make_settings(tmp_path / "home")
    owners, readers = ["user:owner@example.com"], ["group:analysts@example.com"]
    ddl = privacy.row_access_policies(s.bq_project, owners, readers)
    bars = [c for c in dc.CONTRACTS if c.private_rows and c.sync == "push"]
    assert len(ddl) == 2 * len(bars)
    for c in bars:
        public, private = targets(c)
        owner_sql = next(q for q in ddl if f".{private.table}`" in q)
        reader_sql = next(q for q in ddl if f".{public.table}`" in q)
        assert '"user:owner@example.com"' in owner_sql and "FILTER USING (TRUE)" in owner_sql
        assert '"group:analysts@example.com"' in reader_sql and f"NOT COALESCE(({c.private_rows}), FALSE)" in reader_sql
    # Executed against BigQuery for one contract's public table and private twin.
    c = dc.get(CONT)
    from google.cloud import bigquery

    ds = bigquery.Dataset(f"{s.bq_project}.{c.dataset}")
    client.create_dataset(ds)
    for t in targets(c):
        client.create_table(bq_table_for(t, s.bq_project))
    mine = [q for q in ddl if f"{c.dataset}.{c.table}`" in q or f"{c.dataset}.{c.table}_private`" in q]
    assert len(privacy.apply_policies(client, mine)) == 2
    path = f"/projects/{s.bq_project}/datasets/{c.dataset}/tables/{c.table}_private/rowAccessPolicies"
    listed = client._connection.api_request(method="GET", path=path)
    assert [p["rowAccessPolicyReference"]["policyId"] for p in listed.get("rowAccessPolicies", [])] == ["cbi_owner_only"]


def test_views_print_shows_the_sql(tmp_path, make_settings):
    s = make_settings(tmp_path / "home")
    out = run_cli(s, "sync", "views", "--print", CBI_PRIVATE_OWNERS="user:owner@example.com")
    assert out.returncode == 0, out.stderr
    assert "CREATE OR REPLACE VIEW" in out.stdout and "NOT COALESCE((root = 'MES'), FALSE)" in out.stdout
    assert "CREATE OR REPLACE ROW ACCESS POLICY cbi_owner_only" in out.stdout

