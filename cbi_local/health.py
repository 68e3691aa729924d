"""Health checks: every quality rule a contract declares, measured in one pass per table.

The measurement of a table is ONE aggregate query (generated from the contract, in DuckDB
SQL; `bigquery_sql` transpiles the same text for tables that live in BigQuery, and
`sync.bigquery.health` runs it there). The generated text is portable on purpose: key
uniqueness counts a length-prefixed string encoding of the key (BigQuery cannot
COUNT(DISTINCT STRUCT(...))), FILTER becomes COUNTIF, and `bigquery_sql` refuses text that
still holds a DuckDB-only function. Sample offending rows are fetched afterwards, only for
rules that failed, with LIMIT (`sample_query`, also portable). Results (with history) go to
monitoring.health_checks.

`health_report` is what `cbi health` prints: the live checks plus the defects a legacy
migration recorded (`recorded_checks`: rows the migration wrote to monitoring.health_checks,
each naming rule, table and sample rows). Only live checks decide the exit code: recorded
defects describe rows already quarantined, normalised or resolved by precedence.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from collections.abc import Callable
from typing import Any

import duckdb

import data_contracts as dc
from data_contracts.columns import HORIZONS
from data_contracts.model import Contract
from data_contracts.to_duckdb import literal, table_ref

from .rules_sql import _ref, row_checks
from .warehouse import transaction

SAMPLE_LIMIT = 5


@dataclass
class CheckResult:
    rule: str
    table: str
    columns: str | None  # None: the check is about rows, not named columns (migration defects)
    status: str  # pass | fail | warn
    severity: str
    measured_value: float | None
    threshold: str
    message: str
    sample: list[Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Measure:
    """One aggregate in the table's single query, and how to judge it."""

    rule: str
    columns: str
    expr: str  # aggregate SQL
    threshold: str
    severity: str
    sample_where: str | None  # row predicate selecting offenders, for the sample query
    judge: str  # 'zero' (fail when > 0), 'min:N' (fail when < N), 'max_age:D', 'false' (fail when true)
    message: str


def _field_type(contract: Contract, path: str) -> str:
    """The BigQuery type of a column or of a STRUCT field ("struct.field")."""
    head, _, rest = path.partition(".")
    col = contract.column(head)
    return next(f.type for f in col.fields if f.name == rest) if rest else col.type


def _placeholder_value(contract: Contract, col: str) -> str:
    """The value the placeholder checks compare: a BOOL as 0/1 (min/max and windows over an INT64 mean the
    same on DuckDB and BigQuery)."""
    ref = _ref(col)
    return f"CAST({ref} AS BIGINT)" if _field_type(contract, col) == "BOOL" else ref


def _placeholder_measures(contract: Contract, rule) -> list[Measure]:
    """Per column: every value one sentinel, zero variance (both judged over >= min_rows values), and a run
    of `window` equal values (unless window is None)."""
    out = []
    sentinels = rule.param("sentinels", (0.5, 1.0))
    min_rows = int(rule.param("min_rows", 2))
    over = f" (judged over >= {min_rows} values)" if min_rows > 2 else ""
    window = rule.param("window", 20)
    for col in rule.columns:
        ref = _ref(col)
        value = _placeholder_value(contract, col)
        enough = f"COUNT({ref}) >= {min_rows}"
        for s in sentinels:
            # Every present value equal to one sentinel: a placeholder column (0.5, all-1.0).
            out.append(
                Measure(
                    "no_placeholders", col,
                    f"({enough} AND COUNT({ref}) = COUNT(*) FILTER (WHERE {ref} = {s}))",
                    f"not every value = {s}{over}", rule.severity, f"{ref} = {s}", "false",
                    f"{col}: every value is the placeholder {s}",
                )
            )
        out.append(
            Measure(
                "no_placeholders", col,
                f"({enough} AND min({value}) = max({value}))",
                f"more than one distinct value{over}", rule.severity, f"{ref} IS NOT NULL", "false",
                f"{col}: zero variance (one value on every row)",
            )
        )
        if window is None:
            continue
        out.append(
            Measure(
                "no_placeholders", col,
                f"COUNT(*) FILTER (WHERE {_window_flag(col)})",
                f"no run of {window} equal values", rule.severity, None, "zero",
                f"{col}: constant over a window of {window} consecutive rows (count of rows ending such a run)",
            )
        )
    return out


