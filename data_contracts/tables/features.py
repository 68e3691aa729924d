"""features: the denormalised daily matrix (STRUCTs, no JOINs at query time)."""

from .. import columns as c
from .. import rules as r
from ..sources import CBI
from ..model import Contract, FlatView, Partition

daily_ml_matrix = Contract(
    dataset="features",
    table="daily_ml_matrix",
    description="One row per (date, symbol): market, pivots, regime, macro, cross-asset, positioning and calendar STRUCTs plus forward targets per horizon.",
    columns=(
        c.date.required(), c.symbol.required(), c.matrix_source.required(), c.regime_name,
        c.market_data, c.pivots, c.regime, c.macro, c.cross_asset, c.positioning, c.calendar, *c.TARGETS, *c.FORWARD_CLOSES, c.batch_id, c.created_at,
    ),
    primary_key=("date", "symbol", "matrix_source"),
    partition=Partition("date", "MONTH"),
    clustering=("symbol", "regime_name"),
    sources=(CBI,),
    rules=(
        r.not_null("date", "symbol", "matrix_source"),
        r.unique_key(),
        r.no_placeholders("market_data.close", "market_data.volatility_21d"),
        r.forbidden_values("regime_name", "allhistory"),
    ),
    # Research (yahoo_historical) rows never reach the canonical BigQuery table.
    push_only_where="matrix_source = 'canonical'",
)

CONTRACTS = (daily_ml_matrix,)

vw_daily_ml_flat = FlatView(
    dataset="features",
    name="vw_daily_ml_flat",
    source=daily_ml_matrix.fqn,
    description="features.daily_ml_matrix with one column per STRUCT field (<struct>__<field>), "
                "for training and export.",
)

VIEWS = (vw_daily_ml_flat,)
