"""Legacy BigQuery exports (`dataset.table.parquet`) -> the new layout, with every defect reported by rule.

The mapping is declared below (`LEGACY_TABLES`, `SOURCE_NAMES`, `SYMBOLS`) and nothing else decides
where a legacy row goes:

* Yahoo-derived daily prices (soybean oil/meal/soybeans, crude, S&P 500, dollar index, 10y yield)
  -> market_data.yahoo_historical, one symbol per series (`^GSPC`/`SPX` -> SPX, `DX-Y.NYB`/`DXY` -> DXY,
  `ZL=F` -> ZL ...), the legacy spelling in source_symbol, the legacy source_name and table kept.
  ZL lands with symbol 'ZL' (the continuous series stitches it before 2010-06-06).
* cftc_cot -> raw_intelligence.cftc_cot; weather_data -> raw_intelligence.weather_daily.
* market_data.hourly_prices -> market_data.yahoo_quote_snapshots: the rows are not hourly bars but Yahoo
  quote snapshots (price + volume whenever a cron job ran, 2025-10-30..11-04). They are not daily prices
  and not bars, so they get their own research table (sync local) rather than posing as either.

Each legacy row ends loaded, quarantined (monitoring.quarantine, with the rule) or skipped as a
duplicate; the counts add up per file (ops.file_manifest) and in total. Set-based throughout: one SQL
statement builds every row of a target table from all its files at once; Python only loops over the
declared tables and the files' schemas.

Rules applied to legacy rows (data_contracts/rules.py kinds), each reported with its table and samples:

* daily_grain         intraday timestamps in a daily table (cron snapshots)          -> quarantined
* not_null            null provenance (source_name, provenance_uuid, ingest time)    -> quarantined
* canonical_symbol    aliases of one series are normalised; unknown symbols          -> quarantined
* source_hierarchy    mixed source_name spellings are ranked by SOURCE_NAMES        -> precedence
* not_single_timestamp a time column whose rows all share one value: on the row's
                      date column -> quarantined; on another column -> reported (not migrated)
* no_placeholders     a contract column constant over a whole series (all zero)      -> loaded as NULL
* lossless_prices     prices exported as INT64 (truncated: 92 for 91.85)             -> loaded as NULL
* plausible_unit      a station series not in degrees C (degrees F, or scaled 1/100) -> quarantined
* unique_key          exact copies (appended reruns) -> duplicates; same key with other values ->
                      resolved by precedence, losers logged to monitoring.dedup_conflicts
* the target contract's row rules (ohlc_sane, not_null, value_range ...)             -> quarantined

Precedence (which row a key keeps): the declared rank of its legacy source_name (1 wins), then the
more complete row (more non-NULL values), then the latest legacy ingest time. A loser is counted as a
duplicate of the kept row (the core's `_duplicate` marker) and logged with both payloads.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

import data_contracts as dc
from data_contracts import rules as r
from data_contracts.model import Contract, Rule
from data_contracts.to_duckdb import column_type, literal, quote, table_ref

from .. import health
from ..rules_sql import LOADER_FILLED, first_violation, row_checks
from .core import FileCounts, FileIdentity, IngestRun, identify

RECORD_SCHEMA = "legacy_parquet"
SAMPLES = 3


# --- the declared mapping ------------------------------------------------------------------------


@dataclass(frozen=True)
class LegacyTable:
    name: str  # legacy dataset.table; the export is `<name>.parquet`
    target: str  # contract fqn
    time_column: str  # legacy column holding the observation date / time
    checks: tuple[Rule, ...]
    rename: tuple[tuple[str, str], ...] = ()  # (target column, legacy column) where the names differ
    series: str | None = None  # legacy column naming the series (placeholders are judged per series)
    note: str = ""

    @property
    def file_name(self) -> str:
        return f"{self.name}.parquet"

    def legacy_column(self, target_column: str) -> str:
        return dict(self.rename).get(target_column, target_column)


_PRICE_CHECKS = (
    r.daily_grain("time"),
    r.not_null("source_name"),
    r.canonical_symbol("symbol"),
    r.source_hierarchy("source_name"),
    r.lossless_prices("open", "high", "low", "close"),
    r.not_single_timestamp("time"),
    r.unique_key(),
)


def _prices(table: str, note: str, checks: tuple[Rule, ...] = _PRICE_CHECKS, time_column: str = "time") -> LegacyTable:
    return LegacyTable(
        f"forecasting_data_warehouse.{table}", "market_data.yahoo_historical", time_column, checks,
        rename=(("date", time_column), ("source_symbol", "symbol")), series="symbol", note=note,
    )


LEGACY_TABLES: tuple[LegacyTable, ...] = (
    _prices("soybean_oil_prices_historical_view", "ZL 2000-11..2025-11, one row per day, final values: ranks first."),
    _prices("soybean_oil_prices", "ZL: 2000-2019 backfill, 2020-10.. daily cron with intraday snapshots, Nov-5 emergency rows."),
    _prices("soybean_meal_prices", "ZM, same loaders as soybean_oil_prices."),
    _prices("soybean_prices", "ZS, same loaders; the backfill appended three times."),
    _prices("crude_oil_prices", "CL; the backfill's open/high/low were exported as INT64 (truncated)."),
    _prices("sp500_prices", "S&P 500 as SPX (backfill to 2017) and ^GSPC (2018..): one series."),
    _prices("usd_index_prices", "Dollar index as DXY (backfill, INT64 open/high/low) and DX-Y.NYB (no provenance): one series."),
    _prices(
        "treasury_prices",
        "^TNX. `time` is the export's load timestamp (one value on all 1,961 rows); `date` holds the "
        "observation dates (distinct, and within 6bp of FRED DGS10 on 1,943 of them), so `date` is the date.",
        checks=(
            r.daily_grain("date"), r.not_null("source_name"), r.canonical_symbol("symbol"),
            r.source_hierarchy("source_name"), r.lossless_prices("open", "high", "low", "close"),
            r.not_single_timestamp("time"), r.not_single_timestamp("date"), r.unique_key(),
        ),
        time_column="date",
    ),
    LegacyTable(
        "forecasting_data_warehouse.cftc_cot", "raw_intelligence.cftc_cot", "report_date",
        checks=(
            r.not_null("source_name"), r.source_hierarchy("source_name"),
            r.no_placeholders("managed_money_long", "managed_money_short", "managed_money_net",
                              "commercial_long", "commercial_short", "commercial_net"),
            r.not_single_timestamp("report_date"), r.unique_key(),
        ),
        series="contract_code",
        note="Soybean oil COT 2006-2025; managed_money_* are all zero (placeholders); reports re-appended.",
    ),
    LegacyTable(
        "forecasting_data_warehouse.weather_data", "raw_intelligence.weather_daily", "date",
        checks=(
            r.not_null("source_name"), r.source_hierarchy("source_name"),
            r.plausible_unit("temp_max", 8.0, 50.0, by="station_id"),
            r.not_single_timestamp("date"), r.unique_key(),
        ),
        series="station_id",
        note="NOAA GHCND / INMET / Open-Meteo stations 2023-2025; some series are degrees F or scaled 1/100.",
    ),
    LegacyTable(
        "market_data.hourly_prices", "market_data.yahoo_quote_snapshots", "timestamp",
        checks=(r.not_null("source"), r.canonical_symbol("symbol"), r.source_hierarchy("source"), r.unique_key()),
        rename=(("ts_event", "timestamp"), ("source_symbol", "symbol"), ("source_name", "source")),
        series="symbol",
        note="Yahoo quote snapshots, not hourly bars: a research table of their own.",
    ),
)
BY_FILE = {t.file_name: t for t in LEGACY_TABLES}


@dataclass(frozen=True)
class SourceName:
    source: str  # the contract source the rows are allowed in as
    rank: int  # precedence within a target table: 1 wins
    why: str


# Every legacy source_name spelling, the source it is, and its precedence. Unlisted -> quarantined.
SOURCE_NAMES: dict[str, SourceName] = {
    "yahoo_finance_comprehensive": SourceName("yahoo", 1, "curated ZL series: agrees with the backfill on every day and has the final 2025 values"),
    "yahoo_finance_comprehensive_historical": SourceName("yahoo", 2, "full-OHLCV backfill 2000-2019"),
    "yahoo_finance": SourceName("yahoo", 3, "full-OHLCV backfill 2018-2025 (sp500, treasury); quotes in hourly_prices"),
    "yahoo_realtime_emergency_nov5": SourceName("yahoo", 4, "full-OHLCV re-download of Oct 2025; matches the final series where the cron row was partial"),
    "Yahoo_Finance": SourceName("yahoo", 5, "daily cron: partial-day bars and close-only rows"),
    "yahoo_finance_fallback": SourceName("yahoo", 6, "fallback quote fetcher"),
    "CFTC_API": SourceName("cftc", 1, "CFTC public reporting API"),
    "NOAA_GHCND": SourceName("noaa", 1, "NOAA GHCN-Daily (label also used on INMET_* station rows)"),
    "open_meteo": SourceName("open_meteo", 2, "Open-Meteo daily"),
    "OpenMeteo_Midwest": SourceName("open_meteo", 3, "Open-Meteo Midwest job (degrees F)"),
}

# Series symbols: every spelling the legacy tables use -> the one symbol of the series.
SYMBOLS: dict[str, str] = {
    "ZL": "ZL", "ZL=F": "ZL",
    "ZM": "ZM", "ZM=F": "ZM",
    "ZS": "ZS", "ZS=F": "ZS",
    "ZC=F": "ZC", "ZW=F": "ZW", "GC=F": "GC",
    "CL": "CL", "CL=F": "CL",
    "SPX": "SPX", "^GSPC": "SPX",
    "DXY": "DXY", "DX-Y.NYB": "DXY",
    "^TNX": "TNX",
    "^VIX": "VIX", "VIX": "VIX",
}

PROVENANCE_COLUMNS = ("source_name", "source", "provenance_uuid", "ingest_timestamp_utc", "ingest_timestamp", "confidence_score")
INGEST_TIME_COLUMNS = ("ingest_timestamp_utc", "ingest_timestamp")
_INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}


# --- the report ------------------------------------------------------------------------------------


@dataclass
class Defect:
    defect: str
    rule: str
    legacy_table: str
    target: str
    rows: int
    resolution: str
    detail: str
    samples: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class MigrationReport:
    batch_id: str
    legacy_dir: str
    files: dict[str, FileCounts] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    defects: list[Defect] = field(default_factory=list)
    dedup_conflicts: int = 0
    mapping: list[dict[str, str]] = field(default_factory=list)

    @property
    def totals(self) -> FileCounts:
        t = FileCounts()
        for c in self.files.values():
            t.add(c)
        return t

    @property
    def balanced(self) -> bool:
        return self.totals.balanced and all(c.balanced for c in self.files.values())

    def by_rule(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for d in self.defects:
            e = out.setdefault(d.rule, {"rows": 0, "defects": 0, "tables": []})
            e["rows"] += d.rows
            e["defects"] += 1
            if d.legacy_table not in e["tables"]:
                e["tables"].append(d.legacy_table)
        return dict(sorted(out.items()))

    def as_dict(self) -> dict[str, Any]:
        t = self.totals
        return {
            "batch_id": self.batch_id,
            "legacy_dir": self.legacy_dir,
            "files": {p: asdict(c) for p, c in self.files.items()},
            "unchanged_files": self.unchanged,
            "unmapped_files": self.unmapped,
            "errors": self.errors,
            "totals": {k: getattr(t, k) for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")},
            "balanced": self.balanced,
            "dedup_conflicts": self.dedup_conflicts,
            "by_rule": self.by_rule(),
            "defects": [asdict(d) for d in self.defects],
            "mapping": self.mapping,
        }


# --- SQL helpers ----------------------------------------------------------------------------------


def _q(name: str) -> str:
    return quote(name)


def _checks(table: LegacyTable, kind: str) -> list[Rule]:
    return [c for c in table.checks if c.kind == kind]


def _data_columns(contract: Contract) -> list[str]:
    """The contract columns that identify a row's content (what the core hashes)."""
    return [c.name for c in contract.columns if c.name not in LOADER_FILLED]


