"""Forecast metrics (NumPy). Prices are close * exp(forecast log return).

* mae, mape (percent) of the forecast price vs the realised close n sessions ahead;
* r2 of the log-return forecast (1 - SSE / SST around the test mean);
* directional_accuracy: share of rows whose forecast sign equals the realised sign;
* pinball_p10/p50/p90: pinball (quantile) loss of the price quantiles;
* coverage_p10_p90: share of realised closes inside [P10, P90].

Baselines, on the same test rows:
* baseline_* (naive no-change): point = today's close (log return 0), so baseline_r2 is
  -mean(y)^2 / var(y); quantiles = today's close * exp(the training window's empirical
  10/50/90% return quantiles); directional accuracy = always the training window's majority sign.
* unweighted_*: the same models trained without regime weights.
"""

from __future__ import annotations

import numpy as np

QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}
CORE = ("mae", "mape", "r2", "directional_accuracy", "pinball_p10", "pinball_p50", "pinball_p90", "coverage_p10_p90")
# compare: lower is better for these (Δ < 0 is an improvement)
LOWER_IS_BETTER = {"mae", "mape", "pinball_p10", "pinball_p50", "pinball_p90"}


def pinball(y: np.ndarray, q: np.ndarray, alpha: float) -> float:
    d = y - q
    return float(np.mean(np.maximum(alpha * d, (alpha - 1.0) * d)))


def score(close: np.ndarray, y: np.ndarray, fwd: np.ndarray, f: dict[str, np.ndarray]) -> dict[str, float]:
    """Core metrics of one forecast `f` ({"point", "p10", "p50", "p90"} log returns; optional
    "direction", the sign forecast when it is not the point's) against realised `y` / `fwd`."""
    price = close * np.exp(f["point"])
    err = np.abs(price - fwd)
    sst = float(np.sum((y - y.mean()) ** 2))
    direction = f.get("direction", f["point"])
    out = {
        "mae": float(err.mean()),
        "mape": float(np.mean(err / np.abs(fwd)) * 100.0),
        "r2": float(1.0 - np.sum((y - f["point"]) ** 2) / sst) if sst > 0 else float("nan"),
        "directional_accuracy": float(np.mean(np.sign(direction) == np.sign(y))),
    }
    for k, alpha in QUANTILES.items():
        out[f"pinball_{k}"] = pinball(fwd, close * np.exp(f[k]), alpha)
    out["coverage_p10_p90"] = float(np.mean((fwd >= close * np.exp(f["p10"])) & (fwd <= close * np.exp(f["p90"]))))
    return out


def baseline(train_y: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """The naive forecasts for `n` test rows, from the training window's returns only."""
    out = {"point": np.zeros(n), "direction": np.full(n, 1.0 if np.mean(train_y > 0) >= 0.5 else -1.0)}
    out.update({k: np.full(n, float(np.quantile(train_y, a))) for k, a in QUANTILES.items()})
    return out


def evaluate(close: np.ndarray, y: np.ndarray, fwd: np.ndarray, forecasts: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """Model metrics beside the naive no-change baseline and the unweighted model.

    `forecasts`: {"model": f, "baseline": f, "unweighted": f} (see `score`)."""
    out: dict[str, float] = {"n_test": int(y.size)}
    out.update(score(close, y, fwd, forecasts["model"]))
    for name in ("baseline", "unweighted"):
        out.update({f"{name}_{k}": v for k, v in score(close, y, fwd, forecasts[name]).items()})
    return out