def _window_flag(col: str) -> str:
    return '"_const_' + col.replace(".", "__") + '"'


def _window_order(contract: Contract) -> tuple[list[str], str]:
    """(partition columns, order column) of the table's natural series: the key minus its time column."""
    order = contract.partition.column if contract.partition else contract.primary_key[-1]
    return [k for k in contract.primary_key if k != order], order


def _windowed_source(contract: Contract, source: str, where: str | None) -> str | None:
    """A subquery adding one flag per no_placeholders column with a window: true on a row that ends
    `window` consecutive non-null equal values (rolling min = max over the table's time order). The order
    column is never NULL; NULLS FIRST is BigQuery's default, so the text means the same on both."""
    parts, order = _window_order(contract)
    partition = ("PARTITION BY " + ", ".join(_ref(p) for p in parts) + " ") if parts else ""
    flags = []
    for rule in contract.rules_of("no_placeholders"):
        if rule.param("window", 20) is None:
            continue
        n = int(rule.param("window", 20))
        w = f"OVER ({partition}ORDER BY {_ref(order)} ASC NULLS FIRST ROWS BETWEEN {n - 1} PRECEDING AND CURRENT ROW)"
        for col in rule.columns:
            ref, value = _ref(col), _placeholder_value(contract, col)
            flags.append(f"(COUNT({ref}) {w} = {n} AND min({value}) {w} = max({value}) {w}) AS {_window_flag(col)}")
    if not flags:
        return None
    return f"(SELECT *, {', '.join(flags)} FROM {source}" + (f" WHERE {where}" if where else "") + ") AS t"


def key_text(contract: Contract, columns: tuple[str, ...] | list[str] | None = None) -> str:
    """One string per key, equal exactly when every key column is equal (NULL included), in SQL that
    DuckDB and BigQuery both run (BigQuery cannot COUNT(DISTINCT STRUCT(...))). Strings are
    length-prefixed ('5:ZLH21') so no value can fake the separator; timestamps are epoch microseconds
    (casting a timestamp to text is 3x slower; `bigquery_sql` maps epoch_us to UNIX_MICROS); other types
    are cast to text, which never contains the separator."""
    parts = []
    for col in columns or contract.primary_key:
        ref = _ref(col)
        kind = contract.column(col).type if "." not in col else None  # nested field: treated as text
        if kind == "TIMESTAMP":
            parts.append(f"coalesce(CAST(epoch_us({ref}) AS VARCHAR), 'N')")
        elif kind in ("INT64", "FLOAT64", "NUMERIC", "BOOL", "DATE", "DATETIME"):
            parts.append(f"coalesce(CAST({ref} AS VARCHAR), 'N')")
        else:
            text = f"CAST({ref} AS VARCHAR)"
            parts.append(f"coalesce(CAST(length({text}) AS VARCHAR) || ':' || {text}, 'N')")
    return " || '|' || ".join(parts)


