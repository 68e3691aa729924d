"""Row-level quality rules compiled to SQL from the contracts (generated once, run anywhere).

Each check is (rule, condition, reason): `condition` is true on an offending row and
`reason` is a SQL string expression naming the offending values. Ingest evaluates them
on staged rows; the health checks evaluate the same SQL over whole tables. Table-level
rules (unique_key, no_placeholders, min_distinct, freshness ...) live with the health
checks, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

from data_contracts.model import Contract
from data_contracts.to_duckdb import literal, quote

# Lineage columns are filled by the loader itself, so a missing value there is our bug,
# not a property of the input row.
LOADER_FILLED = {"source", "source_file", "file_sha256", "batch_id", "ingested_at"}


@dataclass(frozen=True)
class RowCheck:
    rule: str
    condition: str
    reason: str
    columns: str = ""


def _ref(path: str) -> str:
    return ".".join(quote(p) for p in path.split("."))


def _not_finite(ref: str) -> str:
    """True for NaN and +/-inf in DuckDB and BigQuery alike (BigQuery has no isfinite; any comparison with
    NaN is false there, and DuckDB orders NaN above +inf, so abs(x) < inf is false for both)."""
    return f"NOT (abs({ref}) < CAST('inf' AS DOUBLE))"


def _show(path: str) -> str:
    return f"coalesce(CAST({_ref(path)} AS VARCHAR), 'NULL')"


def row_checks(contract: Contract) -> list[RowCheck]:
    checks: list[RowCheck] = []
    required = [c.name for c in contract.columns if c.mode == "REQUIRED" and c.name not in LOADER_FILLED]
    declared = [col for r in contract.rules_of("not_null") for col in r.columns if col not in LOADER_FILLED]
    for col in dict.fromkeys(list(contract.primary_key) + required + declared):
        checks.append(RowCheck("not_null", f"{_ref(col)} IS NULL", literal(f"{col} is missing"), col))
    for r in contract.rules_of("ohlc_sane"):
        o, h, lo, c = (_ref(x) for x in r.columns)
        prices = (o, h, lo, c)
        bad_price = " OR ".join(f"({p} IS NOT NULL AND ({_not_finite(p)} OR {p} <= 0))" for p in prices)
        # NULL comparisons yield NULL (not true): missing prices are not_null's business.
        in_range = [f"{lo} <= {o}", f"{o} <= {h}", f"{lo} <= {h}"]
        if not r.param("close_may_be_settlement"):
            in_range += [f"{lo} <= {c}", f"{c} <= {h}"]
        bad_order = f"NOT ({' AND '.join(in_range)})"
        shown = " || ' '  || ".join(f"'{n}=' || {_show(n)}" for n in r.columns)
        checks.append(RowCheck("ohlc_sane", f"({bad_price}) OR coalesce({bad_order}, false)", shown, ",".join(r.columns)))
    for r in contract.rules_of("positive"):
        for col in r.columns:
            ref = _ref(col)
            checks.append(
                RowCheck("positive", f"{ref} IS NOT NULL AND ({_not_finite(ref)} OR {ref} <= 0)", f"'{col}=' || {_show(col)} || ' is not > 0'", col)
            )
    for r in contract.rules_of("finite"):
        for col in r.columns:
            ref = _ref(col)
            checks.append(
                RowCheck("finite", f"{ref} IS NOT NULL AND {_not_finite(ref)}", f"'{col}=' || {_show(col)} || ' is not a finite number'", col)
            )
    for r in contract.rules_of("non_negative"):
        for col in r.columns:
            checks.append(RowCheck("non_negative", f"{_ref(col)} < 0", f"'{col}=' || {_show(col)} || ' is negative'", col))
    for r in contract.rules_of("value_range"):
        col = r.columns[0]
        lo, hi = r.param("low"), r.param("high")
        checks.append(
            RowCheck(
                "value_range",
                f"{_ref(col)} NOT BETWEEN {lo} AND {hi}",
                f"'{col}=' || {_show(col)} || ' outside [{lo}, {hi}]'",
                col,
            )
        )
    for r in contract.rules_of("forbidden_values"):
        col = r.columns[0]
        values = ", ".join(literal(v) for v in r.param("values"))
        checks.append(
            RowCheck("forbidden_values", f"{_ref(col)} IN ({values})", f"'{col}=' || {_show(col)} || ' is a placeholder value'", col)
        )
    for r in contract.rules_of("no_spreads"):
        col = r.columns[0]
        checks.append(
            RowCheck(
                "no_spreads",
                f"strpos({_ref(col)}, '-') > 0",
                f"'calendar spread ' || {_show(col)} || ' never reaches a price table'",
                col,
            )
        )
    for r in contract.rules_of("source_hierarchy"):
        col = r.columns[0]
        allowed = " OR ".join(
            f"({_ref(col)} = {literal(s.name)}" + (f" AND ({s.only_where}))" if s.only_where else ")") for s in contract.sources
        )
        names = ", ".join(sorted({s.name for s in contract.sources}))
        checks.append(
            RowCheck(
                "source_hierarchy",
                f"NOT coalesce({allowed}, false)",
                f"'source ' || {_show(col)} || ' is not allowed here (allowed: {names}, within their declared ranges)'",
                col,
            )
        )
    return checks


def first_violation(checks: list[RowCheck]) -> tuple[str, str]:
    """SQL expressions (rule, reason) of the first failing check on a row, NULL when none fails."""
    if not checks:
        return "CAST(NULL AS VARCHAR)", "CAST(NULL AS VARCHAR)"
    rule = "CASE " + " ".join(f"WHEN {c.condition} THEN {literal(c.rule)}" for c in checks) + " END"
    reason = "CASE " + " ".join(f"WHEN {c.condition} THEN {c.reason}" for c in checks) + " END"
    return rule, reason