def _value_columns(contract: Contract) -> list[str]:
    return [c.name for c in contract.columns if c.type in ("FLOAT64", "INT64") and c.name not in contract.primary_key]


def _stage_columns(contract: Contract) -> list[str]:
    return [c.name for c in contract.columns if c.name not in ("source_file", "file_sha256", "batch_id", "ingested_at")]


@dataclass
class _FilePlan:
    fid: FileIdentity
    table: LegacyTable
    types: dict[str, str]
    nulled: dict[str, str] = field(default_factory=dict)  # target column -> why it loads as NULL (all rows)
    nulled_series: dict[str, list[str]] = field(default_factory=dict)  # target column -> series whose values are placeholders
    single_ts: dict[str, Any] = field(default_factory=dict)  # legacy column -> the one value all rows share
    rows: int = 0


def _utc_ts(expr: str, legacy_type: str) -> str:
    """A legacy DATE / TIMESTAMP / TIMESTAMPTZ as a UTC wall-clock TIMESTAMP (never the session time zone)."""
    if legacy_type.startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone('UTC', {expr})"
    return f"CAST({expr} AS TIMESTAMP)"


def _inspect(con: duckdb.DuckDBPyConnection, plan: _FilePlan) -> None:
    """Schema-level and whole-column checks of one file (metadata and one aggregate query, no row loop)."""
    t, path = plan.table, plan.fid.path
    contract = dc.get(t.target)
    aggs = ["count(*)"]
    ts_cols = [c.columns[0] for c in _checks(t, "not_single_timestamp") if c.columns[0] in plan.types]
    for col in ts_cols:
        aggs += [f"count(DISTINCT {_q(col)})", f"CAST(min({_q(col)}) AS VARCHAR)"]
    res = con.execute(f"SELECT {', '.join(aggs)} FROM read_parquet({literal(str(path))})").fetchall()[0]
    plan.rows = res[0]
    for i, col in enumerate(ts_cols):
        distinct, value = res[1 + 2 * i], res[2 + 2 * i]
        if plan.rows > 1 and distinct == 1:
            plan.single_ts[col] = value
    for rule in _checks(t, "lossless_prices"):
        for target_col in rule.columns:
            legacy_type = plan.types.get(t.legacy_column(target_col))
            if legacy_type in _INT_TYPES and contract.column(target_col).type == "FLOAT64":
                plan.nulled[target_col] = f"exported as {legacy_type}: values truncated to whole numbers"
    for rule in _checks(t, "no_placeholders"):
        window = int(rule.param("window", 20))
        cols = [c for c in rule.columns if t.legacy_column(c) in plan.types]
        if not cols or not t.series or t.series not in plan.types:
            continue
        # A column constant over a whole series (longer than the rule's window) is a placeholder, not data.
        sel = ", ".join(
            f"count({_q(t.legacy_column(c))}) = count(*) AND count(*) > {window} AND min({_q(t.legacy_column(c))}) "
            f"IS NOT DISTINCT FROM max({_q(t.legacy_column(c))}) AS {_q(c)}"
            for c in cols
        )
        rows = con.execute(
            f"SELECT {_q(t.series)}, {sel} FROM read_parquet({literal(str(path))}) GROUP BY 1 ORDER BY 1"
        ).fetchall()
        for row in rows:
            for c, flag in zip(cols, row[1:]):
                if flag:
                    plan.nulled_series.setdefault(c, []).append(row[0])


