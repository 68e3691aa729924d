"""LightGBM models of one horizon: a point regression (L2) and quantile models at 0.1/0.5/0.9.

Deterministic: fixed seeds for every random step, `deterministic=True`, col-wise histograms
and a fixed thread count (default 1; recorded in the run's params). Regime weights are normalised to
mean 1 over each training window, so min_sum_hessian and the learning rate mean the same
with and without weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np

from .metrics import QUANTILES

DEFAULT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 7,
    "max_depth": -1,
    "min_data_in_leaf": 100,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "max_bin": 63,
}
DEFAULT_ROUNDS = 100
MODELS = ("point", *QUANTILES)  # point, p10, p50, p90


def lgb_params(seed: int, threads: int | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    p = {
        **DEFAULT_PARAMS,
        **(overrides or {}),
        "seed": seed,
        "bagging_seed": seed,
        "feature_fraction_seed": seed,
        "data_random_seed": seed,
        "deterministic": True,
        "force_col_wise": True,
        # one thread by default: on ~6,000 rows threads cost more than they save, and on a shared
        # machine OpenMP threads that wait for a busy core make a fit 10x slower
        "num_threads": threads or 1,
        "verbosity": -1,
    }
    return p


def objective(name: str) -> dict[str, Any]:
    if name == "point":
        return {"objective": "regression"}
    return {"objective": "quantile", "alpha": QUANTILES[name]}


def normalised(weights: np.ndarray) -> np.ndarray:
    return weights / weights.mean()


@dataclass
class Fitted:
    boosters: dict[str, lgb.Booster]

    def predict(self, X: np.ndarray) -> dict[str, np.ndarray]:
        out = {k: b.predict(X) for k, b in self.boosters.items()}
        if all(k in out for k in QUANTILES):
            # quantile models are fitted separately and can cross: rearrange (sort) per row
            q = np.sort(np.column_stack([out[k] for k in QUANTILES]), axis=1)
            for i, k in enumerate(QUANTILES):
                out[k] = q[:, i]
        return out


def fit(
    X: np.ndarray, y: np.ndarray, weights: np.ndarray | None, params: dict[str, Any], rounds: int,
    feature_names: list[str], models: tuple[str, ...] = MODELS,
) -> Fitted:
    """One Dataset (binned once) shared by every objective."""
    ds = lgb.Dataset(
        X, y, weight=None if weights is None else normalised(weights), feature_name=feature_names,
        params={"max_bin": params["max_bin"], "verbosity": -1, "data_random_seed": params["data_random_seed"]},
        free_raw_data=False,
    )
    ds.construct()
    boosters = {m: lgb.train({**params, **objective(m)}, ds, num_boost_round=rounds) for m in models}
    return Fitted(boosters)
