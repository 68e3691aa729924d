"""Forecast scoring (NumPy, vectorised): the model beside baselines on the same test rows.

Protocol: a forecast `f` of one horizon is {"point", "p10", "p50", "p90"} as log returns
from today's close (optional "direction", the sign forecast when it is not the point's);
prices are close * exp(f[...]); `fwd` is the realised close n sessions ahead, `y` its log
return ln(fwd / close). Every function takes arrays of test rows and returns floats or arrays;
nothing loops over rows.

Scores of one forecast (`score`):
* mae, mape (percent) of the point price vs the realised close;
* r2 of the log-return point (1 - SSE / SST around the test mean);
* directional_accuracy: share of rows whose forecast sign equals the realised sign;
* pinball_p10/p50/p90: pinball (quantile) loss of the price quantiles, in price units;
* quantile_score: the mean of the three pinball losses per row divided by the row's as-of
  close (known when the forecast is made, so the score stays a proper scoring rule), averaged
  over rows, in percent of the price. 2 x quantile_score approximates the CRPS (in % of price)
  from three quantiles;
* coverage_p10_p90: share of realised closes inside [P10, P90].

Baselines, each from the training window's returns only (or today's row), on the same test rows:
* no_change: point = P50 = today's close (log return 0); band = the training window's
  empirical 10/90% return quantiles around their median, centred on today's close;
  direction = the training window's majority sign (the sign of 0 is never a realised sign).
* drift: point = P50 = the training window's mean n-session log return; band = the same
  empirical spread around it; direction = the sign of the drift.
* vol_band: point = P50 = today's close; P10/P90 = close * exp(-/+ 1.2816 * sigma21 * sqrt(n/252)),
  sigma21 = the row's annualised 21-session volatility (market_data.volatility_21d); no training.
  Direction as no_change (the point is the same).

Diebold-Mariano (`dm_test`): loss differential d = loss_a - loss_b per row, long-run variance by
Newey-West (Bartlett weights, h - 1 lags: h-session-ahead forecasts overlap, so d is MA(h-1)),
statistic corrected by Harvey, Leybourne & Newbold (1997) and read against Student t with T - 1
degrees of freedom. `p_value` is two-sided; `p_a_better` is one-sided (H1: a's loss is lower).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

QUANTILES = {"p10": 0.1, "p50": 0.5, "p90": 0.9}
Z90 = float(stats.norm.ppf(0.9))  # 1.2816: the 0.9 quantile of the standard normal
BASELINES = ("no_change", "drift", "vol_band")
METHODS = ("model", *BASELINES)
CORE = ("mae", "mape", "r2", "directional_accuracy", "pinball_p10", "pinball_p50", "pinball_p90", "coverage_p10_p90")
# compare: lower is better for these (Δ < 0 is an improvement)
LOWER_IS_BETTER = {"mae", "mape", "pinball_p10", "pinball_p50", "pinball_p90", "quantile_score"}


# --- losses per row ---------------------------------------------------------------------------


def pinball_loss(y: np.ndarray, q: np.ndarray, alpha: float) -> np.ndarray:
    """Per-row pinball loss of quantile forecast `q` at level `alpha` for outcomes `y`."""
    d = np.asarray(y, dtype=np.float64) - np.asarray(q, dtype=np.float64)
    return np.maximum(alpha * d, (alpha - 1.0) * d)


def pinball(y: np.ndarray, q: np.ndarray, alpha: float) -> float:
    return float(np.mean(pinball_loss(y, q, alpha)))


def prices(close: np.ndarray, f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: close * np.exp(f[k]) for k in ("point", *QUANTILES)}


def abs_pct_error(close: np.ndarray, fwd: np.ndarray, f: dict[str, np.ndarray]) -> np.ndarray:
    """Per-row |point price - realised| / realised * 100."""
    return np.abs(close * np.exp(f["point"]) - fwd) / np.abs(fwd) * 100.0


def quantile_loss(close: np.ndarray, fwd: np.ndarray, f: dict[str, np.ndarray]) -> np.ndarray:
    """Per-row mean pinball loss of P10/P50/P90 prices, in percent of the as-of close."""
    p = prices(close, f)
    total = sum(pinball_loss(fwd, p[k], a) for k, a in QUANTILES.items())
    return total / len(QUANTILES) / close * 100.0


# --- scores ----------------------------------------------------------------------------------


def score(close: np.ndarray, y: np.ndarray, fwd: np.ndarray, f: dict[str, np.ndarray]) -> dict[str, float]:
    """Scores of one forecast `f` against realised `y` / `fwd` (see the module docstring)."""
    p = prices(close, f)
    err = np.abs(p["point"] - fwd)
    sst = float(np.sum((y - y.mean()) ** 2))
    direction = f.get("direction", f["point"])
    out = {
        "mae": float(err.mean()),
        "mape": float(np.mean(err / np.abs(fwd)) * 100.0),
        "r2": float(1.0 - np.sum((y - f["point"]) ** 2) / sst) if sst > 0 else float("nan"),
        "directional_accuracy": float(np.mean(np.sign(direction) == np.sign(y))),
    }
    for k, alpha in QUANTILES.items():
        out[f"pinball_{k}"] = pinball(fwd, p[k], alpha)
    out["quantile_score"] = float(np.mean(quantile_loss(close, fwd, f)))
    out["coverage_p10_p90"] = float(np.mean((fwd >= p["p10"]) & (fwd <= p["p90"])))
    return out


# --- baselines ------------------------------------------------------------------------------


def _spread(train_y: np.ndarray) -> tuple[float, float, float]:
    """(median, P10 - median, P90 - median) of the training returns."""
    q10, q50, q90 = np.quantile(train_y, [0.1, 0.5, 0.9])
    return float(q50), float(q10 - q50), float(q90 - q50)


def no_change(train_y: np.ndarray, n: int) -> dict[str, np.ndarray]:
    _, lo, hi = _spread(train_y)
    sign = 1.0 if np.mean(train_y > 0) >= 0.5 else -1.0
    return {"point": np.zeros(n), "p10": np.full(n, lo), "p50": np.zeros(n), "p90": np.full(n, hi),
            "direction": np.full(n, sign)}


def drift(train_y: np.ndarray, n: int) -> dict[str, np.ndarray]:
    mu = float(np.mean(train_y))
    _, lo, hi = _spread(train_y)
    return {"point": np.full(n, mu), "p10": np.full(n, mu + lo), "p50": np.full(n, mu), "p90": np.full(n, mu + hi),
            "direction": np.full(n, 1.0 if mu >= 0 else -1.0)}


def vol_band(train_y: np.ndarray, vol21: np.ndarray, sessions: int) -> dict[str, np.ndarray]:
    """±Z90 * sigma21 * sqrt(n/252) around no change; `vol21` per test row (annualised)."""
    half = Z90 * np.asarray(vol21, dtype=np.float64) * np.sqrt(sessions / 252.0)
    zero = np.zeros(half.size)
    sign = 1.0 if np.mean(train_y > 0) >= 0.5 else -1.0
    return {"point": zero, "p10": -half, "p50": zero, "p90": half, "direction": np.full(half.size, sign)}


def baselines(train_y: np.ndarray, vol21: np.ndarray, sessions: int) -> dict[str, dict[str, np.ndarray]]:
    """Every baseline for the test rows whose volatility is `vol21`, from the training returns."""
    n = int(np.asarray(vol21).size)
    return {"no_change": no_change(train_y, n), "drift": drift(train_y, n), "vol_band": vol_band(train_y, vol21, sessions)}


def baseline(train_y: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """The naive no-change forecast (the `baseline_*` metrics)."""
    return no_change(train_y, n)


# --- Diebold-Mariano --------------------------------------------------------------------------


def newey_west_variance(d: np.ndarray, lags: int) -> float:
    """Long-run variance of the mean-zero-ed series d with Bartlett weights 1 - k/(lags+1)."""
    e = np.asarray(d, dtype=np.float64) - np.mean(d)
    t = e.size
    lags = max(0, min(int(lags), t - 1))
    gamma = np.array([np.dot(e[k:], e[: t - k]) / t for k in range(lags + 1)])
    w = 1.0 - np.arange(1, lags + 1) / (lags + 1)
    return float(gamma[0] + 2.0 * np.dot(w, gamma[1:]))


def dm_test(loss_a: np.ndarray, loss_b: np.ndarray, h: int) -> dict[str, float]:
    """Diebold-Mariano test of equal expected loss, HLN-corrected (see the module docstring).

    Returns {"dm_stat", "p_value" (two-sided), "p_a_better" (one-sided), "mean_diff", "n"}; the
    statistic is negative when a's loss is lower. NaN when the differential has no variance."""
    d = np.asarray(loss_a, dtype=np.float64) - np.asarray(loss_b, dtype=np.float64)
    t, h = int(d.size), max(1, int(h))
    nan = {"dm_stat": float("nan"), "p_value": float("nan"), "p_a_better": float("nan"),
           "mean_diff": float(np.mean(d)) if t else float("nan"), "n": t}
    if t < 2:
        return nan
    v = newey_west_variance(d, h - 1)
    if not np.isfinite(v) or v <= 0:
        return nan
    dm = float(np.mean(d) / np.sqrt(v / t))
    k = (t + 1 - 2 * h + h * (h - 1) / t) / t
    stat = dm * np.sqrt(k) if k > 0 else dm
    return {"dm_stat": float(stat), "p_value": float(2.0 * stats.t.sf(abs(stat), t - 1)),
            "p_a_better": float(stats.t.cdf(stat, t - 1)), "mean_diff": float(np.mean(d)), "n": t}