def _select_sql(plan: _FilePlan) -> str:
    """One file's rows in the target's shape, with the reader rules and the precedence inputs."""
    t, types = plan.table, plan.types
    contract = dc.get(t.target)
    path = str(plan.fid.path)
    src_col = "source_name" if "source_name" in types else ("source" if "source" in types else None)
    time_col, time_type = t.time_column, types[t.time_column]
    cols: list[str] = []
    cast_rules: list[tuple[str, str]] = []
    for col in contract.columns:
        name = col.name
        if name in ("source_file", "file_sha256", "batch_id", "ingested_at"):
            continue
        ctype = column_type(col)
        if name == "source":
            cols.append(f"sn.source AS {_q(name)}")
        elif name == "legacy_table":
            cols.append(f"{literal(t.name)} AS {_q(name)}")
        elif name == time_col or t.legacy_column(name) == time_col:
            expr = f"t.{_q(time_col)}"
            cols.append(
                f"CAST({_utc_ts(expr, time_type)} AS DATE) AS {_q(name)}" if col.type == "DATE"
                else f"CAST({expr} AS {ctype}) AS {_q(name)}"
            )
        elif name == "symbol" and _checks(t, "canonical_symbol"):
            cols.append(f"sym.canonical AS {_q(name)}")
        elif name in plan.nulled:
            cols.append(f"CAST(NULL AS {ctype}) AS {_q(name)}")
        elif t.legacy_column(name) in types:
            expr = f"t.{_q(t.legacy_column(name))}"
            if name in plan.nulled_series:
                series = ", ".join(literal(s) for s in plan.nulled_series[name])
                expr = f"CASE WHEN t.{_q(t.series)} IN ({series}) THEN NULL ELSE {expr} END"
            if col.type == "INT64" and types[t.legacy_column(name)] in ("DOUBLE", "FLOAT", "DECIMAL"):
                cast_rules.append(
                    (f"{expr} IS NOT NULL AND {expr} <> round({expr})",
                     f"'{name}=' || CAST({expr} AS VARCHAR) || ' is not a whole number'")
                )
            cols.append(f"CAST({expr} AS {ctype}) AS {_q(name)}")
        else:
            cols.append(f"CAST(NULL AS {ctype}) AS {_q(name)}")

    # Reader rules, first failing wins (order = how the row is best explained).
    conds: list[tuple[str, str, str]] = []
    for rule in _checks(t, "daily_grain"):
        c = rule.columns[0]
        if c in types and types[c] != "DATE":
            ts = _utc_ts(f"t.{_q(c)}", types[c])
            src_expr = f"t.{_q(src_col)}" if src_col else "NULL"
            conds.append(("daily_grain", f"CAST({ts} AS TIME) <> TIME '00:00:00'",
                          f"'intraday {c} ' || CAST(t.{_q(c)} AS VARCHAR) || ' (' || coalesce(CAST({src_expr} AS VARCHAR), 'no source') || ') in a daily table: a snapshot, not a session bar'"))
    for rule in _checks(t, "not_null"):
        c = rule.columns[0]
        if c in types:
            prov = [p for p in PROVENANCE_COLUMNS if p in types]
            shown = " || ', ' || ".join(f"'{p}=' || coalesce(CAST(t.{_q(p)} AS VARCHAR), 'NULL')" for p in prov)
            conds.append(("not_null", f"t.{_q(c)} IS NULL", f"'null provenance: ' || {shown}"))
        else:
            conds.append(("not_null", "true", literal(f"the export has no {c} column: no provenance")))
    for rule in _checks(t, "canonical_symbol"):
        c = rule.columns[0]
        conds.append(("canonical_symbol", "sym.canonical IS NULL",
                      f"'symbol ' || coalesce(t.{_q(c)}, 'NULL') || ' is not a declared spelling of any series'"))
    for rule in _checks(t, "source_hierarchy"):
        c = rule.columns[0]
        if c in types:
            conds.append(("source_hierarchy", "sn.source IS NULL",
                          f"'legacy source ' || coalesce(t.{_q(c)}, 'NULL') || ' is not a declared source of {t.target}'"))
    for rule in _checks(t, "not_single_timestamp"):
        c = rule.columns[0]
        if c == time_col and c in plan.single_ts:
            conds.append(("not_single_timestamp", "true",
                          literal(f"all {plan.rows} rows share {c} = {plan.single_ts[c]}: not observation dates")))
    for rule in _checks(t, "plausible_unit"):
        c, by = rule.columns[0], rule.param("by")
        lo, hi = rule.param("p95_low"), rule.param("p95_high")
        conds.append(("plausible_unit", f"u._p95 > {hi} OR (u._days >= 365 AND u._p95 < {lo})",
                      f"'{by} ' || t.{_q(by)} || ' (' || coalesce(t.{_q(src_col)}, 'NULL') || '): p95 of {c} = ' || "
                      f"CAST(round(u._p95, 2) AS VARCHAR) || ' over ' || CAST(u._days AS VARCHAR) || "
                      f"' days, outside [{lo}, {hi}] degrees C: another unit or mis-scaled; not converted'"))
    for cond, reason in cast_rules:
        conds.append(("bad_type", cond, reason))
    rule_sql = "CASE " + " ".join(f"WHEN {c} THEN {literal(k)}" for k, c, _ in conds) + " END" if conds else "NULL"
    reason_sql = "CASE " + " ".join(f"WHEN {c} THEN {e}" for _, c, e in conds) + " END" if conds else "NULL"

    complete = " + ".join(f"CAST({_q(c)} IS NOT NULL AS INTEGER)" for c in _value_columns(contract)) or "0"
    ingest = next((c for c in INGEST_TIME_COLUMNS if c in types), None)
    ingest_sql = f"CAST(t.{_q(ingest)} AS TIMESTAMPTZ)" if ingest else "CAST(NULL AS TIMESTAMPTZ)"
    joins = [f"LEFT JOIN _lg_sources sn ON sn.source_name = t.{_q(src_col)}" if src_col else
             "LEFT JOIN (SELECT NULL AS source, NULL AS rank) sn ON true"]
    sym_rule = _checks(t, "canonical_symbol")
    if sym_rule:
        joins.append(f"LEFT JOIN _lg_symbols sym ON sym.alias = t.{_q(sym_rule[0].columns[0])}")
    for rule in _checks(t, "plausible_unit"):
        c, by = rule.columns[0], rule.param("by")
        grp = f"{_q(by)}, {_q(src_col)}" if src_col else _q(by)
        joins.append(
            f"LEFT JOIN (SELECT {grp}, quantile_cont({_q(c)}, 0.95) AS _p95, "
            f"date_diff('day', min({_q(time_col)}), max({_q(time_col)})) + 1 AS _days "
            f"FROM read_parquet({literal(path)}) GROUP BY ALL) u ON u.{_q(by)} IS NOT DISTINCT FROM t.{_q(by)}"
            + (f" AND u.{_q(src_col)} IS NOT DISTINCT FROM t.{_q(src_col)}" if src_col else "")
        )
    orig = "to_json(t)"
    src_ref = f"t.{_q(src_col)}" if src_col else "NULL"
    return f"""
        SELECT *, {complete} AS _complete FROM (
            SELECT {", ".join(cols)},
                   {literal(path)} AS source_file, CAST(t.file_row_number + 1 AS BIGINT) AS record_number,
                   {rule_sql} AS _rule, {reason_sql} AS _reason,
                   {literal(t.name)} AS _legacy, {src_ref} AS _srcname,
                   sn.rank AS _rank, {ingest_sql} AS _ingest, CAST({orig} AS VARCHAR) AS _orig
            FROM read_parquet({literal(path)}, file_row_number = true) t
            {" ".join(joins)}
        )
    """


