"""`cbi sync migrate-schema TABLE [--apply]`: the schema change a push refuses, planned and applied.

A push applies additive changes by itself (a new NULLABLE column or STRUCT field, a relaxed mode)
and refuses the rest, because each could lose data: a type change, a column the contract no longer
declares, a column made REQUIRED. This command is where the user sees and approves those.

plan   the contract's table compared with the contract on both sides (nothing is changed):
         duckdb    the local table's DuckDB types and nullability against a table created from the
                   contract (what `cbi audit` compares); `cbi init` has already added new columns.
         bigquery  per push target (the table, and its `_private` twin) sync.bigquery.schema.evolve.
       Each change says how it is applied and what it costs, measured on the rows (one aggregate
       query per table and engine): a type change is a CAST, and the values that do not cast
       (TRY_CAST / SAFE_CAST is NULL where the value is not) are counted; a column the contract no
       longer has is dropped, with its non-NULL values counted as the loss; a column made REQUIRED
       counts its NULLs. Blockers (the plan cannot be applied until the data or the contract
       changes): values that do not cast, NULLs in a column made REQUIRED, a new REQUIRED column on
       a BigQuery table with rows, a change to or from REPEATED.
apply  only a plan without blockers, under the sync lock (no push or pull runs meanwhile):
         1. the local table, in ONE DuckDB transaction (ALTER COLUMN ... SET DATA TYPE ... USING,
            DROP COLUMN, SET/DROP NOT NULL; any failure rolls all of it back);
         2. each BigQuery target rebuilt through push.Pusher.rebuild: a holding table
            `<table>__cbi_rebuild` with the contract's schema and partitioning, filled by a SELECT
            that casts, rebuilds STRUCTs field by field and leaves dropped columns out; its count
            and fingerprint must equal the same SELECT over the original before the original is
            dropped; recreated, refilled, verified again; journaled as `migrate_schema`. A kill at
            any point is finished by rerunning this command or by the next push.
       Then parity: sync.pull.diff of the table against the warehouse, reported (a difference is
       what pending batches push next, not a failure of the migration).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import duckdb
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

import data_contracts as dc
from cbi_local.config import Settings
from cbi_local.warehouse import transaction
from data_contracts import to_duckdb
from data_contracts.model import Contract
from data_contracts.to_bigquery import normalise_type

from . import pull
from .bigquery import schema as schema_mod
from .journal import sync_lock
from .push import Pusher, bq_table_for, targets
from .retry import call_deadline, client_retry

Engine = Literal["duckdb", "bigquery"]


class MigrateError(RuntimeError):
    """The table cannot be migrated by this command (no such contract, not a push table)."""


@dataclass
class Change:
    engine: Engine
    table: str  # the local table or the BigQuery target
    path: str  # column, or column.field
    change: str  # what differs, e.g. "regime_weight: STRING NULLABLE -> INT64 REQUIRED"
    how: str  # how --apply does it
    loss: int = 0  # values that --apply loses (a dropped column's non-NULL values)
    blocker: str | None = None  # why it cannot be applied as the data stands


@dataclass
class MigrationReport:
    table: str
    applied: bool = False
    changes: list[Change] = field(default_factory=list)
    missing_in_bigquery: list[str] = field(default_factory=list)  # targets the next push creates
    parity: list[dict[str, Any]] = field(default_factory=list)
    run_id: str | None = None

    @property
    def blockers(self) -> list[Change]:
        return [c for c in self.changes if c.blocker]

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "applied": self.applied,
            "ok": not self.blockers,
            "changes": [asdict(c) for c in self.changes],
            "missing_in_bigquery": self.missing_in_bigquery,
            "parity": self.parity,
            "run_id": self.run_id,
        }


def contract_for(fqn: str) -> Contract:
    try:
        contract = dc.get(fqn)
    except KeyError:
        raise MigrateError(f"{fqn}: no contract declares this table (see `cbi tables`)") from None
    if contract.sync != "push":
        raise MigrateError(f"{fqn}: BigQuery's copy is written by its cloud collectors (sync={contract.sync!r}); "
                           "only tables the push writes are migrated here")
    return contract


# --- DuckDB ---------------------------------------------------------------------------------

def _types(con: duckdb.DuckDBPyConnection, ref: str) -> dict[str, tuple[duckdb.typing.DuckDBPyType, bool]]:
    """Column -> (DuckDB type, nullable) of a table, in column order."""
    rel = con.sql(f"SELECT * FROM {ref} LIMIT 0")
    schema, name = ref.split(".")
    nullable = dict(con.execute(
        "SELECT column_name, is_nullable = 'YES' FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [schema.strip('"'), name.strip('"')]).fetchall())
    return {c: (t, nullable[c]) for c, t in zip(rel.columns, rel.types)}


def _expected_duckdb(contract: Contract) -> dict[str, tuple[duckdb.typing.DuckDBPyType, bool]]:
    con = duckdb.connect()
    try:
        con.execute(f"CREATE SCHEMA {to_duckdb.quote(contract.dataset)}")
        con.execute(to_duckdb.create_table(contract))
        return _types(con, to_duckdb.table_ref(contract))
    finally:
        con.close()


def _is_struct(t: duckdb.typing.DuckDBPyType) -> bool:
    return t.id == "struct"


def _duckdb_expr(ref: str, want: duckdb.typing.DuckDBPyType, have: duckdb.typing.DuckDBPyType | None) -> str:
    """`ref` (of type `have`) as a value of type `want`: STRUCTs rebuilt field by field (a field the
    contract dropped left out, a new one NULL), scalars CAST (a value that does not cast fails)."""
    if have is None:
        return f"CAST(NULL AS {want})"
    if str(have) == str(want):
        return ref
    if _is_struct(want) and _is_struct(have):
        had = dict(have.children)
        fields = ", ".join(f"{to_duckdb.quote(n)} := {_duckdb_expr(f'{ref}.{to_duckdb.quote(n)}', t, had.get(n))}"
                           for n, t in want.children)
        return f"CASE WHEN {ref} IS NULL THEN NULL ELSE struct_pack({fields}) END"
    return f"CAST({ref} AS {want})"


def _plan_duckdb(con: duckdb.DuckDBPyConnection, contract: Contract) -> tuple[list[Change], list[str]]:
    """The local changes and the ALTER statements that apply them."""
    ref = to_duckdb.table_ref(contract)
    have, want = _types(con, ref), _expected_duckdb(contract)
    changes: list[Change] = []
    statements: list[str] = []
    probes: list[str] = []  # aggregate expressions, one per measured change, in `changes` order
    measured: list[tuple[int, str]] = []  # (index in changes, what the count means)
    for name, (wtype, wnull) in want.items():
        if name not in have:
            continue  # `cbi init` adds new columns; this command never runs before it
        htype, hnull = have[name]
        col = to_duckdb.quote(name)
        if str(htype) != str(wtype):
            expr = _duckdb_expr(col, wtype, htype)
            changes.append(Change("duckdb", contract.fqn, name, f"{name}: {htype} -> {wtype}", f"ALTER COLUMN ... SET DATA TYPE {wtype} USING {expr}"))
            statements.append(f"ALTER TABLE {ref} ALTER COLUMN {col} SET DATA TYPE {wtype} USING {expr}")
            if not (_is_struct(wtype) or _is_struct(htype)):
                probes.append(f"COUNT(*) FILTER (WHERE {col} IS NOT NULL AND TRY_CAST({col} AS {wtype}) IS NULL)")
                measured.append((len(changes) - 1, "values do not cast"))
        if hnull and not wnull:
            changes.append(Change("duckdb", contract.fqn, name, f"{name}: NULLABLE -> REQUIRED", "ALTER COLUMN ... SET NOT NULL"))
            statements.append(f"ALTER TABLE {ref} ALTER COLUMN {col} SET NOT NULL")
            probes.append(f"COUNT(*) FILTER (WHERE {col} IS NULL)")
            measured.append((len(changes) - 1, "rows are NULL"))
        elif wnull and not hnull:
            changes.append(Change("duckdb", contract.fqn, name, f"{name}: REQUIRED -> NULLABLE", "ALTER COLUMN ... DROP NOT NULL"))
            statements.append(f"ALTER TABLE {ref} ALTER COLUMN {col} DROP NOT NULL")
    for name in have.keys() - want.keys():
        col = to_duckdb.quote(name)
        changes.append(Change("duckdb", contract.fqn, name, f"{name} ({have[name][0]}) is in the table but not in the contract", "DROP COLUMN"))
        statements.append(f"ALTER TABLE {ref} DROP COLUMN {col}")
        probes.append(f"COUNT({col})")
        measured.append((len(changes) - 1, "loss"))
    if probes:
        counts = con.execute(f"SELECT {', '.join(probes)} FROM {ref}").fetchone()
        for (i, meaning), n in zip(measured, counts):
            if meaning == "loss":
                changes[i].loss = int(n)
            elif n:
                changes[i].blocker = f"{n:,} {meaning}"
    return changes, statements


# --- BigQuery -------------------------------------------------------------------------------

def _bq_type(f: bigquery.SchemaField) -> str:
    kind = normalise_type(f.field_type)
    if kind == "STRUCT":
        return "STRUCT<" + ", ".join(f"`{s.name}` {_bq_type(s)}" for s in f.fields) + ">"
    return kind


def _bq_expr(ref: str, want: bigquery.SchemaField, have: bigquery.SchemaField | None) -> str:
    """BigQuery's counterpart of _duckdb_expr (REPEATED fields are blockers, never rebuilt)."""
    if have is None:
        return f"CAST(NULL AS {_bq_type(want)})"
    if _bq_type(have) == _bq_type(want):
        return ref
    if normalise_type(want.field_type) == "STRUCT" and normalise_type(have.field_type) == "STRUCT":
        had = {f.name.lower(): f for f in have.fields}
        fields = ", ".join(f"{_bq_expr(f'{ref}.`{w.name}`', w, had.get(w.name.lower()))} AS `{w.name}`" for w in want.fields)
        return f"IF({ref} IS NULL, NULL, STRUCT({fields}))"
    return f"CAST({ref} AS {_bq_type(want)})"


