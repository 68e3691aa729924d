"""Positioning features from CFTC Commitments of Traders (raw_intelligence.cftc_cot), as known on each date.

Release rule (no look-ahead): COT positions are as of a Tuesday and released on the Friday at
15:30 ET, a few days later when a federal holiday falls in the week. A report dated T is used from
T + 7 days (the next Tuesday): one session later than the usual Friday release, so a delayed
release is still never used before it was public. A feature row of date d takes the latest report
usable on d; none within 21 days (the market stopped reporting, or has not started) gives NULL.

Per contract market (cftc_cot.contract_code = the matrix symbol, e.g. ZL), in report order:
  commercial_net_pct_oi     = commercial_net / open_interest * 100
  managed_money_net_pct_oi  = managed_money_net / open_interest * 100 (NULL where the source has none)
  commercial_net_change_1w  = commercial_net_pct_oi - the previous report's
  commercial_net_pctile_3y  = rank of commercial_net_pct_oi among the last 156 reports (itself
                              included, ties ranked high) / the reports in that window; NULL before 52
"""

from __future__ import annotations

import polars as pl

USABLE_AFTER_DAYS = 7
STALE_AFTER_DAYS = 21
WINDOW, MIN_REPORTS = 156, 52
FIELDS = ("commercial_net_pct_oi", "managed_money_net_pct_oi", "commercial_net_change_1w", "commercial_net_pctile_3y")


def positioning_frame(rows: pl.LazyFrame, cot: pl.LazyFrame) -> pl.LazyFrame:
    """rows: symbol, date (sorted by symbol, date). cot: symbol, report_date, commercial_net,
    managed_money_net, open_interest. Returns rows with the FIELDS joined as known on each date."""
    pct = (
        cot.filter(pl.col("open_interest") > 0)
        .sort("symbol", "report_date")
        .with_columns(
            (pl.col("commercial_net") / pl.col("open_interest") * 100).alias("commercial_net_pct_oi"),
            (pl.col("managed_money_net") / pl.col("open_interest") * 100).alias("managed_money_net_pct_oi"),
        )
    )
    rank = pl.col("commercial_net_pct_oi").rolling_rank(window_size=WINDOW, method="max", min_samples=MIN_REPORTS)
    in_window = (pl.int_range(pl.len()) + 1).clip(upper_bound=WINDOW)
    reports = pct.with_columns(
        (pl.col("commercial_net_pct_oi") - pl.col("commercial_net_pct_oi").shift(1)).over("symbol")
        .alias("commercial_net_change_1w"),
        (rank / in_window).over("symbol").alias("commercial_net_pctile_3y"),
        pl.col("report_date").dt.offset_by(f"{USABLE_AFTER_DAYS}d").alias("_usable"),
    ).select("symbol", "_usable", *FIELDS).sort("_usable")
    return rows.sort("date").join_asof(
        reports, left_on="date", right_on="_usable", by="symbol", strategy="backward",
        tolerance=f"{STALE_AFTER_DAYS}d", check_sortedness=False,
    ).drop("_usable")
