"""Constructors for the quality rules contracts declare (executed by the health checks).

Each kind is documented where it is constructed so a contract reads as a sentence.
"""

from __future__ import annotations

from typing import Any

from .model import Column, Rule


def _rule(kind: str, columns: tuple[str, ...] = (), severity: str = "blocking", **params: Any) -> Rule:
    return Rule(kind, tuple(columns), tuple(sorted(params.items())), severity)  # type: ignore[arg-type]


def not_null(*columns: str) -> Rule:
    """Every listed column is present on every row."""
    return _rule("not_null", columns)


def unique_key() -> Rule:
    """No two rows share the contract's primary key."""
    return _rule("unique_key")


def ohlc_sane(
    open_: str = "open", high: str = "high", low: str = "low", close: str = "close", close_may_be_settlement: bool = False
) -> Rule:
    """low <= open, close <= high and every price > 0. Where a source reports the settlement price as
    its close (Yahoo futures), the close may lie outside the traded range; say so explicitly."""
    return _rule("ohlc_sane", (open_, high, low, close), close_may_be_settlement=close_may_be_settlement)


def positive(*columns: str) -> Rule:
    """Values are strictly greater than zero where present."""
    return _rule("positive", columns)


def non_negative(*columns: str) -> Rule:
    """Values are >= 0 where present (volumes, counts)."""
    return _rule("non_negative", columns)


def finite(*columns: str) -> Rule:
    """Values are finite numbers where present: no NaN, inf or overflow (FRED CSVs are text, and a float
    parse turns 'NaN', 'inf', '-Infinity' or '1e999' into a DOUBLE that is no observation)."""
    return _rule("finite", columns)


def value_range(column: str, low: float, high: float) -> Rule:
    """low <= value <= high where present."""
    return _rule("value_range", (column,), low=low, high=high)


def no_placeholders(
    *columns: str, sentinels: tuple[float, ...] = (0.5, 1.0), window: int | None = 20, min_rows: int = 2
) -> Rule:
    """No sentinel constants (every value 0.5, or 1.0), no zero variance (one value on every row), judged
    when a column holds at least `min_rows` values; no column constant over `window` consecutive rows
    of its series (`window` None: no run check, for a field whose legitimate runs have no bound).
    A field that may legitimately hold one value for many rows declares both: `window` one more than
    its longest legitimate run, `min_rows` as large, so a batch of a few rows proves nothing."""
    if window is not None and window < 2:
        raise ValueError(f"no_placeholders window must be >= 2 rows, got {window}")
    if min_rows < 2:
        raise ValueError(f"no_placeholders min_rows must be >= 2 (variance needs two values), got {min_rows}")
    return _rule("no_placeholders", columns, sentinels=tuple(sentinels), window=window, min_rows=min_rows)


def no_placeholders_by_field(
    structs: tuple[Column, ...], cadence: dict[str, dict[str, Any]], default: dict[str, Any]
) -> tuple[Rule, ...]:
    """no_placeholders rules over every numeric (FLOAT64, INT64, NUMERIC, BOOL) field of `structs`,
    derived from the columns so a field added later is covered: `cadence` maps "struct.field" to the
    field's own no_placeholders parameters (window, min_rows), every other field takes `default`.
    BOOL fields have no sentinel (a boolean is 0/1 by nature; all-TRUE is zero variance). Fields with
    equal parameters share one rule, in column order. A cadence entry naming no numeric field raises."""
    numeric = ("FLOAT64", "INT64", "NUMERIC", "BOOL")
    fields = [(f"{s.name}.{f.name}", f.type) for s in structs for f in s.fields if f.type in numeric]
    stale = sorted(set(cadence) - {name for name, _ in fields})
    if stale:
        raise ValueError(f"no_placeholders cadence names fields that are not numeric struct fields: {stale}")
    groups: dict[tuple[tuple[str, Any], ...], list[str]] = {}
    for name, type_ in fields:
        params = {**default, **cadence.get(name, {})}
        if type_ == "BOOL":
            params["sentinels"] = ()
        groups.setdefault(tuple(sorted(params.items())), []).append(name)
    return tuple(no_placeholders(*cols, **dict(key)) for key, cols in groups.items())


def not_single_timestamp(column: str) -> Rule:
    """More than one distinct value in a time column when the table has more than one row."""
    return _rule("not_single_timestamp", (column,))


def forbidden_values(column: str, *values: str) -> Rule:
    """Values that mark a placeholder load (e.g. regime 'allhistory')."""
    return _rule("forbidden_values", (column,), values=values)


def min_distinct(column: str, minimum: int) -> Rule:
    """At least `minimum` distinct values (e.g. >= 7 regimes in a training set)."""
    return _rule("min_distinct", (column,), minimum=minimum)


def target_naming(horizon_column: str) -> Rule:
    """A table for horizon h carries target_h and no other horizon's target."""
    return _rule("target_naming", (horizon_column,))


def source_hierarchy(column: str) -> Rule:
    """Rows come only from the contract's allowed sources, each inside its `only_where`."""
    return _rule("source_hierarchy", (column,))


def freshness(column: str, max_age_days: int) -> Rule:
    """The newest value is no older than `max_age_days` (a warning: samples are historical)."""
    return _rule("freshness", (column,), severity="warning", max_age_days=max_age_days)


def no_spreads(column: str) -> Rule:
    """Calendar spreads (symbols like ZLF6-ZLH6) never reach a price table."""
    return _rule("no_spreads", (column,))


# --- rule kinds the legacy migration added (cbi_local/ingest/legacy.py declares where each applies) ---


def daily_grain(column: str) -> Rule:
    """A daily table holds dates: a time of day other than midnight (UTC) marks an intraday snapshot, never a session bar."""
    return _rule("daily_grain", (column,))


def canonical_symbol(column: str) -> Rule:
    """One series, one symbol: declared aliases (^GSPC/SPX, DX-Y.NYB/DXY) map to one symbol; an undeclared one is rejected."""
    return _rule("canonical_symbol", (column,))


def lossless_prices(*columns: str) -> Rule:
    """Prices keep their decimals: a price column stored as an integer was truncated (92 for 91.85) and is not loaded as a price."""
    return _rule("lossless_prices", columns)


def plausible_unit(column: str, p95_low: float, p95_high: float, by: str) -> Rule:
    """Per series (`by`), the 95th percentile of `column` lies in [p95_low, p95_high] of the declared unit;
    outside it the series is in another unit (degrees F) or mis-scaled, and is never loaded as if it were right."""
    return _rule("plausible_unit", (column,), p95_low=p95_low, p95_high=p95_high, by=by)
