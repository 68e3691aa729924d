"""Schema evolution on push: a contract that gains a column reaches BigQuery before the MERGE.

The README's recipe (add a column to the contract, `cbi init`, push) is replayed with the real
registry sample: the BigQuery table is created from the contract as it was, the contract gains
a NULLABLE column in-test (the contract object is replaced for the test; everything after that
goes through the real client and the emulator), `warehouse.init` adds it locally, and the push
adds it to BigQuery with update_table before loading. A change that could lose data (a type
change) is refused, naming the change, and nothing is pushed to that table.
"""

from __future__ import annotations

import dataclasses

import pytest
from google.cloud import bigquery

import data_contracts as dc
from cbi_local import warehouse
from data_contracts import to_bigquery
from data_contracts.model import Column
from sync import push as push_mod
from sync.bigquery import schema as schema_mod
from sync.bigquery.client import make_client
from sync.pull import diff

from .conftest import copy_home, count, local_count

WEIGHTS = "regimes.regime_weights"
REASON = Column("reason", "STRING", "Why the regime has its weight (added in a later contract version).")


def _swap_contract(monkeypatch, new) -> None:
    """Replace one contract everywhere the code looks it up (dc.get and dc.CONTRACTS)."""
    by_fqn = dict(dc._BY_FQN)
    by_fqn[new.fqn] = new
    monkeypatch.setattr(dc, "_BY_FQN", by_fqn)
    monkeypatch.setattr(dc, "CONTRACTS", tuple(new if c.fqn == new.fqn else c for c in dc.CONTRACTS))


def _create_from(client, s, contract) -> None:
    ds = bigquery.Dataset(f"{s.bq_project}.{contract.dataset}")
    ds.location = s.bq_location
    client.create_dataset(ds, exists_ok=True)
    client.create_table(to_bigquery.table(contract, s.bq_project))


def _push(s):
    with warehouse.open_warehouse(s.warehouse_path) as con:
        return push_mod.push(con, make_client(s), s)


def _status(s) -> set[str]:
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        return {r[0] for r in con.execute("SELECT status FROM ops.batches").fetchall()}


def test_schema_evolution_adds_a_nullable_column_before_the_merge(registry_template, tmp_path, make_settings, client, monkeypatch):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    old = dc.get(WEIGHTS)
    _create_from(client, s, old)  # the table as an earlier contract made it
    assert "reason" not in [f.name for f in client.get_table(f"{s.bq_project}.{WEIGHTS}").schema]

    new = dataclasses.replace(old, columns=(*old.columns, REASON))
    _swap_contract(monkeypatch, new)
    init = warehouse.init(s.warehouse_path)  # `cbi init`: the column is added locally
    assert f"{WEIGHTS}.reason" in init.added_columns
    with warehouse.open_warehouse(s.warehouse_path) as con:  # the user fills it (from the registry's own text)
        con.execute("UPDATE regimes.regime_weights SET reason = 'weight ' || regime_weight || ': ' || coalesce(description, regime_name)")

    report = _push(s)
    assert report.ok, report.error
    assert f"{WEIGHTS}: add reason STRING NULLABLE" in report.schema_changes
    table = client.get_table(f"{s.bq_project}.{WEIGHTS}")
    assert [f.name for f in table.schema] == new.column_names  # appended after the existing columns
    assert next(f for f in table.schema if f.name == "reason").mode == "NULLABLE"
    assert count(client, WEIGHTS) == local_count(s.home, WEIGHTS) > 0
    remote = dict(client.query(f"SELECT regime_name, reason FROM `{s.bq_project}.{WEIGHTS}`").result())
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        local = dict(con.execute("SELECT regime_name, reason FROM regimes.regime_weights").fetchall())
    assert remote == local and all(local.values())
    with warehouse.open_warehouse(s.warehouse_path) as con:
        (d,) = diff(con, make_client(s), s, [WEIGHTS])
    assert d.ok, d.as_dict()
    assert _status(s) == {"pushed"}
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        journaled = con.execute("SELECT table_name, detail FROM ops.sync_log WHERE step = 'evolve_schema'").fetchall()
    assert [t for t, _ in journaled] == [WEIGHTS] and "add reason" in journaled[0][1]