# --- block bootstrap -------------------------------------------------------------------------


def block_bootstrap_ci(hits: np.ndarray, block: int, draws: int = 2000, level: float = 0.9,
                       seed: int = 0) -> tuple[float, float]:
    """Moving-block bootstrap interval of the mean of `hits` (blocks of `block` rows, so that
    overlapping h-session outcomes are resampled together)."""
    x = np.asarray(hits, dtype=np.float64)
    t = x.size
    block = max(1, min(int(block), t))
    k = -(-t // block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, t - block + 1, size=(draws, k))
    idx = (starts[:, :, None] + np.arange(block)).reshape(draws, -1)[:, :t]
    means = x[idx].mean(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return float(lo), float(hi)


# --- evaluation --------------------------------------------------------------------------------


def evaluate(close: np.ndarray, y: np.ndarray, fwd: np.ndarray, forecasts: dict[str, dict[str, np.ndarray]]) -> dict[str, float]:
    """Model metrics beside the naive no-change baseline and the unweighted model (the `metrics`
    record: model keys bare, `baseline_*`, `unweighted_*`).

    `forecasts`: {"model": f, "baseline": f, "unweighted": f} (see `score`)."""
    out: dict[str, float] = {"n_test": int(y.size)}
    out.update(score(close, y, fwd, forecasts["model"]))
    for name in ("baseline", "unweighted"):
        out.update({f"{name}_{k}": v for k, v in score(close, y, fwd, forecasts[name]).items()})
    return out


def compare_methods(close: np.ndarray, y: np.ndarray, fwd: np.ndarray, forecasts: dict[str, dict[str, np.ndarray]],
                    sessions: int) -> dict[str, dict[str, float]]:
    """Scores of every method in `forecasts` (model + BASELINES) on the same rows, with DM tests:
    `dm_*_no_change` on the absolute % error against no_change, `dm_*_vol_band` on the per-row
    quantile loss against vol_band (a method is not tested against itself: NaN)."""
    ape = {m: abs_pct_error(close, fwd, f) for m, f in forecasts.items()}
    ql = {m: quantile_loss(close, fwd, f) for m, f in forecasts.items()}
    out: dict[str, dict[str, float]] = {}
    for m, f in forecasts.items():
        s: dict[str, float] = {"n_test": int(y.size), **score(close, y, fwd, f)}
        for ref, loss in (("no_change", ape), ("vol_band", ql)):
            if m == ref or ref not in forecasts:
                s[f"dm_stat_{ref}"] = s[f"dm_p_value_{ref}"] = s[f"dm_p_better_{ref}"] = float("nan")
                continue
            t = dm_test(loss[m], loss[ref], sessions)
            s[f"dm_stat_{ref}"], s[f"dm_p_value_{ref}"], s[f"dm_p_better_{ref}"] = t["dm_stat"], t["p_value"], t["p_a_better"]
        out[m] = s
    return out
