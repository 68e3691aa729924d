"""market_data: Databento bars per contract, the continuous front-month series, the Yahoo bridge."""

from .. import columns as c
from .. import rules as r
from ..sources import DATABENTO, YAHOO_ZL_BRIDGE, YAHOO
from ..model import Contract, Partition

# MES is the user's private book: its rows are pushed only to private tables.
PRIVATE_ROOTS = "root = 'MES'"

_BAR_RULES = (
    r.not_null("ts_event", "symbol", "root", "open", "high", "low", "close", "source", "batch_id"),
    r.unique_key(),
    r.ohlc_sane(),
    r.non_negative("volume"),
    r.no_spreads("symbol"),
    r.source_hierarchy("source"),
    r.freshness("ts_event", max_age_days=7),
)

# Partition grain follows volume: BigQuery caps a table at 10,000 partitions, so 1s/1m
# bars take DAY (15 years ~ 5,600), 1h MONTH and 1d YEAR.
_BAR_GRAIN = {"1s": "DAY", "1m": "DAY", "1h": "MONTH", "1d": "YEAR"}


def _bars(interval: str) -> Contract:
    return Contract(
        dataset="market_data",
        table=f"databento_futures_ohlcv_{interval}",
        description=f"Databento GLBX.MDP3 ohlcv-{interval} bars per outright contract (no spreads).",
        columns=(
            c.ts_event.required(), c.symbol.required(), c.root.required(), c.instrument_id, c.publisher_id,
            c.open, c.high, c.low, c.close, c.volume, *c.LINEAGE,
        ),
        primary_key=("symbol", "ts_event"),
        partition=Partition("ts_event", _BAR_GRAIN[interval]),  # type: ignore[arg-type]
        clustering=("root", "symbol"),
        sources=(DATABENTO,),
        rules=_BAR_RULES,
        private_rows=PRIVATE_ROOTS,
    )


ohlcv_1s, ohlcv_1m, ohlcv_1h, ohlcv_1d = (_bars(i) for i in ("1s", "1m", "1h", "1d"))

statistics = Contract(
    dataset="market_data",
    table="databento_futures_statistics",
    description="Databento statistics records (settlement price, open interest ...); UNDEF sentinels are NULL.",
    columns=(
        c.ts_event.required(), c.ts_recv, c.ts_ref, c.symbol.required(), c.root.required(), c.instrument_id,
        c.publisher_id, c.stat_type.required(), c.price, c.quantity, c.sequence.required(), c.update_action,
        c.stat_flags, *c.LINEAGE,
    ),
    primary_key=("symbol", "ts_event", "stat_type", "sequence"),
    partition=Partition("ts_event", "MONTH"),
    clustering=("root", "symbol", "stat_type"),
    sources=(DATABENTO,),
    rules=(r.not_null("ts_event", "symbol", "stat_type"), r.unique_key(), r.no_spreads("symbol"), r.source_hierarchy("source")),
    private_rows=PRIVATE_ROOTS,
)

futures_continuous_1d = Contract(
    dataset="market_data",
    table="futures_continuous_1d",
    description=(
        "Front-month continuous daily series per root: highest-volume outright per CME session date "
        "(volume roll). Databento only, except the recorded Yahoo stitch for ZL before 2010-06-06. Beside each row: the "
        "next-expiring outright's close that session (the term structure) and the row contract's close the session before "
        "(on a roll date the new contract's: what a ratio back-adjustment needs)."
    ),
    columns=(
        c.date.required(), c.root.required(), c.symbol.required(), c.open, c.high, c.low, c.close, c.volume,
        c.roll_from_symbol, c.contract_prior_close, c.next_symbol, c.next_close, *c.LINEAGE,
    ),
    primary_key=("root", "date"),
    partition=Partition("date", "MONTH"),
    clustering=("root",),
    sources=(
        DATABENTO,
        YAHOO_ZL_BRIDGE,
    ),
    rules=(
        r.not_null("date", "root", "symbol", "close", "source"),
        r.unique_key(),
        r.ohlc_sane(),
        r.non_negative("volume"),
        r.no_spreads("symbol"),
        r.source_hierarchy("source"),
        r.freshness("date", max_age_days=7),
    ),
    private_rows=PRIVATE_ROOTS,
)

yahoo_historical = Contract(
    dataset="market_data",
    table="yahoo_historical",
    description="Yahoo-derived daily prices from the legacy warehouse: a bridge and research source, never canonical.",
    columns=(
        c.date.required(), c.symbol.required(), c.source_symbol, c.open, c.high, c.low, c.close, c.volume,
        c.source_name, c.legacy_table, *c.LINEAGE,
    ),
    primary_key=("symbol", "date"),
    partition=Partition("date", "YEAR"),
    clustering=("symbol",),
    sources=(YAHOO,),
    rules=(
        # source_name is the legacy provenance kept for audit: a row without it has none.
        r.not_null("date", "symbol", "close", "source_name"),
        r.unique_key(),
        # Yahoo's futures close is the settlement price: on thin days it lies outside the traded
        # high/low (5,478 legacy rows before 2011). Real, so declared; the canonical continuous table
        # stays strict (its Yahoo stitch withholds open/high/low on such days).
        r.ohlc_sane(close_may_be_settlement=True),
        r.non_negative("volume"),
        r.not_single_timestamp("date"),
        r.source_hierarchy("source"),
    ),
)

# The legacy market_data.hourly_prices is not hourly bars: it is Yahoo quote snapshots (a price and
# the volume so far, taken whenever a cron job ran, 2025-10-30..11-04). It keeps its own research
# table so the rows stay queryable without posing as bars; never canonical, never pushed.
yahoo_quote_snapshots = Contract(
    dataset="market_data",
    table="yahoo_quote_snapshots",
    description=(
        "Intraday Yahoo quote snapshots (price and volume at the moment the legacy job ran), migrated from "
        "the legacy market_data.hourly_prices. Research only: not bars, never canonical, never pushed."
    ),
    columns=(
        c.ts_event.required(), c.symbol.required(), c.source_symbol, c.price, c.volume, c.source_name,
        c.legacy_table, *c.LINEAGE,
    ),
    primary_key=("symbol", "ts_event"),
    # A few hundred rows over five days: no partitioning needed (and none to outgrow).
    clustering=("symbol",),
    sources=(YAHOO,),
    rules=(
        r.not_null("ts_event", "symbol", "price", "source_name"),
        r.unique_key(),
        r.positive("price"),
        r.non_negative("volume"),
        r.source_hierarchy("source"),
    ),
    sync="local",
)

CONTRACTS = (ohlcv_1s, ohlcv_1m, ohlcv_1h, ohlcv_1d, statistics, futures_continuous_1d, yahoo_historical, yahoo_quote_snapshots)