def test_schema_evolution_refuses_a_type_change_and_pushes_nothing_to_that_table(registry_template, tmp_path, make_settings, client, monkeypatch):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    old = dc.get(WEIGHTS)
    _create_from(client, s, old)
    retyped = tuple(dataclasses.replace(c, type="FLOAT64") if c.name == "regime_weight" else c for c in old.columns)
    _swap_contract(monkeypatch, dataclasses.replace(old, columns=retyped))

    report = _push(s)
    assert not report.ok
    (batch,) = report.batches
    assert "SchemaRefused" in batch.error and "regime_weight: INT64 REQUIRED -> FLOAT64 REQUIRED" in batch.error
    assert batch.rerun_helps is False  # the CLI does not tell the user to rerun
    table = client.get_table(f"{s.bq_project}.{WEIGHTS}")
    assert next(f for f in table.schema if f.name == "regime_weight").field_type in ("INTEGER", "INT64")
    assert count(client, WEIGHTS) == 0
    assert _status(s) == {"validated"}  # still pending


def test_evolve_appends_struct_fields_and_classifies_every_change():
    F = bigquery.SchemaField
    existing = [
        F("k", "STRING", mode="REQUIRED"),
        F("m", "RECORD", fields=[F("a", "INTEGER")]),
        F("gone", "STRING"),
        F("r", "STRING", mode="REQUIRED"),
    ]
    wanted = [
        F("k", "STRING", mode="REQUIRED"),
        F("m", "STRUCT", fields=[F("a", "INT64"), F("b", "STRING")]),
        F("r", "STRING"),
        F("new", "DATE"),
        F("must", "STRING", mode="REQUIRED"),
    ]
    merged, changes = schema_mod.evolve(existing, wanted)
    by_kind = {c.kind: c for c in changes}
    assert set(by_kind) == {"add_field", "removed", "relax_mode", "add_column", "add_required"}
    assert by_kind["add_field"].path == "m.b" and by_kind["add_field"].additive
    assert by_kind["relax_mode"].additive and by_kind["add_column"].additive
    assert not by_kind["removed"].additive and not by_kind["add_required"].additive
    assert [f.name for f in merged] == ["k", "m", "gone", "r", "new"]
    assert [f.name for f in merged[1].fields] == ["a", "b"] and merged[3].mode == "NULLABLE"
    # INTEGER/INT64 and RECORD/STRUCT are the same type: no change reported for them.
    assert not [c for c in changes if c.kind == "type_change"]
    assert schema_mod.not_applied(merged, wanted) == []
    assert [c.path for c in schema_mod.not_applied(existing, wanted)] == ["m.b", "r", "new"]


@pytest.mark.parametrize("old_type,new_type", [("STRING", "INT64"), ("DATE", "TIMESTAMP")])
def test_evolve_refuses_type_changes(old_type, new_type):
    F = bigquery.SchemaField
    _merged, (change,) = schema_mod.evolve([F("x", old_type)], [F("x", new_type)])
    assert change.kind == "type_change" and not change.additive


def test_schema_evolution_adds_a_struct_field_or_refuses_when_bigquery_did_not_apply_it(registry_template, tmp_path, make_settings, client, monkeypatch):
    """A STRUCT gains a field. Real BigQuery applies it with update_table; the emulator accepts the
    update and silently keeps the old STRUCT. Either way the push never MERGEs into a table that
    lacks the field: it reads the table back, and pushes or refuses (naming the field)."""
    from data_contracts.model import struct

    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    base = dc.get(WEIGHTS)
    a = Column("source_note", "STRING", "Where the weight came from.")
    b = Column("reviewed_by", "STRING", "Who reviewed the weight.")
    old = dataclasses.replace(base, columns=(*base.columns, struct("provenance", "Provenance of the weight.", a)))
    new = dataclasses.replace(base, columns=(*base.columns, struct("provenance", "Provenance of the weight.", a, b)))
    _create_from(client, s, old)
    _swap_contract(monkeypatch, new)
    warehouse.init(s.warehouse_path)

    report = _push(s)
    fields = {f.name: f for f in client.get_table(f"{s.bq_project}.{WEIGHTS}").schema}
    sub = [f.name for f in fields["provenance"].fields]
    if sub == ["source_note", "reviewed_by"]:  # BigQuery's behaviour
        assert report.ok, report.error
        assert count(client, WEIGHTS) == local_count(s.home, WEIGHTS)
    else:  # the emulator's: the update was accepted and not applied
        assert sub == ["source_note"]
        assert not report.ok
        (batch,) = report.batches
        assert "does not have add provenance.reviewed_by STRING NULLABLE" in batch.error, batch.error
        assert count(client, WEIGHTS) == 0 and _status(s) == {"validated"}
