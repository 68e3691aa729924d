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

Features: see `indicators` (market data, pivots, regime volatility, targets), `macro`
(FRED with publication lags, crush margin), `cross_asset`, `positioning`, `seasonal` (calendar)
and `term_structure` (front vs next expiry, from the continuous table's next_* columns and the
front's instrument definition). Regime name and weight: regimes.regime_calendar (derived from
regimes.regime_weights, the registry) joined by date. `roll_adjustment` (`rolls`): none (default,
raw front-month returns and targets) or ratio (back-adjusted at each recorded roll); every row
records the setting it was built with.

Missing inputs give NULLs and a `missing_input` warning (recorded in monitoring.health_checks),
never invented values. All inputs are read once (one query per table); the 1h bars are reduced
to sessions with NumPy (sorted by (contract, time), cut at the session ends, summed in time
order), the rest of the matrix is one lazy Polars plan, and it is written in one DuckDB
transaction as a diff of the (symbols, matrix_source) slice: unchanged rows keep their
batch_id/created_at, changed/vanished rows are replaced. A rebuild on the same inputs changes
nothing (every value is reproduced bit for bit). A build that changes rows records a batch
(kind 'features') in ops.batches and passes the health gate. The flat view of the matrix is
declared in data_contracts and created by `cbi init`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import date as date_cls, datetime, timedelta, timezone
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

import data_contracts as dc
from data_contracts import to_duckdb, to_polars

from .. import batches, calendars, health
from ..warehouse import transaction
from . import indicators as ind
from . import cross_asset, macro, positioning, rolls, seasonal, term_structure

MATRIX = dc.get("features.daily_ml_matrix")
CONTINUOUS = dc.get("market_data.futures_continuous_1d")
YAHOO = dc.get("market_data.yahoo_historical")
BARS_1H = dc.get("market_data.databento_futures_ohlcv_1h")
CALENDAR = dc.get("regimes.regime_calendar")
FRED = dc.get("raw_intelligence.fred_economic")
COT = dc.get("raw_intelligence.cftc_cot")
INSTRUMENTS = dc.get("dim.instruments")
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
    roll_adjustment: str = rolls.DEFAULT
    batch_id: str | None = None
    rows: dict[str, int] = field(default_factory=dict)
    date_range: dict[str, list[str]] = field(default_factory=dict)
    input_rows: int = 0
    bars_1h: int = 0
    inserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    warnings: list[dict[str, Any]] = field(default_factory=list)
    rolls: dict[str, dict[str, int]] = field(default_factory=dict)  # ratio: symbol -> recorded / unadjustable rolls
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
    daily: pl.DataFrame  # symbol, contract, date, open, high, low, close, volume, roll_from_symbol, source,
    # contract_prior_close, next_symbol, next_close (requested symbols + legs), sorted by (symbol, date)
    bars_1h: pl.DataFrame  # pair, ts_event, open, high, low, close, volume (unordered)
    pairs: pl.DataFrame  # pair, root, contract: the (root, front contract) pairs whose 1h bars were read
    regimes: pl.DataFrame  # date, regime_name, regime_weight
    fred: pl.DataFrame  # series_id, obs_date, value
    cot: pl.DataFrame  # symbol, report_date, commercial_net, managed_money_net, open_interest
    expiries: pl.DataFrame  # contract, expiry: outright definitions (dim.instruments; canonical only)


