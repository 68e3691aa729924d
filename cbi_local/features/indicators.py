"""Per-symbol daily indicators as Polars expressions, applied in steps (`positions`, then
`market_exprs`, `wilder_exprs`, `market_exprs_2`, then the rest) to a frame sorted by
(symbol, date).

Every expression reads only the current and earlier rows of its symbol (lags k >= 0, trailing
rolling windows), except the targets, which read k rows ahead and are never features. "n
sessions" means n rows of the symbol's series. A lag is a plain shift masked at symbol
boundaries (exact, and far cheaper than a window per expression); sums over windows stay
per symbol (`over`), so a symbol's values never depend on which other symbols are built.

Definitions (the tests recompute each one independently in plain Python/NumPy):

* return_k = ln(close_t / close_{t-k}) for k in 1, 5, 21 (log returns).
* ma_n = mean of the last n closes (NULL until n closes exist).
* rsi_14 (Wilder): changes d_t = close_t - close_{t-1}; gains max(d, 0), losses max(-d, 0).
  The first averages (row 14) are the simple means of changes 1..14; afterwards
  avg_t = (13 * avg_{t-1} + x_t) / 14. RSI = 100 - 100 / (1 + avg_gain / avg_loss); 100 when
  avg_loss is 0 (and avg_gain > 0), NULL when both are 0.
* volatility_21d = sample std (ddof 1) of the last 21 return_1d values * sqrt(252).
* momentum_21d = close_t / close_{t-21} - 1.
* pivots from the previous row's high/low/close (the prior session): P = (H + L + C) / 3,
  R1 = 2P - L, S1 = 2P - H, R2 = P + (H - L), S2 = P - (H - L); NULL when the prior session
  has no high/low (the Yahoo stitch withholds them on inconsistent days). distance_to_p =
  (close - P) / P; distance_to_nearest = (close - X) / X for the level X in {P, R1, R2, S1, S2}
  nearest to close (ties: the first in that order); is_above_p = close > P.
* weekly P: (H + L + C) / 3 of the previous calendar week that has sessions (ISO weeks,
  Monday start): H = max high, L = min low (NULL if any session of that week lacks them),
  C = that week's last close. weekly_p_distance = (close - weekly P) / weekly P.
* vol_percentile = 100 * (number of the last 252 volatility_21d values <= today's) / 252;
  k_vol = volatility_21d / median of the last 252 volatility_21d values (NULL until 252 exist).
* target_h = ln(close_{t+n} / close_t), fwd_close_h = close_{t+n}, n = HORIZONS[h]; NULL where
  row t+n does not exist yet.
* roll_adjustment 'ratio' (rolls.py): every close ratio above that is a return (return_k,
  momentum_21d, hence volatility_21d, and the targets) is taken on the ratio back-adjusted series.
"""

from __future__ import annotations

import math

import polars as pl

from data_contracts.columns import HORIZONS

from . import rolls

SYMBOL = "symbol"
RSI_N = 14
VOL_N = 21
VOL_WINDOW = 252
ANNUALISE = math.sqrt(252)
_SID, POSITION = "_sid", "_pos"  # symbol run number, row number within the symbol


def _o(e: pl.Expr) -> pl.Expr:
    return e.over(SYMBOL)


def _lag(e: pl.Expr, k: int) -> pl.Expr:
    """`e` k rows back (k < 0: ahead) within the symbol, NULL across a symbol boundary: the same
    values as `shift(k).over(symbol)` on the sorted frame, without a window per expression."""
    return pl.when(pl.col(_SID).shift(k) == pl.col(_SID)).then(e.shift(k))


lag = _lag  # for the other feature modules


def _finite(e: pl.Expr) -> pl.Expr:
    """log/ratio of a zero or missing price gives NULL, never inf/NaN."""
    return pl.when(e.is_finite()).then(e).otherwise(None)


def positions() -> list[pl.Expr]:
    """Step 0 (the frame sorted by symbol, then date): the helper columns `_lag` and the warm-up
    masks read."""
    return [pl.col(SYMBOL).rle_id().alias(_SID), _o(pl.int_range(pl.len())).alias(POSITION)]


def market_exprs(adjusted: bool = False) -> list[pl.Expr]:
    """Step 1 (needs close): returns, moving averages, momentum, RSI inputs. `adjusted`: returns and
    momentum across recorded rolls ratio back-adjusted (rolls.py; needs its columns)."""
    c = pl.col("close")
    d = c - _lag(c, 1)
    out = [
        _finite(rolls.ratio(1, _lag, adjusted).log()).alias("return_1d"),
        _finite(rolls.ratio(5, _lag, adjusted).log()).alias("return_5d"),
        _finite(rolls.ratio(21, _lag, adjusted).log()).alias("return_21d"),
        _o(c.rolling_mean(5, min_samples=5)).alias("ma_5"),
        _o(c.rolling_mean(21, min_samples=21)).alias("ma_21"),
        _o(c.rolling_mean(63, min_samples=63)).alias("ma_63"),
        _finite(rolls.ratio(21, _lag, adjusted) - 1).alias("momentum_21d"),
        d.clip(lower_bound=0).alias("_gain"),
        (-d).clip(lower_bound=0).alias("_loss"),
    ]
    return out


