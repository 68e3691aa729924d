"""Build features.daily_ml_matrix: one row per (date, symbol, matrix_source).

Sources (`matrix_source`):

* ``canonical`` (default): market_data.futures_continuous_1d, one series per root (the matrix
  `symbol` is the root). vwap / realized_vol_1h come from market_data.databento_futures_ohlcv_1h
  bars of the row's front contract assigned to the same CME trade date (cbi_local.calendars),
  used only when those bars account for the whole session (their volume sum equals the daily
  bar's volume); otherwise NULL. vwap = sum(typical price * volume) / sum(volume) with typical
  price (H + L + C) / 3 (OHLCV bars carry no trade prices); realized_vol_1h =
  sqrt(sum r_i^2) of the session's 1h log returns (r_1 = ln(close_1 / open_1), then
  close-to-close), not annualised.
* ``yahoo_historical``: market_data.yahoo_historical (default symbol ZL, 2000-2025): an
  explicitly non-canonical research matrix. Its rows can never be pushed to the canonical
  BigQuery table (the contract's push_only_where). No 1h bars: vwap/realized_vol_1h NULL.

Features: see `indicators` (market data, pivots, regime volatility, targets) and `macro`
(FRED with publication lags, crush margin). Regime name and weight: regimes.regime_calendar
(derived from regimes.regime_weights, the registry) joined by date.

Missing inputs give NULLs and a `missing_input` warning (recorded in monitoring.health_checks),
never invented values. All inputs are read once, the matrix is computed by one lazy Polars
plan, and written in one DuckDB transaction as a diff of the (symbols, matrix_source) slice:
unchanged rows keep their batch_id/created_at, changed/vanished rows are replaced. A rebuild on
the same inputs changes nothing. A build that changes rows records a batch (kind 'features')
in ops.batches and passes the health gate.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import polars as pl

import data_contracts as dc
from data_contracts import to_duckdb, to_polars

from .. import calendars, health
from . import indicators as ind
from . import macro
from .export import ensure_flat_view

MATRIX = dc.get("features.daily_ml_matrix")
CONTINUOUS = dc.get("market_data.futures_continuous_1d")
YAHOO = dc.get("market_data.yahoo_historical")
BARS_1H = dc.get("market_data.databento_futures_ohlcv_1h")
CALENDAR = dc.get("regimes.regime_calendar")
FRED = dc.get("raw_intelligence.fred_economic")
SOURCES = ("canonical", "yahoo_historical")
DEFAULT_SYMBOLS = {"yahoo_historical": ["ZL"]}  # canonical: every root of the continuous table
_LINEAGE = ("batch_id", "created_at")
# STRUCT field -> computed column, where the names differ
_FIELD_SOURCE = {("regime", "name"): "regime_name", ("regime", "weight"): "regime_weight"}
_PRICE_COLS = ("open", "high", "low", "close", "volume")


class FeaturesError(ValueError):
    pass


@dataclass
class FeaturesReport:
    matrix_source: str
    symbols: list[str]
    batch_id: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    date_range: dict[str, list[str]] = field(default_factory=dict)
    input_rows: int = 0
    bars_1h: int = 0
    inserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    warnings: list[dict[str, Any]] = field(default_factory=list)
    gate: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.deleted)

    @property
    def ok(self) -> bool:
        return not (self.gate and self.gate["failed"])

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "changed": self.changed}


def _ref(c: dc.Contract) -> str:
    return to_duckdb.table_ref(c)


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql, params=params or {}).to_arrow_table())  # type: ignore[return-value]


def _resolve_symbols(con: duckdb.DuckDBPyConnection, source: str, symbols: list[str] | None) -> list[str]:
    if source not in SOURCES:
        raise FeaturesError(f"unknown matrix source {source!r}; use one of {', '.join(SOURCES)}")
    if symbols:
        return sorted({s.strip().upper() for s in symbols if s.strip()})
    if source in DEFAULT_SYMBOLS:
        return DEFAULT_SYMBOLS[source]
    return [r[0] for r in con.execute(f"SELECT DISTINCT root FROM {_ref(CONTINUOUS)} ORDER BY 1").fetchall()]


@dataclass
class Inputs:
    daily: pl.DataFrame  # symbol, contract, date, open, high, low, close, volume (requested symbols + crush legs)
    bars_1h: pl.DataFrame  # root, contract, ts_event, open, high, low, close, volume
    regimes: pl.DataFrame  # date, regime_name, regime_weight
    fred: pl.DataFrame  # series_id, obs_date, value


def read_inputs(con: duckdb.DuckDBPyConnection, source: str, symbols: list[str]) -> Inputs:
    """Every input the build needs, one query per table (Arrow, zero-copy into Polars)."""
    wanted = sorted(set(symbols) | set(macro.CRUSH_LEGS))
    prices = ", ".join(_PRICE_COLS)
    if source == "canonical":
        daily = _frame(con, f"SELECT root AS symbol, symbol AS contract, date, {prices} FROM {_ref(CONTINUOUS)} "
                            "WHERE list_contains($s, root)", {"s": wanted})
        bars = _frame(con, f"SELECT root, symbol AS contract, ts_event, {prices} FROM {_ref(BARS_1H)} "
                           "WHERE list_contains($s, root) ORDER BY root, symbol, ts_event", {"s": symbols})
    else:
        daily = _frame(con, f"SELECT symbol, CAST(NULL AS VARCHAR) AS contract, date, {prices} FROM {_ref(YAHOO)} "
                            "WHERE list_contains($s, symbol)", {"s": wanted})
        bars = pl.DataFrame()
    regimes = _frame(con, f"SELECT date, regime_name, regime_weight FROM {_ref(CALENDAR)}")
    fred = _frame(con, f"SELECT series_id, date AS obs_date, value FROM {_ref(FRED)} "
                       "WHERE value IS NOT NULL AND list_contains($s, series_id)", {"s": list(macro.SERIES_IDS)})
    return Inputs(daily, bars, regimes, fred)


def hourly_sessions(bars: pl.DataFrame) -> pl.LazyFrame:
    """1h bars (sorted by root, contract, ts_event) -> (root, contract, date, vwap, realized_vol_1h,
    _vol_1h) per CME trade date. A bar belongs to the first session of its root whose
    assign_until_utc is after the bar's start (cbi_local.calendars); found with one vectorised
    binary search over (root, assign_until) keys instead of a sort + as-of join of every bar."""
    schema = {"root": pl.String, "contract": pl.String, "date": pl.Date, "vwap": pl.Float64,
              "realized_vol_1h": pl.Float64, "_vol_1h": pl.Int64}
    known = set(calendars.roots())
    roots = sorted(r for r in bars["root"].unique().to_list() if r in known) if bars.height else []
    if not roots:
        return pl.LazyFrame(schema=schema)
    lo, hi = bars["ts_event"].min(), bars["ts_event"].max()
    sess = pl.from_arrow(calendars.sessions(roots, lo.date() - timedelta(days=1), hi.date() + timedelta(days=10)))
    if sess.height == 0:
        return pl.LazyFrame(schema=schema)
    code = {r: i for i, r in enumerate(roots)}
    span = 1 << 52  # microseconds: far beyond any timestamp, so (root, time) packs into one sortable int

    def key(ts: str) -> pl.Expr:
        return pl.col("root").replace_strict(code, default=None, return_dtype=pl.Int64) * span + pl.col(ts).dt.epoch("us")

    sess = sess.select(key("assign_until_utc").alias("_k"), pl.col("session_date").alias("date"), "root").sort("_k")
    b = bars.filter(pl.col("root").is_in(roots))
    idx = sess["_k"].search_sorted(b.select(key("ts_event")).to_series(), side="right")
    inside = idx < sess.height  # else: after the last session
    at = idx.clip(upper_bound=max(sess.height - 1, 0))
    b = b.lazy().with_columns(
        at.alias("_i"),
        # a bar after its root's last session lands in the next root's range: no date
        pl.when(pl.lit(inside) & (pl.lit(sess["root"].gather(at)) == pl.col("root")))
        .then(pl.lit(sess["date"].gather(at))).alias("date"),
    )
    same = (pl.col("_i") == pl.col("_i").shift(1)) & (pl.col("contract") == pl.col("contract").shift(1))
    prev = pl.when(same).then(pl.col("close").shift(1)).otherwise(pl.col("open"))
    tp = (pl.col("high") + pl.col("low") + pl.col("close")) / 3
    return (
        b.with_columns((pl.col("close") / prev).log().alias("_r"), (tp * pl.col("volume")).alias("_pv"))
        .filter(pl.col("date").is_not_null())
        .with_columns(pl.col("_r").pow(2))
        # Sums over each group's rows in their (time) order, whatever the chunking and thread
        # count: a partitioned float sum differs in the last bits run to run, and a rebuild on
        # the same inputs must reproduce every value exactly.
        .group_by("_i", "contract")
        .agg(pl.col("root", "date").first(), "_pv", "_r", "volume")
        .select(
            "root", "contract", "date",
            (pl.col("_pv").list.sum() / pl.col("volume").list.sum()).alias("vwap"),
            pl.col("_r").list.sum().sqrt().alias("realized_vol_1h"),
            pl.col("volume").list.sum().cast(pl.Int64).alias("_vol_1h"),
        )
    )


def compute(inputs: Inputs, symbols: list[str], source: str) -> pl.DataFrame:
    """The whole matrix in one lazy plan (flat columns; `assemble` builds the STRUCTs)."""
    daily = inputs.daily.lazy()
    base = (
        daily.filter(pl.col("symbol").is_in(symbols))
        .sort("symbol", "date")
        .with_columns(pl.col("date").dt.truncate("1w").alias("_week"))
    )
    dates = base.select("date").unique().sort("date")
    hourly = hourly_sessions(inputs.bars_1h)
    complete = pl.col("_vol_1h").is_not_null() & (pl.col("_vol_1h") == pl.col("volume"))
    lf = (
        base.with_columns(ind.market_exprs())
        .with_columns(ind.market_exprs_2())
        .with_columns(ind.regime_vol_exprs())
        .with_columns(ind.pivot_exprs())
        .with_columns(ind.target_exprs())
        .join(ind.weekly_pivots(base), on=["symbol", "_week"], how="left")
        .with_columns(ind.pivot_exprs_2())
        .join(hourly, left_on=["symbol", "contract", "date"], right_on=["root", "contract", "date"], how="left")
        .with_columns(
            pl.when(complete).then(pl.col("vwap")).alias("vwap"),
            pl.when(complete).then(pl.col("realized_vol_1h")).alias("realized_vol_1h"),
            (pl.col("_vol_1h").is_not_null() & ~complete).alias("_partial_1h"),
        )
        .join(inputs.regimes.lazy(), on="date", how="left")
        .join(macro.macro_frame(dates, inputs.fred.lazy()), on="date", how="left")
        .join(macro.crush_frame(daily), on="date", how="left")
        .with_columns(pl.lit(source).alias("matrix_source"))
        .sort("symbol", "date")
    )
    return lf.collect()


def assemble(flat: pl.DataFrame, batch_id: str, created_at: datetime) -> pl.DataFrame:
    """Flat frame -> the contract's columns and types (STRUCTs in contract field order)."""
    schema = to_polars.schema(MATRIX)
    exprs = []
    for col in MATRIX.columns:
        if col.name == "batch_id":
            e = pl.lit(batch_id)
        elif col.name == "created_at":
            e = pl.lit(created_at)
        elif col.type == "STRUCT":
            e = pl.struct([pl.col(_FIELD_SOURCE.get((col.name, f.name), f.name)).alias(f.name) for f in col.fields])
        else:
            e = pl.col(col.name)
        exprs.append(e.cast(schema[col.name]).alias(col.name))
    return flat.select(exprs)