def read_inputs(con: duckdb.DuckDBPyConnection, source: str, symbols: list[str]) -> Inputs:
    """Every input the build needs, one query per table (Arrow, zero-copy into Polars). 1h bars:
    only those of contracts that are some day's front contract of a requested root (the only
    bars a row can use), tagged with a small integer per (root, contract) instead of two strings."""
    wanted = sorted(set(symbols) | set(macro.CRUSH_LEGS) | set(cross_asset.leg_symbols(source).values()))
    prices = ", ".join(_PRICE_COLS)
    if source == "canonical":
        daily = _frame(con, f"SELECT root AS symbol, symbol AS contract, date, {prices}, roll_from_symbol, source, "
                            f"contract_prior_close, next_symbol, next_close FROM {_ref(CONTINUOUS)} "
                            "WHERE list_contains($s, root) ORDER BY root, date", {"s": wanted})
        # the fronts' expirations (term_structure.expiry_frame); a spread's definition is never a front
        expiries = _frame(con, f"SELECT DISTINCT raw_symbol AS contract, CAST(timezone('UTC', expiration) AS DATE) "
                               f"AS expiry FROM {_ref(INSTRUMENTS)} WHERE expiration IS NOT NULL "
                               "AND NOT coalesce(is_spread, FALSE)")
        pairs = (daily.filter(pl.col("symbol").is_in(symbols)).select(pl.col("symbol").alias("root"), "contract")
                 .unique().sort("root", "contract").with_row_index("pair"))
        con.register("_cbi_feat_pairs", pairs.to_arrow())
        try:
            b = ", ".join(f"b.{c}" for c in _PRICE_COLS)
            bars = _frame(con, f"SELECT p.pair, b.ts_event, {b} FROM {_ref(BARS_1H)} AS b JOIN _cbi_feat_pairs AS p "
                               "ON b.root = p.root AND b.symbol = p.contract")
        finally:
            con.unregister("_cbi_feat_pairs")
    else:
        # no outrights, no recorded rolls: the term-structure and roll inputs are NULL
        none = ", ".join(f"CAST(NULL AS {t}) AS {n}" for n, t in (
            ("roll_from_symbol", "VARCHAR"), ("source", "VARCHAR"), ("contract_prior_close", "DOUBLE"),
            ("next_symbol", "VARCHAR"), ("next_close", "DOUBLE")))
        daily = _frame(con, f"SELECT symbol, CAST(NULL AS VARCHAR) AS contract, date, {prices}, {none} FROM {_ref(YAHOO)} "
                            "WHERE list_contains($s, symbol) ORDER BY symbol, date", {"s": wanted})
        pairs, bars = pl.DataFrame(), pl.DataFrame()
        expiries = pl.DataFrame(schema={"contract": pl.String, "expiry": pl.Date})
    regimes = _frame(con, f"SELECT date, regime_name, regime_weight FROM {_ref(CALENDAR)}")
    fred = _frame(con, f"SELECT series_id, date AS obs_date, value FROM {_ref(FRED)} "
                       "WHERE value IS NOT NULL AND list_contains($s, series_id)", {"s": list(macro.SERIES_IDS)})
    cot = _frame(con, f"SELECT contract_code AS symbol, report_date, CAST(commercial_net AS DOUBLE) AS commercial_net, "
                      f"CAST(managed_money_net AS DOUBLE) AS managed_money_net, CAST(open_interest AS DOUBLE) AS open_interest "
                      f"FROM {_ref(COT)} WHERE list_contains($s, contract_code)", {"s": list(symbols)})
    return Inputs(daily, bars, pairs, regimes, fred, cot, expiries)


_HOURLY_SCHEMA = {"root": pl.String, "contract": pl.String, "date": pl.Date, "vwap": pl.Float64,
                  "realized_vol_1h": pl.Float64, "_vol_1h": pl.Int64}


