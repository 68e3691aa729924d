"""Term-structure features: the front contract against the next expiry, from the Databento outrights.

Inputs, per canonical row (market_data.futures_continuous_1d, cbi_local.continuous): the front (the
row's contract and close), `next_symbol` / `next_close` (the outright expiring next after the front
with a daily bar of the same kind that session), the recorded roll (`roll_from_symbol`), and the
front's expiration from its instrument definition (dim.instruments: the definition of that symbol
with the nearest expiration on or after the date; CME reuses a symbol every ten years).

Fields (every one NULL unless the session has the second contract's close, i.e. two or more
outrights traded; with one contract only, as in the sample, the STRUCT is NULL with a
`missing_input` warning):
  second_symbol          = next_symbol
  front_minus_second     = front close - second close (display units; negative: contango)
  front_minus_second_rel = front close / second close - 1
  front_days_to_expiry   = calendar days from the date to the front's expiration date (UTC);
                           NULL without a definition (its own warning)
  is_roll_day            = the continuous series rolled into the front on this session (a recorded
                           roll: both rows Databento; a stitch to or from the Yahoo bridge is none)

Release rule (no look-ahead): everything is known at the date's close, like the row's own close.
Both closes are that session's daily bars; the roll is decided by that session's volumes (known at
its close); the expiration is a term of the contract, fixed when CME lists it (its definition exists
before the contract's first trade). Nothing reads a later session. The research matrix
(yahoo_historical) has no outrights: NULL there, with a warning.
"""

from __future__ import annotations

import polars as pl

from . import rolls

FIELDS = ("second_symbol", "front_minus_second", "front_minus_second_rel", "front_days_to_expiry", "is_roll_day")
INPUTS = ("next_symbol", "next_close", "front_expiry")  # front_expiry: joined by expiry_frame


def has_second() -> pl.Expr:
    return pl.col("next_close").is_not_null() & (pl.col("next_close") > 0) & (pl.col("close") > 0)


def expiry_frame(rows: pl.LazyFrame, expiries: pl.LazyFrame) -> pl.LazyFrame:
    """rows: symbol, date, contract, next_close, close (the rows that may have a term structure);
    expiries: contract, expiry (dim.instruments) -> symbol, date, front_expiry: the front's definition
    expiring next on or after the date (CME reuses a symbol every ten years). Only rows with a second
    contract are looked up (none in the sample)."""
    return (
        rows.filter(has_second()).select("symbol", "date", "contract").sort("date")
        .join_asof(expiries.sort("expiry"), left_on="date", right_on="expiry", by="contract", strategy="forward",
                   check_sortedness=False)
        .select("symbol", "date", pl.col("expiry").alias("front_expiry"))
    )


def term_structure_exprs(lag) -> list[pl.Expr]:
    """On rows sorted by (symbol, date) holding close, source, roll_from_symbol and INPUTS; `lag(expr,
    1)`: the symbol's previous row (indicators._lag)."""
    c, nxt, two = pl.col("close"), pl.col("next_close"), has_second()
    return [
        pl.when(two).then(pl.col("next_symbol")).alias("second_symbol"),
        pl.when(two).then(c - nxt).alias("front_minus_second"),
        pl.when(two).then(c / nxt - 1).alias("front_minus_second_rel"),
        pl.when(two).then((pl.col("front_expiry") - pl.col("date")).dt.total_days()).alias("front_days_to_expiry"),
        pl.when(two).then(rolls.is_roll(lag)).alias("is_roll_day"),
    ]
