"""Macro features from FRED (raw_intelligence.fred_economic), as known on each date.

Publication lag (no look-ahead): an observation dated D becomes usable on `available_from`;
a feature row of date d takes the latest non-NULL observation with available_from <= d
(a NULL observation is FRED's "no value that day": the previous published value stays the
latest known). If that observation became available more than `stale_after` days before d
(the series stopped or has not started), the value is NULL and the build warns.

Rules (conservative; FRED/source release practice in brackets):

* ``daily``  DGS10, DGS2, T10Y2Y, T10YIE, VIXCLS: usable from D + 1 day [H.15 and CBOE values
  appear on FRED the next business day; T10YIE is computed from H.15 yields].
* ``weekly`` DTWEXBGS, DCOILWTICO, DCOILBRENTEU: daily values published once a week; usable from
  the Thursday of the week after D's week (Monday of D's week + 10 days) [H.10 dollar index:
  weekly on Monday for the previous week; EIA spot prices: weekly, mid-week].
* left out: CPIAUCSL and USREC (see MACRO_SERIES).
* ``monthly`` FEDFUNDS (observation dated the 1st of month M, the month's average): usable
  from the 15th of month M+1 (D + 1 month + 14 days) [FRED publishes it in the first days of
  M+1; the 15th leaves a margin for holidays and revisions].

vix_regime: low (< 15), normal (15 <= vix < 25), high (25 <= vix < 35), crisis (>= 35).

crush_margin (board crush, $/bushel) = ZM close * 0.022 + ZL close * 0.11 - ZS close / 100
(ZM in $/short ton, ZL in cents/lb, ZS in cents/bushel: CME display units), from the same
matrix source's closes of the same date; NULL unless all three exist that date.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class MacroSeries:
    field: str  # macro STRUCT field
    series_id: str
    rule: str  # daily | weekly | monthly
    stale_after_days: int


MACRO_SERIES = (
    MacroSeries("dollar_index", "DTWEXBGS", "weekly", 21),
    MacroSeries("dgs10", "DGS10", "daily", 10),
    MacroSeries("t10y2y", "T10Y2Y", "daily", 10),
    MacroSeries("fed_funds", "FEDFUNDS", "monthly", 45),
    MacroSeries("vix", "VIXCLS", "daily", 10),
    MacroSeries("wti", "DCOILWTICO", "weekly", 21),
    MacroSeries("dgs2", "DGS2", "daily", 10),
    MacroSeries("brent", "DCOILBRENTEU", "weekly", 21),
    MacroSeries("t10yie", "T10YIE", "daily", 10),
)
# Left out, on purpose: CPIAUCSL (its release calendar is not in the data: BLS publishes month M's CPI
# mid-M+1, later in a shutdown, so no fixed lag is safe) and USREC (NBER dates recessions months or years
# after the fact and FRED revises the series back: any value would be look-ahead).
SERIES_IDS = tuple(s.series_id for s in MACRO_SERIES)
CRUSH_LEGS = ("ZS", "ZM", "ZL")
VIX_BUCKETS = ((15.0, "low"), (25.0, "normal"), (35.0, "high"))


def available_from(rule: str) -> pl.Expr:
    d = pl.col("obs_date")
    if rule == "daily":
        return d.dt.offset_by("1d")
    if rule == "weekly":
        return d.dt.truncate("1w").dt.offset_by("10d")
    if rule == "monthly":
        return d.dt.offset_by("1mo").dt.offset_by("14d")
    raise ValueError(f"unknown publication rule {rule!r}")


def macro_frame(dates: pl.LazyFrame, fred: pl.LazyFrame) -> pl.LazyFrame:
    """One row per date of `dates` (column date, sorted, unique) with every macro field.
    `fred`: series_id, obs_date, value (non-NULL values only)."""
    out = dates
    for s in MACRO_SERIES:
        obs = (
            fred.filter(pl.col("series_id") == s.series_id)
            .with_columns(available_from(s.rule).alias("_avail"))
            # several observations can become available the same day (weekly releases): the latest wins
            .group_by("_avail").agg(pl.col("value").sort_by("obs_date").last().alias(s.field))
            .sort("_avail")
        )
        out = out.join_asof(
            obs, left_on="date", right_on="_avail", strategy="backward",
            tolerance=f"{s.stale_after_days}d", check_sortedness=False,
        ).drop("_avail")
    vix = pl.col("vix")
    label = pl.when(vix.is_null()).then(None)
    for upper, name in VIX_BUCKETS:
        label = label.when(vix < upper).then(pl.lit(name))
    return out.with_columns(label.otherwise(pl.lit("crisis")).alias("vix_regime"))


def crush_frame(legs: pl.LazyFrame) -> pl.LazyFrame:
    """legs: symbol, date, close for ZS/ZM/ZL -> date, crush_margin (only dates with all three)."""
    wide = (
        legs.filter(pl.col("symbol").is_in(CRUSH_LEGS) & pl.col("close").is_not_null())
        .group_by("date")
        .agg(*(pl.col("close").filter(pl.col("symbol") == leg).first().alias(f"_{leg}") for leg in CRUSH_LEGS))
    )
    crush = pl.col("_ZM") * 0.022 + pl.col("_ZL") * 0.11 - pl.col("_ZS") / 100.0
    return wide.select("date", crush.alias("crush_margin"))
