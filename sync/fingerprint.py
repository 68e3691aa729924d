"""Partition ids, partition filters and order-independent fingerprints, in both engines.

A fingerprint of a set of rows is (row count, BIT_XOR of h1, SUM of h2) where h1/h2 are two
slices of the MD5 of a canonical text of the row. It does not depend on row order, so DuckDB
and BigQuery compute it independently and the results are compared as plain integers: only
fingerprints (a few numbers per partition) cross the network, never equal data.

The canonical text is built column by column, identically in both dialects:

* STRING: `<length>:<value>` (no separator ambiguity); BYTES: lowercase hex;
* INT64: decimal text; BOOL: 0/1; FLOAT64/NUMERIC: ROUND(x * 1e6) as an integer (floats
  compare to 1e-6, the same IEEE arithmetic on both sides);
* DATE: days since 1970-01-01; TIMESTAMP/DATETIME: microseconds since the epoch;
* STRUCT: its leaf fields, recursively; NULL: `n`.
* REPEATED: `<count>[<element>,<element>...]` in array order, each element's text built by the
  rules above (a STRUCT element: its leaves joined by `|`); an empty or NULL array is `n`, as
  BigQuery stores no NULL arrays. Each dialect builds it itself (BigQuery: STRING_AGG over
  UNNEST WITH OFFSET; DuckDB: list_transform), so arrays never cross the network either.

Partition ids are integers: YYYYMMDD (DAY), YYYYMM (MONTH), YYYY (YEAR) of the partition
column's UTC date, 0 for an unpartitioned table, as BigQuery partitions them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from data_contracts.model import Column, Contract
from data_contracts.to_duckdb import quote as dq

# Lineage that changes on every re-ingest of the same content: not part of a row's content.
VOLATILE = ("batch_id", "ingested_at", "file_sha256")
UNPARTITIONED = 0
FLOAT_SCALE = "1e6"


def bq_quote(name: str) -> str:
    return "`" + name.replace("`", "") + "`"


def bq_table(project: str, dataset: str, table: str) -> str:
    return f"`{project}.{dataset}.{table}`"


# --- canonical text of one value -----------------------------------------------------------

def comparable(contract: Contract) -> bool:
    """True when every column's type has a canonical text (all the contracts' types have one)."""

    def ok(col: Column) -> bool:
        return all(ok(f) for f in col.fields) if col.type == "STRUCT" else col.type in _VALUE_SQL

    return all(ok(c) for c in contract.columns)


# Canonical text of a value `{r}` per type, as (BigQuery, DuckDB) SQL: one row per rule of the
# module docstring, so the two dialects cannot drift apart unnoticed.
_VALUE_SQL: dict[str, tuple[str, str]] = {
    "STRING": ("CONCAT(CAST(LENGTH({r}) AS STRING), ':', {r})", "(CAST(length({r}) AS VARCHAR) || ':' || {r})"),
    "BYTES": ("TO_HEX({r})", "lower(hex({r}))"),
    "INT64": ("CAST({r} AS STRING)", "CAST({r} AS VARCHAR)"),
    "BOOL": ("CAST(CAST({r} AS INT64) AS STRING)", "CAST(CAST({r} AS BIGINT) AS VARCHAR)"),
    "FLOAT64": (f"CAST(SAFE_CAST(ROUND(CAST({{r}} AS FLOAT64) * {FLOAT_SCALE}) AS INT64) AS STRING)",
                f"CAST(TRY_CAST(round(CAST({{r}} AS DOUBLE) * {FLOAT_SCALE}) AS BIGINT) AS VARCHAR)"),
    "DATE": ("CAST(UNIX_DATE({r}) AS STRING)", "CAST(({r} - DATE '1970-01-01') AS VARCHAR)"),
    "TIMESTAMP": ("CAST(UNIX_MICROS({r}) AS STRING)", "CAST(epoch_us({r}) AS VARCHAR)"),
    "DATETIME": ("CAST(UNIX_MICROS(TIMESTAMP({r})) AS STRING)", "CAST(epoch_us({r}) AS VARCHAR)"),
}
_VALUE_SQL["NUMERIC"] = _VALUE_SQL["FLOAT64"]


def _value(ref: str, col: Column, engine: str) -> str:
    try:
        bq, dk = _VALUE_SQL[col.type]
    except KeyError:
        raise ValueError(f"cannot fingerprint type {col.type}") from None
    return (bq if engine == "bigquery" else dk).format(r=ref)


def _texts(col: Column, ref: str, engine: str) -> list[str]:
    """Canonical texts (never NULL) of the value `ref` of `col`: one per leaf, one per array."""
    null = "IFNULL({}, 'n')" if engine == "bigquery" else "coalesce({}, 'n')"
    if col.mode == "REPEATED":
        return [null.format(_array(col, ref, engine))]
    if col.type == "STRUCT":
        field = (lambda n: f"{ref}.{bq_quote(n)}") if engine == "bigquery" else (lambda n: f"{ref}.{dq(n)}")
        return [t for f in col.fields for t in _texts(f, field(f.name), engine)]
    return [null.format(_value(ref, col, engine))]


def _array(col: Column, ref: str, engine: str) -> str:
    """`<count>[e1,e2...]` of a REPEATED value in array order; NULL when empty or NULL."""
    e = "_fp_e"  # the element's alias: a name no contract spells
    element = _join(_texts(replace(col, mode="NULLABLE"), e, engine), engine)
    if engine == "bigquery":
        return (f"(SELECT CONCAT(CAST(COUNT(*) AS STRING), '[', STRING_AGG({element}, ',' ORDER BY _fp_o), ']') "
                f"FROM UNNEST({ref}) AS {e} WITH OFFSET AS _fp_o)")
    return (f"CASE WHEN len({ref}) > 0 THEN CAST(len({ref}) AS VARCHAR) || '[' || "
            f"array_to_string(list_transform({ref}, lambda {e}: {element}), ',') || ']' END")


def _join(parts: list[str], engine: str) -> str:
    if engine == "bigquery":
        return "CONCAT(" + ", '|', ".join(parts) + ")"
    return "(" + " || '|' || ".join(parts) + ")"


def _row_text(contract: Contract, columns: list[str], engine: str, alias: str) -> str:
    quote = bq_quote if engine == "bigquery" else dq
    parts = [t for name in columns for t in _texts(contract.column(name), f"{alias}.{quote(name)}", engine)]
    if not parts:
        raise ValueError(f"{contract.fqn}: no fingerprintable columns")
    return _join(parts, engine)


def content_columns(contract: Contract) -> list[str]:
    """Columns that make up a row's content (lineage that changes on re-ingest excluded)."""
    return [c for c in contract.column_names if c not in VOLATILE]