# --- the migration ----------------------------------------------------------------------------------


def _register_mapping(con: duckdb.DuckDBPyConnection) -> None:
    con.register("_lg_src_s", pa.table({
        "source_name": list(SOURCE_NAMES), "source": [s.source for s in SOURCE_NAMES.values()],
        "rank": [s.rank for s in SOURCE_NAMES.values()],
    }))
    con.execute("CREATE OR REPLACE TEMP TABLE _lg_sources AS SELECT * FROM _lg_src_s")
    con.unregister("_lg_src_s")
    con.register("_lg_src_y", pa.table({"alias": list(SYMBOLS), "canonical": list(SYMBOLS.values())}))
    con.execute("CREATE OR REPLACE TEMP TABLE _lg_symbols AS SELECT * FROM _lg_src_y")
    con.unregister("_lg_src_y")


def _build(con: duckdb.DuckDBPyConnection, contract: Contract, plans: list[_FilePlan]) -> None:
    """_lg: every row of the target's files, validated and ranked (set-based)."""
    union = "\nUNION ALL BY NAME\n".join(_select_sql(p) for p in plans)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _lg AS {union}")
    vrule, vreason = first_violation(row_checks(contract))
    data = _data_columns(contract)
    values = _value_columns(contract)
    pk = ", ".join(_q(k) for k in contract.primary_key)
    h = "md5(CAST(to_json(struct_pack(" + ", ".join(f"{_q(c)} := {_q(c)}" for c in data) + ")) AS VARCHAR))"
    vh = "md5(CAST(to_json(struct_pack(" + ", ".join(f"{_q(c)} := {_q(c)}" for c in values) + ")) AS VARCHAR))"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _lg AS
        SELECT *, _rule IS NULL AND _vrule IS NULL AS _valid FROM (
            SELECT *, CASE WHEN _rule IS NULL THEN {vrule} END AS _vrule,
                      CASE WHEN _rule IS NULL THEN {vreason} END AS _vreason,
                      {h} AS _hash, {vh} AS _vhash
            FROM _lg
        )
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _lg AS
        SELECT *,
               CASE WHEN _valid THEN row_number() OVER w END AS _pos,
               CASE WHEN _valid THEN first_value(_hash) OVER w END AS _win_hash,
               CASE WHEN _valid THEN first_value(_vhash) OVER w END AS _win_vhash,
               CASE WHEN _valid THEN first_value(_rank) OVER w END AS _win_rank,
               CASE WHEN _valid THEN first_value(_legacy || ' / ' || coalesce(_srcname, 'NULL')) OVER w END AS _win_source
        FROM _lg
        WINDOW w AS (PARTITION BY _valid, {pk}
                     ORDER BY _rank NULLS LAST, _complete DESC, _ingest DESC NULLS LAST, source_file, record_number)
        """
    )
    con.execute("ALTER TABLE _lg ADD COLUMN _loser BOOLEAN")
    con.execute("UPDATE _lg SET _loser = coalesce(_valid AND _pos > 1 AND _hash <> _win_hash, false)")


def _stage(con: duckdb.DuckDBPyConnection, run: IngestRun, contract: Contract, todo: list[FileIdentity]) -> int:
    """Stage the winners (pass 1), then the precedence losers, marked duplicates of what was kept (pass 2)."""
    paths = [str(f.path) for f in todo]
    cols = _stage_columns(contract)
    sel = ", ".join(_q(c) for c in cols)
    con.execute("CREATE OR REPLACE TEMP TABLE _lg_todo AS SELECT unnest(?) AS source_file", [paths])
    pass1 = con.sql(
        f"SELECT {sel}, source_file, record_number, coalesce(_rule, _vrule) AS _rule, coalesce(_reason, _vreason) AS _reason "
        "FROM _lg WHERE NOT _loser AND source_file IN (SELECT source_file FROM _lg_todo)"
    )
    run.stage(contract, pass1, todo)

    target = table_ref(contract)
    on = " AND ".join(f"t.{_q(k)} = l.{_q(k)}" for k in contract.primary_key)
    losers = "FROM _lg l WHERE l._loser AND l.source_file IN (SELECT source_file FROM _lg_todo)"
    n = con.execute(f"SELECT count(*) {losers}").fetchall()[0][0]
    if not n:
        return 0
    # A loser whose key is in the table is a duplicate (its own row stays in the payload log below);
    # a loser whose winner did not load (never expected) competes on its own values, so nothing is lost.
    pass2 = con.sql(
        f"""
        SELECT {", ".join(f"l.{_q(c)}" for c in cols)}, l.source_file, l.record_number, l._rule, l._reason,
               EXISTS (SELECT 1 FROM {target} t WHERE {on}) AS _duplicate
        FROM _lg l
        WHERE l._loser AND l.source_file IN (SELECT source_file FROM _lg_todo)
        """
    )
    # Log before staging pass 2 so the log names the row kept in the table (from this or an earlier batch).
    data = _data_columns(contract)
    kept = "to_json(struct_pack(" + ", ".join(f"{_q(c)} := t.{_q(c)}" for c in data) + ", source_file := t.source_file, batch_id := t.batch_id))"
    key = "to_json(struct_pack(" + ", ".join(f"{_q(k)} := l.{_q(k)}" for k in contract.primary_key) + "))"
    now = datetime.now(timezone.utc)
    con.execute(
        f"""
        INSERT INTO monitoring.dedup_conflicts (conflict_id, created_at, table_name, key_values, kept_source,
               dropped_source, kept_payload, dropped_payload, reason, batch_id)
        SELECT CAST(uuid() AS VARCHAR), ?, ?, CAST({key} AS VARCHAR),
               regexp_extract(t.source_file, '([^/\\\\]+)\\.parquet$', 1) || ' / ' || coalesce(t.source_name, 'NULL'),
               l._legacy || ' / ' || coalesce(l._srcname, 'NULL'),
               CAST({kept} AS VARCHAR),
               CAST(to_json(struct_pack(source_file := l.source_file, record_number := l.record_number,
                                        row := CAST(l._orig AS JSON))) AS VARCHAR),
               CASE WHEN l._rank IS DISTINCT FROM l._win_rank
                    THEN 'precedence: ' || l._win_source || ' (rank ' || CAST(l._win_rank AS VARCHAR) || ') over '
                         || l._legacy || ' / ' || coalesce(l._srcname, 'NULL') || ' (rank ' || CAST(l._rank AS VARCHAR) || ')'
                    ELSE 'same source rank: kept the more complete, then the later-ingested row' END
               || CASE WHEN l._vhash = l._win_vhash THEN '; values identical' ELSE '; values differ' END,
               ?
        FROM _lg l JOIN {target} t ON {on}
        WHERE l._loser AND l.source_file IN (SELECT source_file FROM _lg_todo)
        """,
        [now, contract.fqn, run.batch_id],
    )
    logged = con.execute("SELECT count(*) FROM monitoring.dedup_conflicts WHERE batch_id = ? AND table_name = ?",
                         [run.batch_id, contract.fqn]).fetchall()[0][0]
    run.stage(contract, pass2, todo)
    return logged


def _samples(con: duckdb.DuckDBPyConnection, where: str, order: str = "source_file, record_number") -> list[dict[str, Any]]:
    rows = con.execute(
        f"SELECT source_file, record_number, _orig FROM _lg WHERE {where} ORDER BY {order} LIMIT {SAMPLES}"
    ).fetchall()
    return [{"file": Path(f).name, "record_number": n, "row": json.loads(o)} for f, n, o in rows]


def _defects(con: duckdb.DuckDBPyConnection, contract: Contract, plans: list[_FilePlan]) -> list[Defect]:
    """Every defect found in the target's legacy rows, by rule, with samples (read from _lg)."""
    out: list[Defect] = []
    fqn = contract.fqn

    def add(defect: str, rule: str, legacy: str, rows: int, resolution: str, detail: str, where: str | None = None,
            samples: list[dict[str, Any]] | None = None, order: str = "source_file, record_number") -> None:
        if rows:
            out.append(Defect(defect, rule, legacy, fqn, rows, resolution, detail,
                              samples if samples is not None else (_samples(con, where, order) if where else [])))

    for p in plans:
        t = p.table
        lt = literal(t.name)
        # Mixed source_name values within one legacy table.
        names = con.execute(
            f"SELECT _srcname, count(*) FROM _lg WHERE _legacy = {lt} GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        if len(names) > 1:
            # Rows counted: those under a spelling other than the table's main one.
            add("mixed source_name values", "source_hierarchy", t.name, sum(n for _, n in names[1:]), "precedence",
                "spellings: " + ", ".join(f"{s if s is not None else 'NULL'} ({n})" for s, n in names)
                + "; resolved by the declared SOURCE_NAMES ranks",
                samples=[s for name, _ in names for s in _samples(
                    con, f"_legacy = {lt} AND _srcname IS NOT DISTINCT FROM {literal(name)}")[:1]])
        # Several spellings of one series.
        if _checks(t, "canonical_symbol"):
            aliases = con.execute(
                f"""SELECT symbol, list(DISTINCT source_symbol ORDER BY source_symbol),
                           count(*) FILTER (WHERE source_symbol <> symbol) FROM _lg
                    WHERE _legacy = {lt} AND symbol IS NOT NULL GROUP BY 1 HAVING count(DISTINCT source_symbol) > 1"""
            ).fetchall()
            for sym, spellings, n in aliases:
                # Rows counted: those renamed to the series symbol.
                add("duplicate symbols for one series", "canonical_symbol", t.name, n, "normalised",
                    f"{' / '.join(spellings)} are one series, loaded as symbol {sym} (original kept in source_symbol)",
                    samples=[s for sp in spellings for s in _samples(
                        con, f"_legacy = {lt} AND source_symbol = {literal(sp)}")[:1]])
        # Reader-rule quarantines.
        for rule, defect in (("daily_grain", "intraday rows in a daily table"), ("not_null", "null provenance"),
                             ("canonical_symbol", "undeclared symbol"), ("source_hierarchy", "undeclared source"),
                             ("not_single_timestamp", "all rows share one timestamp"),
                             ("plausible_unit", "values not in the declared unit"), ("bad_type", "value does not fit the type")):
            where = f"_legacy = {lt} AND _rule = {literal(rule)}"
            n = con.execute(f"SELECT count(*) FROM _lg WHERE {where}").fetchall()[0][0]
            if n:
                # min, not any_value: the same example every run, so a rerun records the same defect text.
                detail = con.execute(f"SELECT min(_reason) FROM _lg WHERE {where}").fetchall()[0][0]
                if rule in ("daily_grain", "plausible_unit", "not_null"):
                    groups = con.execute(
                        f"SELECT coalesce(_srcname, 'NULL'), count(*) FROM _lg WHERE {where} GROUP BY 1 ORDER BY 1"
                    ).fetchall()
                    detail = "by source_name: " + ", ".join(f"{g} ({k})" for g, k in groups) + f"; e.g. {detail}"
                add(defect, rule, t.name, n, "quarantined", detail, where)
        # Single-timestamp columns that are not the date column: reported, the column is not migrated.
        for col, value in p.single_ts.items():
            if col != t.time_column:
                add("all rows share one timestamp", "not_single_timestamp", t.name, p.rows,
                    f"reported; dates taken from `{t.time_column}`",
                    f"all {p.rows} rows have {col} = {value} (a load time, not observation times); {t.note}",
                    f"_legacy = {lt}")
        if p.nulled:
            cols = list(p.nulled)
            present = " OR ".join(
                f"coalesce(json_extract(_orig, {literal('$.' + t.legacy_column(c))}) <> 'null', false)" for c in cols
            )
            n = con.execute(f"SELECT count(*) FROM _lg WHERE _legacy = {lt} AND ({present})").fetchall()[0][0]
            add("prices exported as integers (truncated)", "lossless_prices", t.name, n, "loaded as NULL (close kept)",
                "; ".join(f"{c} {why}" for c, why in p.nulled.items()), f"_legacy = {lt} AND ({present})")
        if p.nulled_series:
            series = sorted({str(x) for v in p.nulled_series.values() for x in v})
            n = con.execute(
                f"SELECT count(*) FROM _lg WHERE _legacy = {lt} AND CAST(json_extract_string(_orig, {literal('$.' + t.series)}) AS VARCHAR) IN ({', '.join(literal(x) for x in series)})"
            ).fetchall()[0][0]
            add("placeholder columns (constant over the whole series)", "no_placeholders", t.name, n, "loaded as NULL",
                f"{', '.join(p.nulled_series)} hold one constant value on every row of series {', '.join(series)}",
                f"_legacy = {lt}")
        # Contract row rules on migrated values (ohlc_sane, value_range ...).
        for rule, n, reason in con.execute(
            f"SELECT _vrule, count(*), min(_vreason) FROM _lg WHERE _legacy = {lt} AND _vrule IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall():
            add(f"contract rule {rule}", rule, t.name, n, "quarantined", f"e.g. {reason}",
                f"_legacy = {lt} AND _vrule = {literal(rule)}")
        # Duplicates: exact copies (appended reruns) and same-key rows resolved by precedence.
        n = con.execute(f"SELECT count(*) FROM _lg WHERE _legacy = {lt} AND _valid AND _pos > 1 AND NOT _loser").fetchall()[0][0]
        add("exact duplicate rows (appended reruns)", "unique_key", t.name, n, "skipped as duplicates",
            "same key and same values as a kept row", f"_legacy = {lt} AND _valid AND _pos > 1 AND NOT _loser")
        for kept, n, differ in con.execute(
            f"""SELECT _win_source, count(*), count(*) FILTER (WHERE _vhash <> _win_vhash) FROM _lg
                WHERE _legacy = {lt} AND _loser GROUP BY 1 ORDER BY 1"""
        ).fetchall():
            add("same key from a lower-precedence source", "unique_key", t.name, n,
                "kept the higher-precedence row; logged to monitoring.dedup_conflicts",
                f"kept {kept}; {differ} of {n} dropped rows had different values",
                f"_legacy = {lt} AND _loser AND _win_source = {literal(kept)}",
                order="(_vhash = _win_vhash), source_file, record_number")
    return out


def migrate_legacy(con: duckdb.DuckDBPyConnection, legacy_dir: Path | str, run: IngestRun) -> MigrationReport:
    """Migrate every `dataset.table.parquet` in `legacy_dir` per LEGACY_TABLES, within `run`.

    The caller owns the run (`IngestRun(con, kind="migrate")` before, `run.finish()` after). The report
    lists per-file accounting, the defects by rule with samples, and the dedup conflicts logged. An export
    with no declared mapping is reported in `unmapped` and not recorded, so it migrates once mapped."""
    legacy_dir = Path(legacy_dir).resolve()
    report = MigrationReport(run.batch_id, str(legacy_dir))
    report.mapping = [
        {"legacy_table": t.name, "target": t.target, "date_from": t.time_column, "note": t.note} for t in LEGACY_TABLES
    ]
    files = sorted(legacy_dir.glob("*.parquet"))
    report.unmapped = [str(f) for f in files if f.name not in BY_FILE]
    mapped = [identify(f, RECORD_SCHEMA, "parquet") for f in files if f.name in BY_FILE]
    todo, unchanged = run.plan(mapped)
    report.unchanged = [str(f.path) for f in unchanged]
    todo_paths = {str(f.path) for f in todo}
    _register_mapping(con)

    plans: dict[str, list[_FilePlan]] = {}
    for fid in mapped:
        table = BY_FILE[fid.path.name]
        try:
            types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet({literal(str(fid.path))}))").fetchall())
            missing = [c for c in (table.time_column,) if c not in types]
            if missing:
                raise ValueError(f"the export lacks its date column {missing[0]!r}")
            plan = _FilePlan(fid, table, types)
            _inspect(con, plan)
        except (duckdb.Error, ValueError) as exc:
            reason = str(exc).splitlines()[0][:300]
            report.errors[str(fid.path)] = reason
            if str(fid.path) in todo_paths:
                run.file_error(fid, rule="parse_error", reason=reason, table=table.target)
                todo_paths.discard(str(fid.path))
            continue
        plans.setdefault(table.target, []).append(plan)

    for fqn, target_plans in plans.items():
        contract = dc.get(fqn)
        _build(con, contract, target_plans)
        report.defects += _defects(con, contract, target_plans)
        target_todo = [p.fid for p in target_plans if str(p.fid.path) in todo_paths]
        if target_todo:
            report.dedup_conflicts += _stage(con, run, contract, target_todo)
    for name in ("_lg", "_lg_todo", "_lg_sources", "_lg_symbols"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
    mine = {str(f.path) for f in mapped}
    report.files = {p: c for p, c in sorted(run.counts.items()) if p in mine}
    if report.files:
        _record_checks(con, report)
    return report


def _record_checks(con: duckdb.DuckDBPyConnection, report: MigrationReport) -> None:
    """The defects as monitoring.health_checks rows, so the report outlives the run; `cbi health`
    finds them again by their message prefix (health.recorded_checks)."""
    results = []
    for d in report.defects:
        quarantined = d.resolution == "quarantined"
        results.append(health.CheckResult(
            rule=d.rule, table=d.target, columns=None, status="fail" if quarantined else "warn",
            severity="blocking" if quarantined else "warning", measured_value=float(d.rows), threshold="0 rows",
            message=f"{health.MIGRATION_PREFIX}{d.legacy_table}: {d.defect}: {d.rows} rows, {d.resolution}. {d.detail}"[:2000],
            sample=d.samples,  # at most SAMPLES rows: stored whole, so it stays valid JSON
        ))
    health.record_results(con, results, report.batch_id, engine="duckdb")
