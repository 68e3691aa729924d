"""training: model runs."""

from .. import columns as c
from .. import rules as r
from ..sources import CBI
from ..model import Contract, Partition


model_runs = Contract(
    dataset="training",
    table="model_runs",
    description="One row per (run, horizon): params, data window, features, fold and overall metrics beside baselines.",
    columns=(
        c.run_id.required(), c.horizon.required(), c.created_at.required(), c.symbol, c.matrix_source, c.is_research,
        c.params, c.train_start, c.train_end, c.feature_names, c.fold_metrics, c.metrics, c.feature_importance,
        c.git_commit, c.data_fingerprint, c.model_path, c.seed, c.batch_id, c.method, c.scores,
    ),
    primary_key=("run_id", "horizon"),
    partition=Partition("created_at", "MONTH"),
    clustering=("symbol", "horizon"),
    sources=(CBI,),
    rules=(r.unique_key(), r.not_null("run_id", "horizon", "created_at")),
)

CONTRACTS = (model_runs,)