def wilder_exprs() -> list[pl.Expr]:
    """Step 1b (needs _gain/_loss): Wilder averages, seeded at row RSI_N with the simple mean of
    changes 1..RSI_N (the rolling mean skips row 0's NULL change, then holds exactly those)."""
    pos = pl.col(POSITION)
    out = []
    for x in ("_gain", "_loss"):
        seed = _o(pl.col(x).rolling_mean(RSI_N, min_samples=RSI_N))
        out.append(pl.when(pos == RSI_N).then(seed).when(pos > RSI_N).then(pl.col(x)).alias(x))
    return out


def market_exprs_2() -> list[pl.Expr]:
    """Step 2 (needs return_1d, the seeded Wilder inputs): the Wilder averages, volatility."""
    return [
        *(_o(pl.col(x).ewm_mean(alpha=1 / RSI_N, adjust=False)).alias(x) for x in ("_gain", "_loss")),
        (_o(pl.col("return_1d").rolling_std(VOL_N, min_samples=VOL_N, ddof=1)) * ANNUALISE).alias("volatility_21d"),
    ]


def rsi_exprs() -> list[pl.Expr]:
    """Step 2b (needs the Wilder averages)."""
    g, lo = pl.col("_gain"), pl.col("_loss")
    rsi = (
        pl.when(g.is_null() | lo.is_null()).then(None)
        .when((lo == 0) & (g == 0)).then(None)
        .when(lo == 0).then(100.0)
        .otherwise(100.0 - 100.0 / (1.0 + g / lo))
    )
    return [rsi.alias("rsi_14")]


def _trailing(stat: str):
    """Trailing VOL_WINDOW-row rank ("max": values <= today's) or median over the whole column:
    pandas' skip-list windows are O(log n) per row, Polars' rolling rank/median O(n). Windows
    that reach into the previous symbol are masked by `regime_vol_exprs`."""

    def run(s: pl.Series) -> pl.Series:
        w = s.to_pandas().rolling(VOL_WINDOW, min_periods=VOL_WINDOW)
        out = w.rank(method="max") if stat == "rank" else w.median()
        return pl.Series(s.name, out.to_numpy(), dtype=pl.Float64, nan_to_null=True)

    return run


def regime_vol_exprs() -> list[pl.Expr]:
    """Step 3 (needs volatility_21d; the whole frame at once, sorted by symbol then date)."""
    v = pl.col("volatility_21d")
    own = pl.col(POSITION) >= VOL_WINDOW - 1  # the window holds only this symbol's rows
    rank = pl.when(own).then(v.map_batches(_trailing("rank"), return_dtype=pl.Float64))
    med = pl.when(own).then(v.map_batches(_trailing("median"), return_dtype=pl.Float64))
    return [
        (100.0 * rank / VOL_WINDOW).alias("vol_percentile"),
        _finite(v / med).alias("k_vol"),
    ]


def pivot_exprs() -> list[pl.Expr]:
    """Daily floor pivots from the previous row (the prior session)."""
    h, lo, c = (_lag(pl.col(x), 1) for x in ("high", "low", "close"))
    p = (h + lo + c) / 3
    return [
        p.alias("p"),
        (2 * p - lo).alias("r1"),
        (p + (h - lo)).alias("r2"),
        (2 * p - h).alias("s1"),
        (p - (h - lo)).alias("s2"),
    ]


def pivot_exprs_2() -> list[pl.Expr]:
    c, p = pl.col("close"), pl.col("p")
    levels = ["p", "r1", "r2", "s1", "s2"]
    dists = [(c - pl.col(x)).abs() for x in levels]
    best = pl.min_horizontal(dists)
    nearest = pl.when(p.is_null()).then(None)
    for x, dist in zip(levels, dists):
        nearest = nearest.when(dist == best).then(pl.col(x))
    return [
        _finite((c - p) / p).alias("distance_to_p"),
        _finite((c - nearest) / nearest).alias("distance_to_nearest"),
        _finite((c - pl.col("_weekly_p")) / pl.col("_weekly_p")).alias("weekly_p_distance"),
        (c > p).alias("is_above_p"),
    ]


def weekly_pivots(daily: pl.LazyFrame) -> pl.LazyFrame:
    """(symbol, _week, _weekly_p): P of the previous week with sessions, for each week."""
    weeks = (
        daily.group_by(SYMBOL, "_week")
        .agg(
            pl.when(pl.col("high").null_count() == 0).then(pl.col("high").max()).alias("_wh"),
            pl.when(pl.col("low").null_count() == 0).then(pl.col("low").min()).alias("_wl"),
            pl.col("close").sort_by("date").last().alias("_wc"),
        )
        .sort(SYMBOL, "_week")
    )
    wp = (pl.col("_wh") + pl.col("_wl") + pl.col("_wc")) / 3
    return weeks.select(SYMBOL, "_week", _o(wp.shift(1)).alias("_weekly_p"))


def target_exprs(adjusted: bool = False) -> list[pl.Expr]:
    c = pl.col("close")
    out = []
    for h, n in HORIZONS.items():
        fwd = rolls.forward(n, _lag, adjusted)
        out.append(fwd.alias(f"fwd_close_{h}"))
        out.append(_finite((fwd / c).log()).alias(f"target_{h}"))
    return out
