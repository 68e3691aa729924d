"""predictions: forecasts produced by training runs."""

from .. import columns as c
from .. import rules as r
from ..sources import CBI
from ..model import Contract, Partition


zl_forecasts = Contract(
    dataset="predictions",
    table="zl_forecasts",
    description="Latest P10/P50/P90 forecasts per horizon, ready to push.",
    columns=(
        c.as_of_date.required(), c.symbol.required(), c.horizon.required(), c.run_id.required(), c.target_date,
        c.p10, c.p50, c.p90, c.point, c.method, c.matrix_source, c.is_research, c.created_at, c.batch_id,
    ),
    primary_key=("symbol", "as_of_date", "horizon", "run_id"),
    partition=Partition("as_of_date", "MONTH"),
    clustering=("symbol", "horizon"),
    sources=(CBI,),
    rules=(r.unique_key(), r.not_null("as_of_date", "horizon", "p50"), r.positive("p10", "p50", "p90")),
    # Forecasts from a research (non-canonical) matrix stay local, like the research matrix rows.
    push_only_where="NOT is_research",
)

CONTRACTS = (zl_forecasts,)