def measures(contract: Contract) -> list[Measure]:
    out: list[Measure] = []
    for check in row_checks(contract):
        out.append(
            Measure(
                check.rule, check.columns, f"COUNT(*) FILTER (WHERE {check.condition})", "0 rows", "blocking",
                check.condition, "zero", "rows break the rule",
            )
        )
    for rule in contract.rules:
        kind = rule.kind
        if kind == "unique_key" and contract.primary_key:
            out.append(
                Measure(
                    "unique_key", ",".join(contract.primary_key),
                    f"(COUNT(*) - COUNT(DISTINCT {key_text(contract)}))", "0 duplicate keys", rule.severity,
                    None, "zero", "rows share a primary key",
                )
            )
        elif kind == "no_placeholders":
            out += _placeholder_measures(contract, rule)
        elif kind == "not_single_timestamp":
            ref = _ref(rule.columns[0])
            out.append(
                Measure(
                    kind, rule.columns[0], f"(COUNT(*) > 1 AND COUNT(DISTINCT {ref}) = 1)", "more than one distinct value",
                    rule.severity, None, "false", f"every row shares one {rule.columns[0]}",
                )
            )
        elif kind == "min_distinct":
            ref = _ref(rule.columns[0])
            n = rule.param("minimum")
            out.append(
                Measure(
                    kind, rule.columns[0], f"COUNT(DISTINCT {ref})", f">= {n} distinct", rule.severity, None,
                    f"min:{n}", f"fewer than {n} distinct {rule.columns[0]} values",
                )
            )
        elif kind == "freshness":
            ref = _ref(rule.columns[0])
            days = rule.param("max_age_days")
            out.append(
                Measure(
                    kind, rule.columns[0], f"CAST(max({ref}) AS DATE)", f"<= {days} days old", rule.severity, None,
                    f"max_age:{days}", f"newest {rule.columns[0]} is older than {days} days",
                )
            )
    return out


def target_naming_violations(contract: Contract) -> list[str]:
    """A training/feature table for horizon h (name ending _h) carries target_h and no other horizon's
    target. Elsewhere a suffix like _1m means bar size (ohlcv_1m), not a horizon."""
    suffix = contract.table.rsplit("_", 1)[-1]
    if contract.dataset not in ("training", "features") or suffix not in HORIZONS:
        return []
    targets = {c for c in contract.column_names if c.startswith("target_")}
    problems = []
    if f"target_{suffix}" not in targets:
        problems.append(f"{contract.fqn} is a {suffix} table without target_{suffix}")
    problems += [f"{contract.fqn} carries {t}, another horizon's target" for t in sorted(targets - {f"target_{suffix}"})]
    return problems


def table_query(contract: Contract, where: str | None = None, table: str | None = None) -> tuple[str, list[Measure]]:
    """The table's single aggregate query (DuckDB text; `bigquery_sql` for BigQuery). `table` overrides
    the FROM target (e.g. '"project"."dataset"."table"')."""
    ms = measures(contract)
    cols = ",\n  ".join(f"{m.expr} AS m{i}" for i, m in enumerate(ms)) or "COUNT(*) AS m0"
    source = table or table_ref(contract)
    windowed = _windowed_source(contract, source, where)
    if windowed:  # still one query: the window flags ride along the single scan
        return f"SELECT COUNT(*) AS _rows,\n  {cols}\nFROM {windowed}", ms
    sql = f"SELECT COUNT(*) AS _rows,\n  {cols}\nFROM {source}"
    if where:
        sql += f"\nWHERE {where}"
    return sql, ms


# Functions that exist in DuckDB but not in BigQuery (sqlglot passes them through unchanged or maps
# them to something with other semantics). The generators avoid them; this catches a regression.
_DUCKDB_ONLY = ("isfinite(", "struct_pack(", "contains_substr(", "to_json(", "epoch_us(")


# DuckDB builtins sqlglot (30.x) passes through unchanged although BigQuery spells them differently.
_RENAME_FOR_BIGQUERY = {"EPOCH_US": "UNIX_MICROS"}


