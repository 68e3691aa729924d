"""regimes: the registry (canonical) and the calendar derived from it."""

from .. import columns as c
from .. import rules as r
from ..sources import REGISTRY
from ..model import Contract, Partition


regime_weights = Contract(
    dataset="regimes",
    table="regime_weights",
    description="Regime definitions: date range and training weight. Canonical; the calendar derives from it.",
    columns=(c.regime_name.required(), c.start_date.required(), c.end_date.required(), c.regime_weight.required(), c.description, *c.LINEAGE),
    primary_key=("regime_name",),
    sources=(REGISTRY,),
    rules=(r.unique_key(), r.value_range("regime_weight", 50, 5000), r.forbidden_values("regime_name", "allhistory")),
)

regime_calendar = Contract(
    dataset="regimes",
    table="regime_calendar",
    description=(
        "One row per calendar day with its regime, derived from regime_weights (specific regime over the "
        "baseline fallback), 2000-01-01 to the last day a specific regime covers."
    ),
    columns=(c.date.required(), c.regime_name.required(), c.regime_weight.required(), *c.LINEAGE),
    primary_key=("date",),
    # Monthly: one row a day made daily partitions (9,497 of BigQuery's 10,000 per table) a ceiling the
    # calendar would hit by 2027; an existing daily table is repartitioned by the push (sync/push.py).
    partition=Partition("date", "MONTH"),
    clustering=("regime_name",),
    sources=(REGISTRY,),
    rules=(
        r.unique_key(),
        r.value_range("regime_weight", 50, 5000),
        r.forbidden_values("regime_name", "allhistory"),
        r.min_distinct("regime_name", 7),
    ),
)

CONTRACTS = (regime_weights, regime_calendar)