# --- partitions ----------------------------------------------------------------------------

def partition_expr(contract: Contract, engine: str, alias: str) -> str:
    p = contract.partition
    if p is None:
        return str(UNPARTITIONED)
    col = contract.column(p.column)
    if engine == "bigquery":
        ref = f"{alias}.{bq_quote(p.column)}"
        d = ref if col.type == "DATE" else f"DATE({ref})"
        y, m, day = (f"EXTRACT(YEAR FROM {d})", f"EXTRACT(MONTH FROM {d})", f"EXTRACT(DAY FROM {d})")
    else:
        ref = f"{alias}.{dq(p.column)}"
        d = {"DATE": ref, "TIMESTAMP": f"CAST(timezone('UTC', {ref}) AS DATE)", "DATETIME": f"CAST({ref} AS DATE)"}[col.type]
        y, m, day = (f"year({d})", f"month({d})", f"day({d})")
    if p.granularity == "YEAR":
        return f"CAST({y} AS {'INT64' if engine == 'bigquery' else 'BIGINT'})"
    if p.granularity == "MONTH":
        return f"CAST({y} * 100 + {m} AS {'INT64' if engine == 'bigquery' else 'BIGINT'})"
    return f"CAST({y} * 10000 + {m} * 100 + {day} AS {'INT64' if engine == 'bigquery' else 'BIGINT'})"