def _field(schema: list[bigquery.SchemaField] | tuple[bigquery.SchemaField, ...], path: str) -> bigquery.SchemaField | None:
    fields, found = schema, None
    for part in path.split("."):
        found = next((f for f in fields if f.name.lower() == part.lower()), None)
        if found is None:
            return None
        fields = found.fields
    return found


def _bq_ref(path: str) -> str:
    return ".".join(f"`{p}`" for p in path.split("."))


def _plan_bigquery(pusher: Pusher, target, table: bigquery.Table) -> tuple[list[Change], list[str]]:
    """The changes to one BigQuery target and the SELECT list that rebuilds it."""
    wanted = bq_table_for(target, pusher.project).schema
    _merged, found = schema_mod.evolve(table.schema, wanted)
    changes: list[Change] = []
    probes: list[str] = []
    measured: list[tuple[int, str]] = []
    rows = int(table.num_rows or 0)
    for c in found:
        ref = _bq_ref(c.path)
        how = {"add_column": "added, NULL on existing rows", "add_field": "added, NULL on existing rows",
               "relax_mode": "made NULLABLE", "removed": "left out of the rebuilt table",
               "add_required": "added", "tighten_mode": "made REQUIRED",
               "type_change": f"CAST to {c.after}", "mode_change": "not supported"}[c.kind]
        ch = Change("bigquery", target.fqn, c.path, c.message(), how)
        changes.append(ch)
        if c.kind == "removed":
            probes.append(f"COUNTIF({ref} IS NOT NULL)")
            measured.append((len(changes) - 1, "loss"))
        elif c.kind == "tighten_mode":
            probes.append(f"COUNTIF({ref} IS NULL)")
            measured.append((len(changes) - 1, "rows are NULL"))
        elif c.kind == "type_change" and "STRUCT" not in (c.before or "") + (c.after or ""):
            want = _field(wanted, c.path)
            probes.append(f"COUNTIF({ref} IS NOT NULL AND SAFE_CAST({ref} AS {_bq_type(want)}) IS NULL)")
            measured.append((len(changes) - 1, "values do not cast"))
        elif c.kind == "add_required" and rows:
            ch.blocker = f"the contract makes it REQUIRED and the table's {rows:,} rows have no value: declare it NULLABLE"
        elif c.kind == "mode_change":
            ch.blocker = "a change to or from REPEATED cannot be rebuilt by a cast: change the contract back"
    if probes:
        _job, (counts,) = pusher._query(f"SELECT {', '.join(probes)} FROM `{pusher.project}.{target.fqn}`",
                                        pusher._labels("migrate_plan", "-", target))
        for (i, meaning), n in zip(measured, counts):
            if meaning == "loss":
                changes[i].loss = int(n or 0)
            elif n:
                changes[i].blocker = f"{int(n):,} {meaning}"
    have = {f.name.lower(): f for f in table.schema}
    select = [f"{_bq_expr(f'`{w.name}`', w, have.get(w.name.lower()))} AS `{w.name}`" for w in wanted]
    return changes, select