def hourly_sessions(bars: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """1h bars -> (root, contract, date, vwap, realized_vol_1h, _vol_1h) per CME trade date. A bar
    belongs to the first session of its root whose assign_until_utc is after the bar's start
    (cbi_local.calendars). Sums run over each session's bars in time order (NumPy reduceat over
    contiguous runs), so a rebuild on the same inputs reproduces every value bit for bit, whatever
    the thread count (a partitioned float sum differs in the last bits run to run)."""
    known = pairs.filter(pl.col("root").is_in(calendars.roots())) if pairs.height else pairs
    if known.height < pairs.height:
        bars = bars.filter(pl.col("pair").is_in(known["pair"].implode()))
    if not bars.height:
        return pl.DataFrame(schema=_HOURLY_SCHEMA)
    pair, ts = bars["pair"].to_numpy(), bars["ts_event"].to_physical().to_numpy()  # ts: epoch microseconds
    order = _pair_time_order(pair, ts, known.height)
    pair, ts = pair[order], ts[order]
    v = bars["volume"].fill_null(0).to_numpy()
    pv = bars["high"].to_numpy() + bars["low"].to_numpy()  # REQUIRED columns: no NULLs
    c = bars["close"].to_numpy()
    pv += c  # in place: each 2M-row temporary costs its page faults
    pv /= 3
    pv *= v
    pv, vol, close = pv[order], v[order], c[order]

    starts, session, dates = _session_runs(pair, ts, known)
    # r = ln(close / previous close), the session's first bar from its open
    r2 = np.roll(close, 1)
    r2[starts] = bars["open"].gather(order[starts]).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(close, r2, out=r2)
        np.log(r2, out=r2)
    np.square(r2, out=r2)
    keep = session >= 0
    spv, sr2, svol = (np.add.reduceat(x, starts)[keep] for x in (pv, r2, vol))
    return pl.DataFrame({
        "pair": pair[starts[keep]], "date": dates[session[keep]], "vwap": spv / svol,
        "realized_vol_1h": np.sqrt(sr2), "_vol_1h": svol.astype(np.int64),
    }).join(known, on="pair", how="left").select(list(_HOURLY_SCHEMA))


def _session_runs(pair: np.ndarray, ts: np.ndarray, known: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by (pair, ts) -> (starts, session, dates): the first row of each run of one
    pair's bars in one session, that session's index into `dates` (-1: after the root's last
    session, no trade date), and the session dates of every product group end to end. Each
    pair's rows are cut where its sessions end: one binary search per session, not per bar."""
    day = 86_400_000_000
    first, last = _epoch_day(int(ts.min()) // day - 1), _epoch_day(int(ts.max()) // day + 10)
    groups: dict[str, tuple[int, np.ndarray]] = {}  # product group -> (offset into dates, session ends)
    all_dates: list[np.ndarray] = []
    out_start, out_session = [], []
    for root, ids in known.group_by("root").agg("pair").iter_rows():
        group = calendars.product_group(root).name
        if group not in groups:
            sess = calendars.sessions(root, first, last)
            groups[group] = (sum(len(d) for d in all_dates), sess.column("assign_until_utc").cast(pa.int64()).to_numpy())
            all_dates.append(sess.column("session_date").to_numpy())
        offset, until = groups[group]
        p = np.sort(np.asarray(ids, dtype=pair.dtype))
        r0, r1 = np.searchsorted(pair, p, side="left"), np.searchsorted(pair, p, side="right")
        p, r0, r1 = p[r1 > r0], r0[r1 > r0], r1[r1 > r0]
        if not len(p):  # a root whose contracts have no 1h bars (ZL beside ES): daily bars only
            continue
        k0 = np.searchsorted(until, ts[r0], side="right")  # session of each pair's first bar
        n = np.searchsorted(until, ts[r1 - 1], side="right") - k0  # session ends inside its rows
        owner = np.repeat(np.arange(len(p)), n)
        ks = np.repeat(k0 - (np.cumsum(n) - n), n) + np.arange(n.sum())  # k0 .. k0 + n - 1 per pair
        cuts = _first_at_or_after(ts, r0, r1, owner, until[ks])
        k = np.concatenate([k0, ks + 1])
        out_start.append(np.concatenate([r0, cuts]))
        out_session.append(np.where(k < len(until), k + offset, -1))
    start, session = np.concatenate(out_start), np.concatenate(out_session)
    # sessions without bars give repeated starts: the run belongs to the last (latest) of them
    o = np.lexsort((session, start))
    start, session = start[o], session[o]
    last_of = np.r_[start[1:] != start[:-1], True]
    return start[last_of], session[last_of], np.concatenate(all_dates)


def _first_at_or_after(ts: np.ndarray, r0: np.ndarray, r1: np.ndarray, owner: np.ndarray,
                       t: np.ndarray) -> np.ndarray:
    """For each query j: the first row in [r0[owner[j]], r1[owner[j]]) whose ts >= t[j] (rows
    sorted by ts within each range). One binary search over (range, time since the range's first
    bar) packed in an int64 when the ranges are back to back and the packing fits; else one
    search per range."""
    base = ts[r0]
    span = int((ts[r1 - 1] - base).max()) + 1
    bits, rng_bits = span.bit_length(), max(len(r0) - 1, 1).bit_length()
    if bits + rng_bits <= 62 and np.array_equal(r0[1:], r1[:-1]):
        rank = np.repeat(np.arange(len(r0), dtype=np.int64), r1 - r0)
        key = rank << bits | (ts[r0[0]:r1[-1]] - np.repeat(base, r1 - r0))
        q = owner.astype(np.int64) << bits | np.clip(t - base[owner], 0, span)
        return r0[0] + np.searchsorted(key, q, side="left")
    out = np.empty(len(t), np.int64)
    for j in range(len(r0)):
        sel = owner == j
        out[sel] = r0[j] + np.searchsorted(ts[r0[j]:r1[j]], t[sel], side="left")
    return out


def _pair_time_order(pair: np.ndarray, ts: np.ndarray, n_pairs: int) -> np.ndarray:
    """Row order sorting bars by (pair, ts) in two stable passes: time, then pair. The pair pass
    is a radix sort (small integers); bars stored in time order (as ingested from Databento
    files) skip the time pass."""
    by_time = None if bool(np.all(ts[1:] >= ts[:-1])) else np.argsort(ts, kind="stable")
    p = pair if by_time is None else pair[by_time]
    by_pair = np.argsort(p.astype(np.uint16) if n_pairs <= 1 << 16 else p, kind="stable")
    return by_pair if by_time is None else by_time[by_pair]


def _epoch_day(days: int) -> date_cls:
    return date_cls(1970, 1, 1) + timedelta(days=int(days))


def _by_symbol_date(daily: pl.DataFrame, symbols: list[str]) -> pl.DataFrame:
    """The requested symbols' rows sorted by (symbol, date), the symbol column flagged sorted
    (Polars then runs every `over(symbol)` window on contiguous slices instead of hashing).
    read_inputs already returns that order; anything else is sorted here."""
    base = daily.filter(pl.col("symbol").is_in(symbols))
    prev_s, prev_d = pl.col("symbol").shift(1), pl.col("date").shift(1)
    in_order = base.select(
        ((pl.col("symbol") > prev_s) | ((pl.col("symbol") == prev_s) & (pl.col("date") > prev_d))).fill_null(True).all()
    ).item()
    return base.with_columns(pl.col("symbol").set_sorted()) if in_order else base.sort("symbol", "date")


def compute(inputs: Inputs, symbols: list[str], source: str, roll_adjustment: str = rolls.DEFAULT) -> pl.DataFrame:
    """The whole matrix in one lazy plan (flat columns; `assemble` builds the STRUCTs)."""
    adjusted = roll_adjustment == "ratio"
    daily = inputs.daily
    if adjusted:  # every symbol's roll ratios (the legs' too), once, before anything filters rows
        daily = rolls.roll_columns(daily.lazy().sort("symbol", "date")).collect()
    base = _by_symbol_date(daily, symbols).lazy().with_columns(pl.col("date").dt.truncate("1w").alias("_week"))
    dates = base.select("date").unique().sort("date")
    hourly = hourly_sessions(inputs.bars_1h, inputs.pairs).lazy()
    complete = pl.col("_vol_1h").is_not_null() & (pl.col("_vol_1h") == pl.col("volume"))

    def left(lf: pl.LazyFrame, other: pl.LazyFrame, **on: Any) -> pl.LazyFrame:
        return lf.join(other, how="left", maintain_order="left", **on)  # rows stay in (symbol, date) order

    lf = (
        base.with_columns(ind.positions())
        .with_columns(ind.market_exprs(adjusted))
        .with_columns(ind.wilder_exprs())
        .with_columns(ind.market_exprs_2())
        .with_columns(*ind.rsi_exprs(), *ind.regime_vol_exprs(), *ind.pivot_exprs(), *ind.target_exprs(adjusted))
    )
    lf = left(lf, ind.weekly_pivots(base), on=["symbol", "_week"]).with_columns(ind.pivot_exprs_2())
    lf = left(lf, term_structure.expiry_frame(base, inputs.expiries.lazy()), on=["symbol", "date"]).with_columns(
        term_structure.term_structure_exprs(ind.lag))
    lf = left(lf, hourly, left_on=["symbol", "contract", "date"], right_on=["root", "contract", "date"]).with_columns(
        pl.when(complete).then(pl.col("vwap")).alias("vwap"),
        pl.when(complete).then(pl.col("realized_vol_1h")).alias("realized_vol_1h"),
        (pl.col("_vol_1h").is_not_null() & ~complete).alias("_partial_1h"),
    )
    # everything keyed by date alone joins the few thousand dates first, then the rows once
    by_date = left(left(macro.macro_frame(dates, inputs.fred.lazy()), inputs.regimes.lazy(), on="date"),
                   macro.crush_frame(inputs.daily.lazy()), on="date")
    by_date = left(by_date, cross_asset.leg_frame(daily.lazy(), source, adjusted), on="date")
    lf = cross_asset.with_correlations(left(lf, by_date, on="date"), source)
    lf = left(lf, positioning.positioning_frame(base.select("symbol", "date"), inputs.cot.lazy()), on=["symbol", "date"])
    lf = lf.with_columns(seasonal.calendar_exprs())
    # in-memory: the pandas windows (indicators._trailing) must see whole columns, not streamed batches
    return lf.with_columns(pl.lit(source).alias("matrix_source"),
                           pl.lit(roll_adjustment).alias("roll_adjustment")).collect(engine="in-memory")


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


def missing_input_warnings(flat: pl.DataFrame, source: str) -> tuple[list[dict[str, Any]], pl.DataFrame]:
    """Rows NULL because an input is missing (not warm-up): one warning per (symbol, field); and
    per symbol its rows and first/last date (columns symbol, rows, first, last)."""
    why_1h = ("no 1h bars in a research matrix" if source != "canonical"
              else "no 1h bars of the front contract covering the whole session")
    why_curve = ("no Databento outrights in a research matrix" if source != "canonical"
                 else "no outright expiring after the front traded that date (with a daily bar of the front's kind): "
                      "one contract is no curve")
    two = term_structure.has_second()
    checks: list[tuple[str, pl.Expr, str]] = [
        ("market_data.vwap", pl.col("vwap").is_null(), why_1h),
        ("market_data.realized_vol_1h", pl.col("realized_vol_1h").is_null(), why_1h),
        ("pivots.p", pl.col("p").is_null() & (pl.col(ind.POSITION) > 0), "the prior session has no high/low"),
        ("regime.name", pl.col("regime_name").is_null(), "date not in regimes.regime_calendar"),
        ("macro.crush_margin", pl.col("crush_margin").is_null(), "ZS, ZM and ZL closes not all present that date"),
        *((f"cross_asset.{k}_ret_1d", pl.col(f"{k}_ret_1d").is_null(),
           f"no {sym} close of this matrix source that date (or the day before)")
          for k, sym in cross_asset.leg_symbols(source).items()),
        ("positioning.commercial_net_pct_oi", pl.col("commercial_net_pct_oi").is_null(),
         f"no CFTC COT report of the market usable that date (used {positioning.USABLE_AFTER_DAYS} days after its "
         f"report date, stale after {positioning.STALE_AFTER_DAYS})"),
        ("term_structure.front_minus_second", ~two, why_curve),
        ("term_structure.front_days_to_expiry", two & pl.col("front_expiry").is_null(),
         "no instrument definition (dim.instruments) of the front contract expiring on or after the date"),
    ]
    if rolls.BROKEN in flat.columns:
        checks.append(("market_data.return_1d", pl.col(rolls.BROKEN),
                       "recorded roll not ratio-adjustable (the new contract had no daily bar of the old one's kind the "
                       "session before): returns, momentum and targets spanning it are NULL, never a roll gap"))
    for s in macro.MACRO_SERIES:
        checks.append((f"macro.{s.field}", pl.col(s.field).is_null(),
                       f"no {s.series_id} observation available (rule {s.rule}, stale after {s.stale_after_days} days)"))
    aggs = []
    for i, (_, cond, _) in enumerate(checks):
        aggs += [cond.sum().alias(f"n{i}"), pl.col("date").filter(cond).min().alias(f"a{i}"),
                 pl.col("date").filter(cond).max().alias(f"b{i}")]
    stats = flat.group_by("symbol").agg(pl.len().alias("rows"), pl.col("date").min().alias("first"),
                                        pl.col("date").max().alias("last"), *aggs).sort("symbol")
    out = []
    for row in stats.iter_rows(named=True):
        for i, (name, _, why) in enumerate(checks):
            if row[f"n{i}"]:
                out.append({"symbol": row["symbol"], "field": name, "null_rows": row[f"n{i}"], "rows": row["rows"],
                            "first": str(row[f"a{i}"]), "last": str(row[f"b{i}"]), "reason": why})
    return out, stats.select("symbol", "rows", "first", "last")


def write(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, source: str, symbols: list[str],
          report: FeaturesReport, batch_id: str, now: datetime) -> None:
    """Replace the (symbols, source) slice with `frame`, in one transaction, as a diff: rows
    whose content (all but batch_id/created_at) is unchanged stay as they are."""
    target, q = _ref(MATRIX), to_duckdb.quote
    cols = ", ".join(q(c) for c in MATRIX.column_names)
    key = MATRIX.primary_key

    def on(a: str, b: str) -> str:
        return " AND ".join(f"{a}.{q(k)} = {b}.{q(k)}" for k in key)

    first = q(key[0])  # REQUIRED: NULL only on the missing side of the join
    differs = " OR ".join(f"n.{q(c)} IS DISTINCT FROM o.{q(c)}" for c in MATRIX.column_names
                          if c not in _LINEAGE and c not in key)
    old = f"(SELECT * FROM {target} WHERE matrix_source = $src AND list_contains($syms, symbol))"
    params = {"src": source, "syms": symbols}
    # the frame already has the contract's types (to_polars.schema): DuckDB reads the Arrow as is
    con.register("_cbi_feat_new", frame.to_arrow())
    try:
        with transaction(con):
            if con.execute(f"SELECT COUNT(*) FROM {old}", params).fetchall()[0][0] == 0:
                report.inserted = con.execute(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM _cbi_feat_new").fetchall()[0][0]
            else:
                # one join on the key comparing whole values (NULLs compare equal): the keys of new,
                # changed and vanished rows (usually few, so fetched rather than kept in a temp table)
                keys = ", ".join(f"coalesce(n.{q(k)}, o.{q(k)}) AS {q(k)}" for k in key)
                diff = con.sql(
                    f"SELECT {keys}, n.{first} IS NOT NULL AS _add, o.{first} IS NOT NULL AS _del "
                    f"FROM _cbi_feat_new AS n FULL JOIN {old} AS o ON {on('n', 'o')} "
                    f"WHERE n.{first} IS NULL OR o.{first} IS NULL OR {differs}", params=params).to_arrow_table()
                if diff.num_rows:
                    con.register("_cbi_feat_diff", diff)
                    report.deleted = con.execute(
                        f"DELETE FROM {target} AS t USING _cbi_feat_diff AS d WHERE d._del AND {on('t', 'd')}").fetchall()[0][0]
                    report.inserted = con.execute(
                        f"INSERT INTO {target} ({cols}) SELECT {', '.join('t.' + q(c) for c in MATRIX.column_names)} "
                        f"FROM _cbi_feat_new AS t SEMI JOIN (SELECT * FROM _cbi_feat_diff WHERE _add) AS d ON {on('t', 'd')}"
                    ).fetchall()[0][0]
            report.unchanged = frame.height - report.inserted
            if report.changed:
                report.batch_id = batch_id
                batches.record_validated(
                    con, batch_id, now, "features", [MATRIX.fqn], report.input_rows, report.inserted,
                    f"features build {source} {','.join(symbols)}: +{report.inserted} -{report.deleted}",
                    rows_duplicate=report.unchanged,
                )
    finally:
        con.unregister("_cbi_feat_new")
        con.unregister("_cbi_feat_diff")


def build_features(
    con: duckdb.DuckDBPyConnection, symbols: list[str] | None = None, source: str = "canonical",
    record_health: bool = True, roll_adjustment: str = rolls.DEFAULT,
) -> FeaturesReport:
    """Build (or rebuild) the matrix for `symbols` from `source`; see the module doc. `roll_adjustment`
    (rolls.py): none (default) or ratio; the whole slice is rebuilt with it and each row records it."""
    t0 = time.perf_counter()
    if roll_adjustment not in rolls.ROLL_ADJUSTMENTS:
        raise FeaturesError(f"unknown roll adjustment {roll_adjustment!r}; use one of {', '.join(rolls.ROLL_ADJUSTMENTS)}")
    symbols = _resolve_symbols(con, source, symbols)
    report = FeaturesReport(matrix_source=source, symbols=symbols, roll_adjustment=roll_adjustment)
    now = datetime.now(timezone.utc)
    batch_id = f"features-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    inputs = read_inputs(con, source, symbols)
    report.bars_1h = inputs.bars_1h.height
    t1 = time.perf_counter()
    flat = compute(inputs, symbols, source, roll_adjustment)
    report.input_rows = flat.height  # one matrix row per daily input row of the symbols
    if rolls.IS_ROLL in flat.columns:
        for sym, n, broken in flat.group_by("symbol").agg(pl.col(rolls.IS_ROLL).sum(), pl.col(rolls.BROKEN).sum()
                                                          ).sort("symbol").iter_rows():
            report.rolls[sym] = {"recorded": int(n), "unadjustable": int(broken)}
    frame = assemble(flat, batch_id, now)
    report.warnings, per_symbol = missing_input_warnings(flat, source)
    for sym, rows, first, last in per_symbol.iter_rows():
        report.rows[sym] = rows
        report.date_range[sym] = [str(first), str(last)]
    for sym in symbols:
        if sym not in report.rows:
            report.warnings.append({"symbol": sym, "field": "*", "null_rows": 0, "rows": 0, "first": None, "last": None,
                                    "reason": f"no input rows for {sym} in the {source} source"})
    n_partial = int(flat["_partial_1h"].sum())
    if n_partial:
        report.warnings.append({"symbol": "*", "field": "market_data.vwap", "null_rows": n_partial, "rows": flat.height,
                                "first": None, "last": None,
                                "reason": f"{n_partial} sessions have 1h bars that do not cover the session's volume"})
    t2 = time.perf_counter()
    write(con, frame, source, symbols, report, batch_id, now)
    t3 = time.perf_counter()
    # Warnings belong to the batch that wrote the rows; a rebuild that changes nothing has no batch
    # and re-records nothing (batch-less rows would never reach BigQuery).
    if record_health and report.batch_id:
        health.record_results(con, [_as_check(w, source) for w in report.warnings], report.batch_id, engine="duckdb")
        if report.changed:
            report.gate = health.validate_batch(con, batch_id)  # a failure marks the batch failed_validation
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

