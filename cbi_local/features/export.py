"""The flat matrix and its Parquet export, generated from the contracts.

The flat view `features.vw_daily_ml_flat` is declared in data_contracts (tables/features.py,
a FlatView): every STRUCT field becomes one column named ``<struct>__<field>``
(``market_data__close``, ``regime__name``); top-level scalar columns keep their names. `cbi init`
creates it. Nothing here lists a column by hand: add a field to the contract and the view and
the export follow.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

import data_contracts as dc
from data_contracts import to_duckdb
from data_contracts.model import FLAT_SEP as SEP
from data_contracts.model import Contract
from data_contracts.model import flat_columns as _flat_columns
from data_contracts.tables.features import vw_daily_ml_flat as VIEW

MATRIX = dc.get(VIEW.source)
FLAT_VIEW = VIEW.name
FORMATS = ("parquet",)
__all__ = ["FLAT_VIEW", "FORMATS", "MATRIX", "SEP", "export", "flat_columns", "flat_select_sql"]


def flat_columns(contract: Contract = MATRIX) -> list[tuple[tuple[str, ...], str]]:
    """(path, flat name) per output column of the matrix's flat view, in contract order."""
    return _flat_columns(contract)


def flat_select_sql(contract: Contract = MATRIX) -> str:
    """The flat view's SELECT, usable on a read-only warehouse (no view needed)."""
    return to_duckdb.flat_select(contract)


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
    out.parent.mkdir(parents=True, exist_ok=True)
    path = str(out).replace("'", "''")
    # COPY returns the rows it wrote: no second (sorted) pass to count them
    n = con.execute(f"COPY ({inner}) TO '{path}' (FORMAT parquet, COMPRESSION zstd)", params).fetchall()[0][0]
    return {"path": str(out), "format": fmt, "rows": n, "columns": [name for _, name in flat_columns()],
            "matrix_source": source, "symbols": symbols}
