"""Returns and targets across the continuous series' recorded rolls: `roll_adjustment`.

The canonical series is the front month by volume (cbi_local.continuous): on a roll date its close
switches from the old contract A to the new contract B, and the raw close-to-close return of that
row holds the gap between the two contracts (the curve's carry), not a price move.

* ``none`` (the default): returns and targets are those of the raw series, gap included. The
  target is then the return of the price the forecast is published against (the front month's
  close at the target date, whatever contract that is), and every recorded value stays as it was.
* ``ratio``: ratio back-adjustment at each recorded roll. The roll on row R (from A, the front up to
  the previous row R-1, to B) has the ratio k = B's close / A's close on R-1, the old contract's
  last session as the front (the position is rolled at that close; continuous.contract_prior_close
  holds B's close there). Every price before R is multiplied by k, so the return from R-1 to R is
  ln(B_R / B_R-1), the new contract's own, and no gap enters any return or target.

Set-based: with cum_t = sum of ln k over the rolls on or before row t, the adjusted ratio between
rows s < t is close_t / close_s * exp(cum_s - cum_t). That is exactly the ratio of the back-adjusted
series (whose prices are close * the product of k over later rolls), and it reads no roll after t:
an adjusted return known at t uses only rolls up to t (no look-ahead; targets look ahead by design).
Between rows of one contract segment cum is the same number, exp(0) = 1, and the value is bit for
bit the unadjusted one; a series without recorded rolls is identical under both settings (the
research matrix has none: Yahoo's ZL=F rolls are not recorded).

A roll whose ratio is unknown (B had no daily bar of A's kind on R-1: continuous.contract_prior_close
NULL) cannot be adjusted: returns, momentum and targets spanning it are NULL (with a
`missing_input` warning), never a gap. A Yahoo/Databento stitch is a change of source, not of
contract (Yahoo's ZL=F is itself the front month), and is not adjusted.

Under ``ratio`` the fields built from close-to-close returns use the adjusted ratio: market_data
return_1d/5d/21d and momentum_21d, volatility_21d and what derives from it (regime vol_percentile,
k_vol), the cross_asset legs' returns and correlations, and target_h / fwd_close_h (fwd_close_h =
the close h sessions ahead divided by the roll ratios between: the forward close in the row
contract's terms, so that close * exp(target_h) = fwd_close_h). Price levels (open/high/low/close,
vwap, moving averages, pivots) and RSI are the series as it trades under both settings.
"""

from __future__ import annotations

import polars as pl

ROLL_ADJUSTMENTS = ("none", "ratio")
DEFAULT = "none"
CUM, CHAIN = "_roll_cum", "_roll_chain"  # sum of ln k so far; segments between unadjustable rolls
IS_ROLL, BROKEN = "_roll", "_roll_broken"


def _previous(e: pl.Expr) -> pl.Expr:
    return e.shift(1).over("symbol")


def is_roll(lag=None) -> pl.Expr:
    """A recorded contract roll: the row's contract differs from the previous row's and both rows are
    Databento (a change to or from the Yahoo bridge is a stitch). `lag(expr, 1)`: the previous row of
    the symbol (default: a shift over the symbol)."""
    src = pl.col("source")
    prev = lag(src, 1) if lag else _previous(src)
    return (pl.col("roll_from_symbol").is_not_null() & (src == "databento") & (prev == "databento")).fill_null(False)


def roll_columns(daily: pl.LazyFrame) -> pl.LazyFrame:
    """daily (sorted by symbol, date; close, roll_from_symbol, source, contract_prior_close) -> + CUM,
    CHAIN, IS_ROLL (a recorded roll) and BROKEN (one without a ratio)."""
    roll = is_roll()
    log_k = (pl.col("contract_prior_close") / _previous(pl.col("close"))).log()
    ok = log_k.is_finite().fill_null(False)
    return daily.with_columns(roll.alias(IS_ROLL), (roll & ~ok).alias(BROKEN),
                              pl.when(roll & ok).then(log_k).otherwise(0.0).alias("_roll_log_k")).with_columns(
        pl.col("_roll_log_k").cum_sum().over("symbol").alias(CUM),
        pl.col(BROKEN).cast(pl.Int32).cum_sum().over("symbol").alias(CHAIN),
    ).drop("_roll_log_k")


def ratio(k: int, lag, adjusted: bool) -> pl.Expr:
    """close_t / close_{t-k} (k > 0) through `lag(expr, k)`, the caller's symbol-masked shift.
    Adjusted: times exp(cum_{t-k} - cum_t), NULL across an unadjustable roll."""
    c = pl.col("close")
    if not adjusted:
        return c / lag(c, k)
    same = pl.col(CHAIN) == lag(pl.col(CHAIN), k)
    return pl.when(same).then(c * (lag(pl.col(CUM), k) - pl.col(CUM)).exp() / lag(c, k))


def forward(n: int, lag, adjusted: bool) -> pl.Expr:
    """The close n rows ahead; adjusted: divided by the roll ratios in between (exp(cum_t - cum_{t+n})),
    NULL across an unadjustable roll."""
    fwd = lag(pl.col("close"), -n)
    if not adjusted:
        return fwd
    same = pl.col(CHAIN) == lag(pl.col(CHAIN), -n)
    return pl.when(same).then(fwd * (pl.col(CUM) - lag(pl.col(CUM), -n)).exp())
