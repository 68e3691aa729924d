"""Training: LightGBM point + quantile models per horizon on features.daily_ml_matrix.

`train(con, home, TrainOptions(...))` runs purged walk-forward CV, fits the final models,
records training.model_runs + predictions.zl_forecasts (one ops.batches row, kind 'train');
`compare(con, a, b)` gives metric deltas; `list_runs(con)` lists runs. See runs.py.
Every run scores the model beside the baselines on the same test rows (metrics.compare_methods)
and publishes the model's forecast only when it passes the gate (publish.choose); otherwise the
best baseline, named in `method`.
"""

from .cv import CVError, Fold, overlaps, walk_forward
from .data import DataError, Frame, feature_spec, load_frame
from .metrics import BASELINES, QUANTILES, compare_methods, dm_test, evaluate, score
from .publish import GATE_P, choose, consistent
from .runs import MIN_REGIMES, TrainError, TrainOptions, compare, list_runs, plan, resolve_run, train

__all__ = [
    "BASELINES", "GATE_P", "choose", "compare_methods", "consistent", "dm_test",
    "CVError", "DataError", "Fold", "Frame", "MIN_REGIMES", "QUANTILES", "TrainError", "TrainOptions", "compare",
    "evaluate", "feature_spec", "list_runs", "load_frame", "overlaps", "plan", "resolve_run", "score", "train",
    "walk_forward",
]
