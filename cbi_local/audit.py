"""Compare what exists against the contracts and report drift.

The expected DuckDB shape is not re-spelled here: it is what DuckDB itself reports after
running the contracts' DDL in an in-memory reference database, so the comparison is exact
(DuckDB's own quoting and type names) and cannot drift from `data_contracts.to_duckdb`.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field

import duckdb

import data_contracts as dc
from data_contracts import to_duckdb

SYSTEM_SCHEMAS = {"information_schema", "pg_catalog"}


@dataclass(frozen=True)
class Drift:
    kind: str  # missing_table, unknown_table, missing_column, extra_column, type_mismatch, mode_mismatch,
    #            same_name_conflict, missing_dataset, wrong_location, partitioning_mismatch, clustering_mismatch
    table: str
    engine: str
    column: str | None = None
    expected: str | None = None
    actual: str | None = None

    def message(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        if self.kind == "extra_column":
            detail = f": not in the contract (found {self.actual})"
        elif self.kind == "missing_column":
            # A column the contract gained: `cbi init` adds it locally, the next push adds it in BigQuery.
            fix = "`cbi init` adds it" if self.engine == "duckdb" else "the next `cbi sync push` adds it"
            detail = f": in the contract ({self.expected}), not in the table; {fix}"
        elif self.kind == "same_name_conflict":
            detail = f": same table name with different columns in {self.actual}"
        elif self.expected is not None or self.actual is not None:
            detail = f": expected {self.expected}, found {self.actual}"
        else:
            detail = ""
        return f"{self.engine}: {self.kind} {where}{detail}"


@dataclass
class AuditReport:
    engine: str
    drifts: list[Drift] = field(default_factory=list)
    empty_tables: list[str] = field(default_factory=list)
    tables_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.drifts

    def as_dict(self) -> dict:
        return {
            "engine": self.engine,
            "ok": self.ok,
            "tables_checked": self.tables_checked,
            "drift": [asdict(d) | {"message": d.message()} for d in self.drifts],
            "empty_tables": self.empty_tables,
        }


Shape = dict[str, dict[str, tuple[str, str]]]  # "dataset.table" -> column -> (type, nullable)


def _shape(con: duckdb.DuckDBPyConnection) -> Shape:
    rows = con.execute(
        """
        SELECT c.table_schema, c.table_name, c.column_name, c.data_type, c.is_nullable
        FROM information_schema.columns c
        JOIN information_schema.tables t USING (table_catalog, table_schema, table_name)
        WHERE t.table_type = 'BASE TABLE' AND c.table_catalog = current_database()
        ORDER BY c.table_schema, c.table_name, c.ordinal_position
        """
    ).fetchall()
    shape: Shape = {}
    for schema, table, column, dtype, nullable in rows:
        if schema in SYSTEM_SCHEMAS:
            continue
        shape.setdefault(f"{schema}.{table}", {})[column] = (dtype, nullable)
    return shape


@functools.lru_cache(maxsize=1)
def expected_shape() -> Shape:
    con = duckdb.connect()
    try:
        for dataset in dc.DATASETS:
            con.execute(f"CREATE SCHEMA {to_duckdb.quote(dataset)}")
        for contract in dc.CONTRACTS:
            con.execute(to_duckdb.create_table(contract))
        return _shape(con)
    finally:
        con.close()


def compare_tables(expected: dict, actual: dict, engine: str, known_datasets: set[str]) -> list[Drift]:
    """Shared by both engines: tables -> columns -> comparable (type, mode) tuples."""
    drifts: list[Drift] = []
    for fqn, cols in expected.items():
        got = actual.get(fqn)
        if got is None:
            drifts.append(Drift("missing_table", fqn, engine))
            continue
        for name, want in cols.items():
            have = got.get(name)
            if have is None:
                drifts.append(Drift("missing_column", fqn, engine, name, want[0], None))
            elif have[0] != want[0]:
                drifts.append(Drift("type_mismatch", fqn, engine, name, want[0], have[0]))
            elif have[1] != want[1]:
                drifts.append(Drift("mode_mismatch", fqn, engine, name, want[1], have[1]))
        for name in got.keys() - cols.keys():
            drifts.append(Drift("extra_column", fqn, engine, name, None, got[name][0]))
    for fqn in sorted(actual.keys() - expected.keys()):
        if fqn.split(".")[0] in known_datasets or engine == "duckdb":
            drifts.append(Drift("unknown_table", fqn, engine))
    # The user's migration had two regime_calendar tables with different columns.
    by_name: dict[str, list[str]] = {}
    for fqn in actual:
        by_name.setdefault(fqn.split(".", 1)[1], []).append(fqn)
    for name, fqns in sorted(by_name.items()):
        signatures = {tuple(sorted(actual[f].items())) for f in fqns}
        if len(fqns) > 1 and len(signatures) > 1:
            drifts.append(Drift("same_name_conflict", name, engine, None, None, ", ".join(sorted(fqns))))
    return drifts


def audit_duckdb(con: duckdb.DuckDBPyConnection) -> AuditReport:
    actual = _shape(con)
    report = AuditReport("duckdb", tables_checked=len(actual))
    schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    report.drifts = [Drift("missing_dataset", d, "duckdb") for d in dc.DATASETS if d not in schemas]
    report.drifts += compare_tables(expected_shape(), actual, "duckdb", set(dc.DATASETS))
    for contract in dc.CONTRACTS:
        if contract.fqn in actual:
            n = con.execute(f"SELECT COUNT(*) FROM {to_duckdb.table_ref(contract)}").fetchall()[0][0]
            if n == 0:
                report.empty_tables.append(contract.fqn)
    return report