def missing_input_warnings(flat: pl.DataFrame, source: str) -> list[dict[str, Any]]:
    """Rows NULL because an input is missing (not warm-up): one warning per (symbol, field)."""
    first = pl.int_range(pl.len()).over("symbol") == 0
    why_1h = ("no 1h bars in a research matrix" if source != "canonical"
              else "no 1h bars of the front contract covering the whole session")
    checks: list[tuple[str, pl.Expr, str]] = [
        ("market_data.vwap", pl.col("vwap").is_null(), why_1h),
        ("market_data.realized_vol_1h", pl.col("realized_vol_1h").is_null(), why_1h),
        ("pivots.p", pl.col("p").is_null() & ~first, "the prior session has no high/low"),
        ("regime.name", pl.col("regime_name").is_null(), "date not in regimes.regime_calendar"),
        ("macro.crush_margin", pl.col("crush_margin").is_null(), "ZS, ZM and ZL closes not all present that date"),
    ]
    for s in macro.MACRO_SERIES:
        checks.append((f"macro.{s.field}", pl.col(s.field).is_null(),
                       f"no {s.series_id} observation available (rule {s.rule}, stale after {s.stale_after_days} days)"))
    aggs = []
    for i, (_, cond, _) in enumerate(checks):
        aggs += [cond.sum().alias(f"n{i}"), pl.col("date").filter(cond).min().alias(f"a{i}"),
                 pl.col("date").filter(cond).max().alias(f"b{i}")]
    stats = flat.group_by("symbol").agg(pl.len().alias("rows"), *aggs).sort("symbol")
    out = []
    for row in stats.iter_rows(named=True):
        for i, (name, _, why) in enumerate(checks):
            if row[f"n{i}"]:
                out.append({"symbol": row["symbol"], "field": name, "null_rows": row[f"n{i}"], "rows": row["rows"],
                            "first": str(row[f"a{i}"]), "last": str(row[f"b{i}"]), "reason": why})
    return out