def bigquery_sql(duckdb_sql: str) -> str:
    """The same query for BigQuery (identifier quoting, COUNT FILTER -> COUNTIF, VARCHAR -> STRING,
    epoch_us -> UNIX_MICROS). Raises ValueError naming a DuckDB-only function the text still uses."""
    import sqlglot
    from sqlglot import exp

    def rename(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and str(node.this).upper() in _RENAME_FOR_BIGQUERY:
            return exp.Anonymous(this=_RENAME_FOR_BIGQUERY[str(node.this).upper()], expressions=node.expressions)
        return node

    tree = sqlglot.parse_one(duckdb_sql, read="duckdb").transform(rename)
    out = tree.sql(dialect="bigquery")
    low = out.lower()
    bad = [f for f in _DUCKDB_ONLY if f in low]
    if bad:
        raise ValueError(f"generated health SQL is not portable to BigQuery (uses {', '.join(bad)}): {out[:300]}")
    return out


def _judge(m: Measure, value: Any, today: date) -> tuple[str, float | None]:
    if m.judge == "zero":
        n = float(value or 0)
        return ("pass" if n == 0 else "fail"), n
    if m.judge == "false":
        return ("fail" if value else "pass"), float(bool(value))
    if m.judge.startswith("min:"):
        n = float(value or 0)
        return ("pass" if n >= float(m.judge[4:]) else "fail"), n
    if m.judge.startswith("max_age:"):
        if value is None:
            return "fail", None
        age = (today - value).days
        return ("pass" if age <= int(m.judge[8:]) else "fail"), float(age)
    raise ValueError(m.judge)


Fetch = Callable[[str], tuple[list[str], list[tuple]]]  # SQL -> (column names, rows)


def judge_row(
    contract: Contract, ms: list[Measure], row: tuple, today: date, fetch: Fetch | None = None,
    where: str | None = None, table: str | None = None, translate: Callable[[str], str] = lambda q: q,
) -> list[CheckResult]:
    """Verdicts from the table query's one result row (engine-neutral: DuckDB and BigQuery share it).
    `fetch` runs the (translated) sample queries of failed rules; None skips samples."""
    n_rows = row[0]
    results = []
    for i, m in enumerate(ms):
        status, measured = _judge(m, row[i + 1], today)
        if n_rows == 0 and m.judge != "zero":
            status, measured = "pass", measured  # an empty table has no placeholders to find; coverage says it is empty
        if status == "fail" and m.severity == "warning":
            status = "warn"
        sample: list[Any] = []
        if status != "pass" and fetch is not None:
            sql = sample_query(contract, m, where, table)
            if sql:
                sample = _sample_rows(m, *fetch(translate(sql)))
        message = "ok" if status == "pass" else m.message
        results.append(CheckResult(m.rule, contract.fqn, m.columns, status, m.severity, measured, m.threshold, message, sample))
    for problem in target_naming_violations(contract):
        results.append(CheckResult("target_naming", contract.fqn, "", "fail", "blocking", 1.0, "target matches horizon", problem, []))
    return results


def check_table(
    con: duckdb.DuckDBPyConnection, contract: Contract, where: str | None = None, today: date | None = None
) -> list[CheckResult]:
    today = today or datetime.now(timezone.utc).date()
    sql, ms = table_query(contract, where)
    row = con.execute(sql).fetchall()[0]

    def fetch(q: str) -> tuple[list[str], list[tuple]]:
        cur = con.execute(q)
        rows = cur.fetchall()
        return [d[0] for d in cur.description], rows

    return judge_row(contract, ms, row, today, fetch, where)


def sample_query(contract: Contract, m: Measure, where: str | None, table: str | None = None) -> str | None:
    """Portable SQL selecting up to SAMPLE_LIMIT offending rows (or duplicated keys) of a failed measure."""
    ref = table or table_ref(contract)
    filters = [f for f in (where, m.sample_where) if f]
    if m.rule == "unique_key":
        keys = ", ".join(_ref(k) for k in contract.primary_key)
        return (
            f"SELECT {keys}, COUNT(*) AS _n FROM {ref}" + (f" WHERE {where}" if where else "")
            + f" GROUP BY {keys} HAVING COUNT(*) > 1 ORDER BY {keys} LIMIT {SAMPLE_LIMIT}"
        )
    if not filters:
        return None
    return f"SELECT * FROM {ref} WHERE " + " AND ".join(f"({f})" for f in filters) + f" LIMIT {SAMPLE_LIMIT}"


def _plain(value: Any) -> Any:
    """A JSON-safe value: dates as ISO text, timestamps as ISO text in UTC, structs and lists kept."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value != value:
        return "NaN"
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def _sample_rows(m: Measure, names: list[str], rows: list[tuple]) -> list[Any]:
    if m.rule == "unique_key":
        return [{"key": {k: _plain(v) for k, v in zip(names[:-1], r[:-1])}, "rows": r[-1]} for r in rows]
    return [{k: _plain(v) for k, v in zip(names, r)} for r in rows]


def run_health(
    con: duckdb.DuckDBPyConnection,
    tables: list[str] | None = None,
    batch_id: str | None = None,
    record: bool = True,
    today: date | None = None,
) -> list[CheckResult]:
    """Check the named tables (default: all), optionally only one batch's rows; record the results."""
    contracts = [dc.get(t) for t in tables] if tables else list(dc.CONTRACTS)
    existing = {
        f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_catalog = current_database()"
        ).fetchall()
    }
    results: list[CheckResult] = []
    for contract in contracts:
        where = None
        if batch_id is not None:
            if "batch_id" not in contract.column_names:
                continue
            where = "batch_id = " + literal(batch_id)
        if contract.fqn not in existing:
            # A contract newer than the warehouse: reported (blocking), never a crash.
            results.append(CheckResult("table_exists", contract.fqn, "", "fail", "blocking", None, "table exists",
                                       "the table is missing from the warehouse: run `cbi init`", []))
            continue
        results += check_table(con, contract, where, today)
    if record:
        record_results(con, results, batch_id, engine="duckdb")
    return results


