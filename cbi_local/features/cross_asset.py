"""Cross-asset features: the related markets' returns and their co-movement with the row's symbol.

Legs (the matrix source's own daily closes; never mixed): soybeans ZS, soybean meal ZM, crude CL,
the S&P 500 (research: Yahoo SPX; canonical: the ES continuous series) and the dollar index
(research: Yahoo DXY; canonical: DX). Canonical rows read only canonical (continuous) inputs and
the research matrix only the legacy Yahoo series, so a leg missing from a source is NULL there
(with a `missing_input` warning), never borrowed from the other.

Per leg L, on a date d where L has a close:
  <l>_ret_1d   = ln(close_d / close of L's previous row)
  <l>_ret_21d  = ln(close_d / close of L's row 21 rows earlier)
  <l>_corr_63d = correlation of the row symbol's 1-day log returns with L's over the row's last 63
                 rows (dates where both exist; at least 40 pairs), NULL otherwise, and NULL on the
                 rows of L itself (its correlation with itself is 1 by definition)
oil_share = ZL x 11 / (ZL x 11 + ZM x 2.2): the oil's share of the crush value (a bushel of
soybeans yields ~11 lb of oil and ~44 lb = 0.022 short tons of meal; ZL in cents/lb, ZM in $/short
ton, so the meal value in cents is ZM x 100 x 0.022 = ZM x 2.2), from the same date's closes.
Everything uses closes up to and including d: known at d's close, like the row's own close.
With roll_adjustment 'ratio' the legs' returns are ratio back-adjusted at their recorded rolls (rolls.py).
"""

from __future__ import annotations

import polars as pl

from . import rolls

LEGS = {"zs": "ZS", "zm": "ZM", "cl": "CL", "spx": {"yahoo_historical": "SPX", "canonical": "ES"},
        "dxy": {"yahoo_historical": "DXY", "canonical": "DX"}}
CORR_WINDOW, CORR_MIN = 63, 40


def leg_symbols(source: str) -> dict[str, str]:
    return {k: (v if isinstance(v, str) else v[source]) for k, v in LEGS.items()}


def fields() -> list[str]:
    out = [f"{k}_{what}" for k in LEGS for what in ("ret_1d", "ret_21d", "corr_63d")]
    return out + ["oil_share"]


def _shift(e: pl.Expr, k: int) -> pl.Expr:
    return e.shift(k)


def leg_frame(daily: pl.LazyFrame, source: str, adjusted: bool = False) -> pl.LazyFrame:
    """daily: symbol, date, close (every symbol read, sorted by symbol, date) -> date + each leg's
    ret_1d, ret_21d (computed on the leg's own rows) + the ZL/ZM closes for oil_share. `adjusted`:
    the legs' returns across their recorded rolls ratio back-adjusted (rolls.py; daily has its columns)."""
    legs = leg_symbols(source)
    wide = None
    for key, sym in legs.items():
        leg = (
            daily.filter((pl.col("symbol") == sym) & pl.col("close").is_not_null() & (pl.col("close") > 0))
            .sort("date")
            .select("date",
                    rolls.ratio(1, _shift, adjusted).log().alias(f"{key}_ret_1d"),
                    rolls.ratio(21, _shift, adjusted).log().alias(f"{key}_ret_21d"))
        )
        wide = leg if wide is None else wide.join(leg, on="date", how="full", coalesce=True)
    closes = (daily.filter(pl.col("symbol").is_in(["ZL", "ZM"]) & pl.col("close").is_not_null())
              .group_by("date").agg(*(pl.col("close").filter(pl.col("symbol") == s).first().alias(f"_{s}")
                                      for s in ("ZL", "ZM"))))
    assert wide is not None
    oil = pl.col("_ZL") * 11 / (pl.col("_ZL") * 11 + pl.col("_ZM") * 2.2)
    return wide.join(closes.select("date", oil.alias("oil_share")), on="date", how="full", coalesce=True)


def with_correlations(lf: pl.LazyFrame, source: str) -> pl.LazyFrame:
    """Rows (symbol, date order) holding `return_1d` (the row symbol's) and the legs' ret_1d -> + corr_63d.
    A leg that is the row's own symbol (ES rows' S&P leg, ZS rows' soybean leg) has no correlation:
    NULL, not an identical 1.0 (a constant the placeholder checks rightly refuse)."""
    legs = leg_symbols(source)
    return lf.with_columns(
        pl.when(pl.col("symbol") != legs[k]).then(
            pl.rolling_corr(pl.col("return_1d"), pl.col(f"{k}_ret_1d"), window_size=CORR_WINDOW, min_samples=CORR_MIN)
            .over("symbol")).alias(f"{k}_corr_63d")
        for k in LEGS
    )