def partition_start(granularity: str, pid: int) -> dt.date:
    if granularity == "YEAR":
        return dt.date(pid, 1, 1)
    if granularity == "MONTH":
        return dt.date(pid // 100, pid % 100, 1)
    return dt.date(pid // 10000, pid // 100 % 100, pid % 100)


def next_partition(granularity: str, pid: int) -> int:
    d = partition_start(granularity, pid)
    if granularity == "YEAR":
        return pid + 1
    if granularity == "MONTH":
        return (d.year + 1) * 100 + 1 if d.month == 12 else pid + 1
    n = d + dt.timedelta(days=1)
    return n.year * 10000 + n.month * 100 + n.day


def runs(granularity: str, pids: list[int]) -> list[tuple[int, int]]:
    """Contiguous runs [first, last] of sorted partition ids."""
    out: list[tuple[int, int]] = []
    for pid in sorted(pids):
        if out and next_partition(granularity, out[-1][1]) == pid:
            out[-1] = (out[-1][0], pid)
        else:
            out.append((pid, pid))
    return out


def _literal(col_type: str, d: dt.date, engine: str) -> str:
    if col_type == "DATE":
        return f"DATE '{d.isoformat()}'"
    if col_type == "TIMESTAMP":
        return f"TIMESTAMP '{d.isoformat()} 00:00:00+00'" if engine == "bigquery" else f"TIMESTAMPTZ '{d.isoformat()} 00:00:00+00'"
    return f"DATETIME '{d.isoformat()} 00:00:00'" if engine == "bigquery" else f"TIMESTAMP '{d.isoformat()} 00:00:00'"


def partition_filter(contract: Contract, pids: list[int], engine: str, alias: str) -> str:
    """A literal filter on the partition column selecting exactly `pids` (so BigQuery prunes)."""
    p = contract.partition
    if p is None:
        return "TRUE"
    if not pids:
        return "FALSE"
    col = contract.column(p.column)
    name = bq_quote(p.column) if engine == "bigquery" else dq(p.column)
    ref = f"{alias}.{name}" if alias else name  # no alias: a bare column (a Storage Read row restriction)
    clauses = []
    for first, last in runs(p.granularity, pids):
        lo = _literal(col.type, partition_start(p.granularity, first), engine)
        hi = _literal(col.type, partition_start(p.granularity, next_partition(p.granularity, last)), engine)
        clauses.append(f"({ref} >= {lo} AND {ref} < {hi})")
    return "(" + " OR ".join(clauses) + ")"


# --- fingerprints --------------------------------------------------------------------------

@dataclass(frozen=True)
class Fingerprint:
    rows: int
    xor: int
    total: int


def _agg(engine: str, text: str) -> str:
    if engine == "bigquery":
        h = f"TO_HEX(MD5({text}))"
        return (
            "COUNT(*) AS n, "
            f"IFNULL(BIT_XOR(CAST(CONCAT('0x', SUBSTR({h}, 1, 15)) AS INT64)), 0) AS x, "
            f"IFNULL(SUM(CAST(CONCAT('0x', SUBSTR({h}, 16, 8)) AS INT64)), 0) AS s"
        )
    h = f"md5({text})"
    return (
        "count(*) AS n, "
        f"coalesce(bit_xor(CAST('0x' || substr({h}, 1, 15) AS BIGINT)), 0) AS x, "
        f"coalesce(sum(CAST('0x' || substr({h}, 16, 8) AS BIGINT)), 0) AS s"
    )


def partition_fingerprints_sql(
    contract: Contract, engine: str, source: str, where: str = "TRUE", columns: list[str] | None = None
) -> str:
    """SELECT pid, n, x, s FROM source WHERE where GROUP BY pid (alias of the source: t)."""
    cols = columns if columns is not None else content_columns(contract)
    if comparable(contract):
        text = _row_text(contract, cols, engine, "t")
    else:  # keys only
        text = _row_text(contract, list(contract.primary_key), engine, "t")
    pid = partition_expr(contract, engine, "t")
    return f"SELECT {pid} AS pid, {_agg(engine, text)} FROM {source} AS t WHERE {where} GROUP BY 1"


def total_fingerprint_sql(contract: Contract, engine: str, source: str, where: str = "TRUE", columns: list[str] | None = None) -> str:
    cols = columns if columns is not None else content_columns(contract)
    text = _row_text(contract, cols if comparable(contract) else list(contract.primary_key), engine, "t")
    return f"SELECT {_agg(engine, text)} FROM {source} AS t WHERE {where}"


def as_map(rows: list[tuple]) -> dict[int, Fingerprint]:
    return {int(r[0]): Fingerprint(int(r[1]), int(r[2]), int(r[3])) for r in rows}


def partition_label(contract: Contract, pid: int) -> str:
    if contract.partition is None:
        return "(unpartitioned)"
    d = partition_start(contract.partition.granularity, pid)
    return {"YEAR": f"{d.year}", "MONTH": f"{d.year}-{d.month:02d}"}.get(contract.partition.granularity, d.isoformat())