def record_results(con: duckdb.DuckDBPyConnection, results: list[CheckResult], batch_id: str | None, engine: str) -> None:
    import pyarrow as pa

    now = datetime.now(timezone.utc)
    rows = [
        {
            "check_id": str(uuid.uuid4()), "checked_at": now, "rule": r.rule, "table_name": r.table,
            "rule_columns": r.columns, "status": r.status, "severity": r.severity, "measured_value": r.measured_value,
            "threshold": r.threshold, "sample_keys": json.dumps(r.sample, default=str) if r.sample else None,
            "batch_id": batch_id, "engine": engine, "message": r.message,
        }
        for r in results
    ]
    if not rows:
        return
    con.register("_cbi_health", pa.Table.from_pylist(rows))
    con.execute("INSERT INTO monitoring.health_checks BY NAME SELECT * FROM _cbi_health")
    con.unregister("_cbi_health")


# The legacy migration (cbi_local/ingest/legacy.py `_record_checks`) writes one health_checks row per
# defect, its message starting with this prefix; the batch gate's rows for the same batch do not.
MIGRATION_PREFIX = "migrate-legacy "
# The rows of monitoring.health_checks that are live checks (what `cbi health` counts as failed),
# not a migration's recorded defects.
LIVE_CHECKS_SQL = f"NOT starts_with(coalesce(message, ''), '{MIGRATION_PREFIX}')"


def recorded_checks(con: duckdb.DuckDBPyConnection, batch_id: str | None = None) -> dict[str, Any]:
    """Defects a legacy migration recorded in monitoring.health_checks: those of `batch_id`, or of the
    latest migration batch that recorded any. Each names rule, table, the legacy table, rows and samples.
    A rerun over unchanged exports records nothing, so the latest recording stays the one shown."""
    if batch_id is None:
        found = con.execute(
            "SELECT batch_id FROM monitoring.health_checks WHERE starts_with(message, ?) "
            "ORDER BY checked_at DESC LIMIT 1", [MIGRATION_PREFIX]
        ).fetchall()
        if not found:
            return {"batch_id": None, "checked_at": None, "defects": []}
        batch_id = found[0][0]
    rows = con.execute(
        """SELECT checked_at, rule, table_name, status, severity, measured_value, threshold, message, sample_keys
           FROM monitoring.health_checks WHERE batch_id = ? AND starts_with(message, ?)
           ORDER BY table_name, rule, message""",
        [batch_id, MIGRATION_PREFIX],
    ).fetchall()
    defects = []
    for at, rule, tbl, status, severity, measured, threshold, message, samples in rows:
        legacy_table = message[len(MIGRATION_PREFIX):].split(":", 1)[0]
        defects.append({
            "rule": rule, "table": tbl, "legacy_table": legacy_table, "status": status, "severity": severity,
            "rows": measured, "threshold": threshold, "message": message,
            "sample": json.loads(samples) if samples else [],
        })
    return {"batch_id": batch_id, "checked_at": rows[0][0] if rows else None, "defects": defects}


