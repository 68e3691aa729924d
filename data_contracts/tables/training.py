"""training: model runs."""

from .. import columns as c
from .. import rules as r
from ..sources import CBI
from ..model import Contract, Partition


# Issue 21's columns: `method` (the published method of the horizon) and `scores` (every method's
# scores on the same test rows, per fold and pooled). Composed once data_contracts/columns.py
# declares them (catalog entries proposed by helper h21); until then the scores live in the run
# report and run.json only.
ISSUE_21 = tuple(getattr(c, name) for name in ("method", "scores") if hasattr(c, name))

model_runs = Contract(
    dataset="training",
    table="model_runs",
    description="One row per (run, horizon): params, data window, features, fold and overall metrics beside baselines.",
    columns=(
        c.run_id.required(), c.horizon.required(), c.created_at.required(), c.symbol, c.matrix_source, c.is_research,
        c.params, c.train_start, c.train_end, c.feature_names, c.fold_metrics, c.metrics, c.feature_importance,
        c.git_commit, c.data_fingerprint, c.model_path, c.seed, c.batch_id, *ISSUE_21,
    ),
    primary_key=("run_id", "horizon"),
    partition=Partition("created_at", "MONTH"),
    clustering=("symbol", "horizon"),
    sources=(CBI,),
    rules=(r.unique_key(), r.not_null("run_id", "horizon", "created_at")),
)

CONTRACTS = (model_runs,)
