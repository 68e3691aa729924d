"""Health checks: every quality rule a contract declares, measured in one pass per table.

The measurement of a table is ONE aggregate query (generated from the contract, in DuckDB
SQL; `bigquery_sql` transpiles the same text for tables that live in BigQuery). Sample
offending keys are fetched afterwards, only for rules that failed, with LIMIT. Results
(with history) go to monitoring.health_checks.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from typing import Any

import duckdb

import data_contracts as dc
from data_contracts.columns import HORIZONS
from data_contracts.model import Contract
from data_contracts.to_duckdb import quote, table_ref

from .rules_sql import _ref, row_checks

SAMPLE_LIMIT = 5


@dataclass
class CheckResult:
    rule: str
    table: str
    columns: str
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


def _placeholder_measures(contract: Contract, rule) -> list[Measure]:
    out = []
    sentinels = rule.param("sentinels", (0.5, 1.0))
    for col in rule.columns:
        ref = _ref(col)
        for s in sentinels:
            # Every present value equal to one sentinel: a placeholder column (0.5, all-1.0).
            out.append(
                Measure(
                    "no_placeholders", col,
                    f"(COUNT({ref}) > 1 AND COUNT({ref}) = COUNT(*) FILTER (WHERE {ref} = {s}))",
                    f"not every value = {s}", rule.severity, f"{ref} = {s}", "false",
                    f"{col}: every value is the placeholder {s}",
                )
            )
        out.append(
            Measure(
                "no_placeholders", col,
                f"(COUNT({ref}) > 1 AND min({ref}) = max({ref}))",
                "more than one distinct value", rule.severity, f"{ref} IS NOT NULL", "false",
                f"{col}: zero variance (one value on every row)",
            )
        )
    return out


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
            keys = ", ".join(_ref(k) for k in contract.primary_key)
            out.append(
                Measure(
                    "unique_key", ",".join(contract.primary_key),
                    f"(COUNT(*) - COUNT(DISTINCT struct_pack({keys})))", "0 duplicate keys", rule.severity,
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


def table_query(contract: Contract, where: str | None = None) -> tuple[str, list[Measure]]:
    ms = measures(contract)
    cols = ",\n  ".join(f"{m.expr} AS m{i}" for i, m in enumerate(ms)) or "COUNT(*) AS m0"
    sql = f"SELECT COUNT(*) AS _rows,\n  {cols}\nFROM {table_ref(contract)}"
    if where:
        sql += f"\nWHERE {where}"
    return sql, ms


def bigquery_sql(duckdb_sql: str) -> str:
    """The same query for BigQuery (identifier quoting, COUNT FILTER, struct_pack ...)."""
    import sqlglot

    return sqlglot.transpile(duckdb_sql, read="duckdb", write="bigquery")[0]


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


def check_table(
    con: duckdb.DuckDBPyConnection, contract: Contract, where: str | None = None, today: date | None = None
) -> list[CheckResult]:
    today = today or datetime.now(timezone.utc).date()
    sql, ms = table_query(contract, where)
    row = con.execute(sql).fetchall()[0]
    n_rows = row[0]
    results = []
    for i, m in enumerate(ms):
        status, measured = _judge(m, row[i + 1], today)
        if n_rows == 0 and m.judge != "zero":
            status, measured = "pass", measured  # an empty table has no placeholders to find; coverage says it is empty
        if status == "fail" and m.severity == "warning":
            status = "warn"
        sample: list[Any] = []
        if status != "pass":
            sample = _sample(con, contract, m, where)
        message = "ok" if status == "pass" else m.message
        results.append(CheckResult(m.rule, contract.fqn, m.columns, status, m.severity, measured, m.threshold, message, sample))
    for problem in target_naming_violations(contract):
        results.append(CheckResult("target_naming", contract.fqn, "", "fail", "blocking", 1.0, "target matches horizon", problem, []))
    return results


def _sample(con: duckdb.DuckDBPyConnection, contract: Contract, m: Measure, where: str | None) -> list[Any]:
    keys = ", ".join(_ref(k) for k in contract.primary_key)
    filters = [f for f in (where, m.sample_where) if f]
    if m.rule == "unique_key":
        sql = (
            f"SELECT to_json(struct_pack({keys})) AS k, COUNT(*) AS n FROM {table_ref(contract)}"
            + (f" WHERE {where}" if where else "")
            + f" GROUP BY ALL HAVING COUNT(*) > 1 LIMIT {SAMPLE_LIMIT}"
        )
        return [{"key": json.loads(k), "rows": n} for k, n in con.execute(sql).fetchall()]
    if not filters:
        return []
    sql = f"SELECT to_json(t) FROM {table_ref(contract)} t WHERE " + " AND ".join(f"({f})" for f in filters) + f" LIMIT {SAMPLE_LIMIT}"
    return [json.loads(r[0]) for r in con.execute(sql).fetchall()]


def run_health(
    con: duckdb.DuckDBPyConnection,
    tables: list[str] | None = None,
    batch_id: str | None = None,
    record: bool = True,
    today: date | None = None,
) -> list[CheckResult]:
    """Check the named tables (default: all), optionally only one batch's rows; record the results."""
    contracts = [dc.get(t) for t in tables] if tables else list(dc.CONTRACTS)
    results: list[CheckResult] = []
    for contract in contracts:
        where = None
        if batch_id is not None:
            if "batch_id" not in contract.column_names:
                continue
            where = "batch_id = '" + batch_id.replace("'", "''") + "'"
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


def failures(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.status == "fail"]


def validate_batch(con: duckdb.DuckDBPyConnection, batch_id: str) -> dict[str, Any]:
    """The gate before a push: table-level rules over the batch's own rows. A blocking failure
    moves the batch's rows into the quarantine and marks it failed_validation (never pushed)."""
    from .quarantine import quarantine_batch

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
    moved = quarantine_batch(con, batch_id, failed) if failed else 0
    return {"batch_id": batch_id, "checks": len(results), "failed": failed, "rows_quarantined": moved}