def health_report(
    con: duckdb.DuckDBPyConnection, tables: list[str] | None = None, batch_id: str | None = None,
    today: date | None = None,
) -> dict[str, Any]:
    """What `cbi health` shows. Without `batch_id`: the live checks over whole tables (recorded) plus the
    latest migration's recorded defects. With `batch_id`: the live checks over that batch's rows
    (recorded) plus that batch's recorded defects (if it was a migration), and the input files whose last
    read failed. `ok` (the exit code) is false on a live blocking failure or a file in error."""
    results = run_health(con, tables, batch_id=batch_id, record=False, today=today)
    recorded = recorded_checks(con, batch_id)  # before recording: the live rows are not migration defects
    recorded_as = record_on_demand(con, results, batch_id)
    if tables:
        recorded["defects"] = [d for d in recorded["defects"] if d["table"] in set(tables)]
    failed = failures(results)
    from .ingest.core import files_in_error

    unreadable = files_in_error(con) if batch_id is None else []
    return {
        "ok": not failed and not unreadable,
        "checks": len(results),
        "failed": len(failed),
        "warnings": sum(r.status == "warn" for r in results),
        "batch_id": batch_id,
        "recorded_as": recorded_as,
        "results": [r.as_dict() for r in results],
        "recorded": recorded,
        "files_in_error": unreadable,
    }


def record_on_demand(con: duckdb.DuckDBPyConnection, results: list[CheckResult], checked_batch: str | None) -> str | None:
    """Record an on-demand run. Over whole tables the results get a batch of their own (kind
    'health', validated) so `cbi sync push` takes the history to BigQuery; re-checking one batch
    records under that batch, as its gate did. Returns the batch the rows were recorded under."""
    if checked_batch is not None or not results:
        record_results(con, results, checked_batch, engine="duckdb")
        return checked_batch
    from .batches import record_validated

    now = datetime.now(timezone.utc)
    batch_id = f"health-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    failed = len(failures(results))
    with transaction(con):
        record_results(con, results, batch_id, engine="duckdb")
        record_validated(con, batch_id, now, "health", ["monitoring.health_checks"], len(results), len(results),
                         f"cbi health: {len(results)} checks, {failed} failed")
    return batch_id


def failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status == "fail"]


def validate_batch(con: duckdb.DuckDBPyConnection, batch_id: str) -> dict[str, Any]:
    """The gate before a push: table-level rules over the batch's own rows. A blocking failure
    moves all the batch's rows into the quarantine and marks it failed_validation (never pushed);
    `files` has the rows moved per source file (their manifest counts moved with them)."""
    from .batches import quarantine_batch

    found = con.execute("SELECT table_names FROM ops.batches WHERE batch_id = ?", [batch_id]).fetchall()
    if not found:
        raise KeyError(f"no batch {batch_id!r}")
    tables = [t for t in (found[0][0] or []) if t in {c.fqn for c in dc.CONTRACTS}]
    results = run_health(con, tables, batch_id=batch_id) if tables else []
    failed: dict[str, list[str]] = {}
    for r in results:
        if r.status == "fail" and r.severity == "blocking":
            failed.setdefault(r.table, [])
            if r.rule not in failed[r.table]:
                failed[r.table].append(r.rule)
    moved, files = quarantine_batch(con, batch_id, failed, tables) if failed else (0, {})
    return {"batch_id": batch_id, "checks": len(results), "failed": failed, "rows_quarantined": moved, "files": files}
