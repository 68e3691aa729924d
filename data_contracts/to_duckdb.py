"""DuckDB DDL derived from a contract.

Primary keys are not declared as DuckDB constraints: an ART index over tens of millions
of bars costs memory and slows bulk loads, and ingest already deduplicates by anti-join
on the key (the unique_key rule checks it). NOT NULL is declared (cheap, and it catches
bugs at write time).
"""

from __future__ import annotations

from .model import Column, Contract, FlatView, flat_columns

_SCALAR = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(38,9)",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP WITH TIME ZONE",
    "DATETIME": "TIMESTAMP",
    "BYTES": "BLOB",
}


def quote(name: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    """A DuckDB SQL literal: a string quoted ('' escapes a quote), None as NULL, a number as written.
    Every DuckDB literal the project writes into SQL text goes through here (or literal_list)."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def literal_list(values: object) -> str:
    """A DuckDB list literal of strings: ['a', 'b']."""
    return "[" + ", ".join(literal(str(v)) for v in values) + "]"  # type: ignore[attr-defined]


def table_ref(contract: Contract) -> str:
    return f"{quote(contract.dataset)}.{quote(contract.table)}"


def column_type(col: Column) -> str:
    """DuckDB type of a column. Audits compare against what DuckDB reports for this DDL
    (see cbi_local.audit), not against this string, because DuckDB re-quotes keywords."""
    if col.type == "STRUCT":
        inner = ", ".join(f"{quote(f.name)} {column_type(f)}" for f in col.fields)
        base = f"STRUCT({inner})"
    else:
        base = _SCALAR[col.type]
    return base + "[]" if col.mode == "REPEATED" else base


def column_def(col: Column) -> str:
    not_null = " NOT NULL" if col.mode == "REQUIRED" else ""
    return f"{quote(col.name)} {column_type(col)}{not_null}"


def create_table(contract: Contract) -> str:
    cols = ",\n  ".join(column_def(c) for c in contract.columns)
    return f"CREATE TABLE IF NOT EXISTS {table_ref(contract)} (\n  {cols}\n)"


def comment_table(contract: Contract) -> str:
    return f"COMMENT ON TABLE {table_ref(contract)} IS {literal(contract.description)}"


def view_ref(view: FlatView) -> str:
    return f"{quote(view.dataset)}.{quote(view.name)}"


def flat_select(contract: Contract) -> str:
    """SELECT of a FlatView over `contract` (also usable on a read-only warehouse without the view)."""
    cols = ",\n  ".join(f"{'.'.join(quote(p) for p in path)} AS {quote(name)}" for path, name in flat_columns(contract))
    return f"SELECT\n  {cols}\nFROM {table_ref(contract)}"


def create_view(view: FlatView, contract: Contract) -> str:
    if contract.fqn != view.source:
        raise ValueError(f"view {view.fqn} reads {view.source}, not {contract.fqn}")
    return f"CREATE OR REPLACE VIEW {view_ref(view)} AS\n{flat_select(contract)}"


def comment_view(view: FlatView) -> str:
    return f"COMMENT ON VIEW {view_ref(view)} IS {literal(view.description)}"
