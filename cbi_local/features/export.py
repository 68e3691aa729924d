"""The flat view of features.daily_ml_matrix and the Parquet export, generated from the contract.

Every STRUCT field becomes one column named ``<struct>__<field>`` (``market_data__close``,
``regime__name``); top-level scalar columns keep their names. The double underscore keeps the
mapping reversible and avoids collisions (``regime.name`` vs the top-level ``regime_name``).
Nothing here lists a column by hand: add a field to the contract and the view and the export
follow.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

import data_contracts as dc
from data_contracts.model import Contract
from data_contracts.to_duckdb import quote, table_ref

MATRIX = dc.get("features.daily_ml_matrix")
FLAT_VIEW = "vw_daily_ml_flat"
SEP = "__"
FORMATS = ("parquet",)


def flat_columns(contract: Contract = MATRIX) -> list[tuple[tuple[str, ...], str]]:
    """(path, flat name) per output column, in contract order."""
    out: list[tuple[tuple[str, ...], str]] = []
    for col in contract.columns:
        if col.type == "STRUCT" and col.mode != "REPEATED":
            out += [((col.name, f.name), f"{col.name}{SEP}{f.name}") for f in col.fields]
        else:
            out.append(((col.name,), col.name))
    return out


def flat_select_sql(contract: Contract = MATRIX, dialect: str = "duckdb", table: str | None = None) -> str:
    q = quote if dialect == "duckdb" else (lambda n: f"`{n}`")
    src = table or (table_ref(contract) if dialect == "duckdb" else f"`{contract.dataset}.{contract.table}`")
    cols = ",\n  ".join(f"{'.'.join(q(p) for p in path)} AS {q(name)}" for path, name in flat_columns(contract))
    return f"SELECT\n  {cols}\nFROM {src}"


def flat_view_sql(contract: Contract = MATRIX, dialect: str = "duckdb", project: str | None = None) -> str:
    """CREATE OR REPLACE VIEW features.vw_daily_ml_flat (DuckDB, or BigQuery with `project`)."""
    if dialect == "duckdb":
        return f"CREATE OR REPLACE VIEW {quote(contract.dataset)}.{quote(FLAT_VIEW)} AS\n{flat_select_sql(contract)}"
    table = f"`{project}.{contract.dataset}.{contract.table}`"
    return (f"CREATE OR REPLACE VIEW `{project}.{contract.dataset}.{FLAT_VIEW}` AS\n"
            f"{flat_select_sql(contract, 'bigquery', table)}")


def ensure_flat_view(con: duckdb.DuckDBPyConnection) -> str:
    con.execute(flat_view_sql())
    return f"{MATRIX.dataset}.{FLAT_VIEW}"


def export(
    con: duckdb.DuckDBPyConnection, out: Path, fmt: str = "parquet",
    source: str | None = None, symbols: list[str] | None = None,
) -> dict:
    """Write the flat matrix (optionally one matrix_source / some symbols) to `out`; works on a
    read-only connection (the SELECT is generated, no view needed)."""
    if fmt not in FORMATS:
        raise ValueError(f"unsupported export format {fmt!r}; supported: {', '.join(FORMATS)}")
    where, params = [], {}
    if source:
        where.append("matrix_source = $source")
        params["source"] = source
    if symbols:
        where.append("list_contains($symbols, symbol)")
        params["symbols"] = symbols
    inner = f"SELECT * FROM ({flat_select_sql()}) AS f" + (f" WHERE {' AND '.join(where)}" if where else "")
    inner += " ORDER BY matrix_source, symbol, date"
    n = con.execute(f"SELECT COUNT(*) FROM ({inner})", params).fetchall()[0][0]
    out.parent.mkdir(parents=True, exist_ok=True)
    path = str(out).replace("'", "''")
    con.execute(f"COPY ({inner}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)", params)
    return {"path": str(out), "format": fmt, "rows": n, "columns": [name for _, name in flat_columns()],
            "matrix_source": source, "symbols": symbols}
