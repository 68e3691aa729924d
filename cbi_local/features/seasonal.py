"""Calendar features: the date's place in the year and in the US soybean season.

Known on the date itself (no look-ahead by construction). The season windows are the USDA NASS
"Usual Planting and Harvesting Dates" for US soybeans, most-active span, nationally (Agricultural
Handbook 628): planting 1 May - 15 June, harvest 20 September - 10 November. Per row:
  month, week_of_year (ISO), days_to_planting / days_to_harvest (days until the next window opens;
  0 inside it), in_planting / in_harvest (inside the window).
"""

from __future__ import annotations

import polars as pl

PLANTING = ((5, 1), (6, 15))
HARVEST = ((9, 20), (11, 10))


def _days_to(window: tuple[tuple[int, int], tuple[int, int]]) -> tuple[pl.Expr, pl.Expr]:
    (m0, d0), (m1, d1) = window
    d = pl.col("date")
    year = d.dt.year()
    start = pl.date(year, m0, d0)
    end = pl.date(year, m1, d1)
    inside = (d >= start) & (d <= end)
    nxt = pl.when(d <= end).then(start).otherwise(pl.date(year + 1, m0, d0))
    days = pl.when(inside).then(0).otherwise((nxt - d).dt.total_days())
    return days, inside


def calendar_exprs() -> list[pl.Expr]:
    p_days, p_in = _days_to(PLANTING)
    h_days, h_in = _days_to(HARVEST)
    d = pl.col("date")
    return [
        d.dt.month().cast(pl.Int64).alias("month"),
        d.dt.week().cast(pl.Int64).alias("week_of_year"),
        p_days.cast(pl.Int64).alias("days_to_planting"),
        h_days.cast(pl.Int64).alias("days_to_harvest"),
        p_in.alias("in_planting"),
        h_in.alias("in_harvest"),
    ]
