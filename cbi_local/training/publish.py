"""The publication gate: which forecast of a horizon goes to predictions.zl_forecasts.

Protocol: `choose(pooled)` reads the pooled out-of-fold scores of every method on the same test
rows (metrics.compare_methods: "model" and the BASELINES) and returns (method, reason).

* The model is published only when it beats every baseline (no_change, drift, vol_band) on the
  quantile score and on MAPE, and a Diebold-Mariano test (HLN, one-sided, Newey-West h-1 lags)
  says it is better than no_change on the absolute % error and better than vol_band on the
  per-row quantile loss, each with p < GATE_P (0.10).
* Otherwise the best baseline is published, named in the row's `method`: the lowest quantile
  score among the baselines whose MAPE is no worse than no_change's (no_change and vol_band
  share the no-change point, so both always qualify; drift qualifies only when its drift helps).
  A baseline that cannot be scored on every test row or cannot forecast from today's row (the
  vol band without today's volatility_21d) is skipped; no_change always can.

`as_of(dates, volume)` picks the row the forecasts are made from: the last row of the window
whose volume is real -- not NULL, not 0, and not equal to the previous row's (a repeated volume is a
stale or forward-filled bar: the legacy Yahoo ZL series repeats the previous session's on 288 days,
its last row among them). A row that is not real is skipped, stepping back at most
AS_OF_MAX_STEP_BACK (5) sessions, and the report names the as-of date used and each skipped date
with its reason (as `choose` skips a baseline that cannot forecast from the as-of row). With no
real volume in those rows the run is refused, nothing trained or recorded (as for a window that
cannot be trained on): a forecast from a bar over a week old is not today's forecast.

`consistent(forecasts)` then makes the published bands consistent across horizons, in horizon
order: P10 <= P50 <= P90 per row, the point clipped into [P10, P90], and each half-width (P50 -
P10 and P90 - P50, in log terms) never narrower than the previous horizon's (a running maximum:
bands only widen, so a band's coverage can only grow).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from data_contracts.columns import HORIZONS

from .metrics import BASELINES, QUANTILES

GATE_P = 0.10
AS_OF_MAX_STEP_BACK = 5  # sessions a forecast may step back from the window's last row (one week)
AS_OF_RULE = ("the as-of row is the last row whose market_data.volume is real: not NULL, not 0, not equal to the "
              f"previous row's (a stale or forward-filled bar); at most {AS_OF_MAX_STEP_BACK} sessions back")


def _ok(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def choose(pooled: dict[str, dict[str, float]], unusable: set[str] | frozenset[str] = frozenset()) -> tuple[str, str]:
    """`unusable`: methods that cannot forecast from today's row (e.g. vol_band without a
    volatility_21d on the as-of row); never published."""
    m = pooled["model"]
    losses = []
    for b in BASELINES:
        s = pooled[b]
        lost = ([f"quantile score {m['quantile_score']:.3f} vs {s['quantile_score']:.3f}"]
                if not m["quantile_score"] < s["quantile_score"] else [])
        lost += [f"MAPE {m['mape']:.2f} vs {s['mape']:.2f}"] if not m["mape"] <= s["mape"] else []
        if lost:
            losses.append(f"{b} ({', '.join(lost)})")
    dm = {ref: m.get(f"dm_p_better_{ref}") for ref in ("no_change", "vol_band")}
    weak = {ref: p for ref, p in dm.items() if not (_ok(p) and p < GATE_P)}
    if not losses and not weak and "model" not in unusable:
        return "model", (f"the model beats every baseline on MAPE and quantile score, with DM p < {GATE_P} "
                         "against no_change and vol_band")
    why = ([f"loses to {'; '.join(losses)}"] if losses else []) + (
        [f"DM p that it beats {', '.join(f'{r} {p:.3f}' if _ok(p) else f'{r} n/a' for r, p in weak.items())} "
         f"(needs < {GATE_P})"] if weak else [])
    ref = pooled["no_change"]["mape"]
    eligible = [b for b in BASELINES if b not in unusable and _ok(pooled[b]["quantile_score"])
                and pooled[b]["mape"] <= ref] or ["no_change"]
    best = min(eligible, key=lambda b: (pooled[b]["quantile_score"], BASELINES.index(b)))
    return best, "the model " + "; ".join(why)


def as_of(dates: np.ndarray, volume: np.ndarray, max_back: int = AS_OF_MAX_STEP_BACK) -> tuple[int | None, list[dict[str, Any]]]:
    """(index of the as-of row or None, the rows after it that were skipped, newest first: date, volume,
    reason). `dates` ascending (datetime64[D]), `volume` float with NaN for NULL. Only the last
    max_back + 1 rows are candidates; None: none of them has a real volume (every one is in `skipped`).
    The first row of the window has no previous row to compare with: judged on NULL and 0 only."""
    v = np.asarray(volume, dtype=np.float64)
    prev = np.concatenate(([np.nan], v[:-1]))
    real = np.isfinite(v) & (v > 0) & ~(v == prev)
    first = max(v.size - max_back - 1, 0)
    candidates = np.flatnonzero(real[first:]) + first
    row = int(candidates[-1]) if candidates.size else None
    skipped = []
    for i in range(v.size - 1, first - 1 if row is None else row, -1):  # at most max_back + 1 rows
        if not np.isfinite(v[i]):
            why = "no volume (NULL)"
        elif v[i] <= 0:
            why = f"volume {v[i]:,.0f}"
        else:
            why = f"volume {v[i]:,.0f} repeats the previous session's ({np.datetime_as_string(dates[i - 1], 'D')}): a stale or forward-filled bar"
        skipped.append({"date": np.datetime_as_string(dates[i], "D"),
                        "volume": None if not np.isfinite(v[i]) else int(v[i]), "reason": why})
    return row, skipped


def consistent(forecasts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Forecast dicts (close, point, p10, p50, p90 prices; horizon) made consistent (see above).
    Returns new dicts, in horizon order; `widened` lists the quantiles that were moved."""
    out = []
    lo_w = hi_w = 0.0
    for f in sorted(forecasts, key=lambda f: list(HORIZONS).index(f["horizon"])):
        g = dict(f)
        c = g["close"]
        p10, p50, p90 = sorted(g[k] for k in QUANTILES)
        lo, mid, hi = (math.log(p / c) for p in (p10, p50, p90))
        lo_w, hi_w = max(lo_w, mid - lo), max(hi_w, hi - mid)
        new = {"p10": p10 if lo_w == mid - lo else c * math.exp(mid - lo_w), "p50": p50,
               "p90": p90 if hi_w == hi - mid else c * math.exp(mid + hi_w)}
        g["widened"] = [k for k in QUANTILES if not math.isclose(new[k], f[k], rel_tol=1e-12)]
        g.update(new)
        g["point"] = min(max(g["point"], g["p10"]), g["p90"])
        out.append(g)
    return out