# --- the command ----------------------------------------------------------------------------

def migrate(con: duckdb.DuckDBPyConnection, client: bigquery.Client, settings: Settings, fqn: str,
            apply: bool = False) -> MigrationReport:
    contract = contract_for(fqn)
    pusher = Pusher(con, client, settings, run_id=None)
    report = MigrationReport(contract.fqn, run_id=pusher.run_id)
    with sync_lock(settings.home):
        for target in targets(contract):
            pusher.finish_rebuild(target)  # a migration (or repartition) a kill interrupted comes first
        local, statements = _plan_duckdb(con, contract)
        report.changes += local
        remote: list[tuple[Any, bigquery.Table, list[str]]] = []
        for target in targets(contract):
            try:
                table = client.get_table(f"{settings.bq_project}.{target.fqn}", retry=client_retry(), timeout=call_deadline())
            except NotFound:
                report.missing_in_bigquery.append(target.fqn)
                continue
            changes, select = _plan_bigquery(pusher, target, table)
            report.changes += changes
            if changes:
                remote.append((target, table, select))
        if not apply or report.blockers or not report.changes:
            return report
        if statements:
            with transaction(con):
                for sql in statements:
                    con.execute(sql)
                pusher.journal.record("migrate_schema_local", table=contract.fqn,
                                      detail={"statements": statements})
        for target, table, select in remote:
            detail = {"changes": [c.change for c in report.changes if c.engine == "bigquery" and c.table == target.fqn]}
            pusher.rebuild(target, table, "migrate_schema", detail, schema=bq_table_for(target, settings.bq_project).schema,
                           select=select)
        report.applied = True
        report.parity = [d.as_dict() for d in pull.diff(con, client, settings, [contract.fqn], run_id=pusher.run_id)]
    return report