def write(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, source: str, symbols: list[str],
          report: FeaturesReport, batch_id: str, now: datetime) -> None:
    """Replace the (symbols, source) slice with `frame`, in one transaction, as a diff: rows
    whose content (all but batch_id/created_at) is unchanged stay as they are."""
    target, q = _ref(MATRIX), to_duckdb.quote
    cols = ", ".join(q(c) for c in MATRIX.column_names)
    content = ", ".join(q(c) for c in MATRIX.column_names if c not in _LINEAGE)
    keys = ", ".join(q(k) for k in MATRIX.primary_key)
    on = " AND ".join(f"t.{q(k)} = d.{q(k)}" for k in MATRIX.primary_key)
    old = f"(SELECT {content} FROM {target} WHERE matrix_source = $src AND list_contains($syms, symbol))"
    params = {"src": source, "syms": symbols}
    # the frame already has the contract's types (to_polars.schema): DuckDB reads the Arrow as is
    con.register("_cbi_feat_new", frame.to_arrow())
    try:
        con.execute("BEGIN")
        # set differences on the whole content (NULLs compare equal): changed or vanished rows, new or changed rows
        con.execute(f"CREATE OR REPLACE TEMP TABLE _cbi_feat_gone AS SELECT {keys} FROM "
                    f"({old} EXCEPT SELECT {content} FROM _cbi_feat_new)", params)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _cbi_feat_add AS SELECT {keys} FROM "
                    f"(SELECT {content} FROM _cbi_feat_new EXCEPT {old})", params)
        report.deleted = con.execute(f"DELETE FROM {target} AS t USING _cbi_feat_gone AS d WHERE {on}").fetchall()[0][0]
        report.inserted = con.execute(
            f"INSERT INTO {target} ({cols}) SELECT {', '.join('t.' + q(c) for c in MATRIX.column_names)} "
            f"FROM _cbi_feat_new AS t SEMI JOIN _cbi_feat_add AS d ON {on}"
        ).fetchall()[0][0]
        report.unchanged = frame.height - report.inserted
        if report.changed:
            report.batch_id = batch_id
            con.execute(
                "INSERT INTO ops.batches (batch_id, created_at, kind, status, rows_read, rows_loaded, rows_quarantined, "
                "rows_duplicate, table_names, message) VALUES (?, ?, 'features', 'validated', ?, ?, 0, ?, ?, ?)",
                [batch_id, now, report.input_rows, report.inserted, report.unchanged, [MATRIX.fqn],
                 f"features build {source} {','.join(symbols)}: +{report.inserted} -{report.deleted}"],
            )
        ensure_flat_view(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.unregister("_cbi_feat_new")
        for t in ("_cbi_feat_gone", "_cbi_feat_add"):
            con.execute(f"DROP TABLE IF EXISTS temp.{t}")


def build_features(
    con: duckdb.DuckDBPyConnection, symbols: list[str] | None = None, source: str = "canonical",
    record_health: bool = True,
) -> FeaturesReport:
    """Build (or rebuild) the matrix for `symbols` from `source`; see the module doc."""
    t0 = time.perf_counter()
    symbols = _resolve_symbols(con, source, symbols)
    report = FeaturesReport(matrix_source=source, symbols=symbols)
    now = datetime.now(timezone.utc)
    batch_id = f"features-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    inputs = read_inputs(con, source, symbols)
    report.input_rows = inputs.daily.filter(pl.col("symbol").is_in(symbols)).height
    report.bars_1h = inputs.bars_1h.height
    t1 = time.perf_counter()
    flat = compute(inputs, symbols, source)
    frame = assemble(flat, batch_id, now)
    t2 = time.perf_counter()
    report.warnings = missing_input_warnings(flat, source)
    for sym in symbols:
        if flat.filter(pl.col("symbol") == sym).height == 0:
            report.warnings.append({"symbol": sym, "field": "*", "null_rows": 0, "rows": 0, "first": None, "last": None,
                                    "reason": f"no input rows for {sym} in the {source} source"})
    for (sym,), g in flat.group_by(["symbol"], maintain_order=True):
        report.rows[sym] = g.height
        report.date_range[sym] = [str(g["date"].min()), str(g["date"].max())]
    n_partial = int(flat["_partial_1h"].sum())
    if n_partial:
        report.warnings.append({"symbol": "*", "field": "market_data.vwap", "null_rows": n_partial, "rows": flat.height,
                                "first": None, "last": None,
                                "reason": f"{n_partial} sessions have 1h bars that do not cover the session's volume"})
    write(con, frame, source, symbols, report, batch_id, now)
    t3 = time.perf_counter()
    # Warnings belong to the batch that wrote the rows; a rebuild that changes nothing has no batch
    # and re-records nothing (batch-less rows would never reach BigQuery).
    if record_health and report.batch_id:
        health.record_results(con, [_as_check(w, source) for w in report.warnings], report.batch_id, engine="duckdb")
        if report.changed:
            report.gate = health.validate_batch(con, batch_id)
            if report.gate["failed"]:
                con.execute("UPDATE ops.batches SET status = 'failed_validation' WHERE batch_id = ? "
                            "AND status <> 'failed_validation'", [batch_id])
    report.seconds = {"read": round(t1 - t0, 4), "compute": round(t2 - t1, 4), "write": round(t3 - t2, 4),
                      "total": round(time.perf_counter() - t0, 4)}
    return report


def _as_check(w: dict[str, Any], source: str) -> health.CheckResult:
    return health.CheckResult(
        rule="missing_input", table=MATRIX.fqn, columns=w["field"], status="warn", severity="warning",
        measured_value=float(w["null_rows"]), threshold="inputs present",
        message=f"{source} {w['symbol']}: {w['null_rows']} of {w['rows']} rows NULL ({w['reason']})",
        sample=[{"first": w["first"], "last": w["last"]}] if w["first"] else [],
    )

