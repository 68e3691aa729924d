"""`train`: purged walk-forward CV, final models, run records, forecasts; `compare`, `list_runs`.

Offline: reads features.daily_ml_matrix from the local warehouse, never BigQuery.

One call = one run (run_id) = one batch in ops.batches (kind 'train'). Per horizon it
1. splits the labelled rows into purged walk-forward folds (cv.walk_forward) and, per fold,
   fits the point + P10/P50/P90 models with regime weights and again without, scoring both
   beside the naive baseline (metrics.evaluate, the `metrics` record); overall metrics pool every
   fold's test rows. On the same rows it scores the model beside the baselines no_change, drift
   and vol_band with Diebold-Mariano tests (metrics.compare_methods, the `scoring` object:
   per fold and pooled; 6m and 12m are marked indicative: few independent windows);
2. fits the final models on every labelled row of the window, saves them under
   <home>/models/<run_id>/<horizon>/ with run.json, and forecasts from the as-of row: the last row
   with a real volume (publish.as_of: a stale last bar is skipped and named in the report's
   `as_of`, at most 5 sessions back; none real: refused);
3. publishes per horizon the model's forecast only when it passes the gate (publish.choose),
   otherwise the best baseline's, named in `method`; the published bands are made consistent
   across horizons (publish.consistent);
4. writes training.model_runs (one row per horizon) and predictions.zl_forecasts (one row per
   horizon, ZL only: the table is ZL's) in one transaction with the batch row (status
   'validated'), then passes the batch through the health gate. The published method is stored
   in both tables' `method` column and every method's scores in training.model_runs.scores
   (data_contracts/tables/training.py); the report, run.json and `cbi train` carry them too.

A run on a non-canonical matrix is research (is_research = true) in every record and display.
The window must hold at least as many regimes as regimes.regime_calendar's min_distinct rule
asks (7); otherwise nothing is trained and nothing is recorded. That rule is of the window, the
same for canonical and research runs; a fold's own floor is `min_train` sessions (252), so an early
fold of an expanding walk-forward can train on fewer regimes: each fold records how many it saw
(`train_regimes`) and whether that is below the window's minimum (`train_regimes_below_minimum`),
and `cbi train` names those folds.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

import data_contracts as dc
from data_contracts import to_duckdb, to_polars
from data_contracts.columns import HORIZONS

from .. import batches, calendars, health
from ..warehouse import transaction
from . import cv
from .data import DataError, Frame, load_frame
from .metrics import BASELINES, LOWER_IS_BETTER, METHODS, QUANTILES, baselines, block_bootstrap_ci, compare_methods, evaluate
from .model import DEFAULT_PARAMS, DEFAULT_ROUNDS, MODELS, fit, lgb_params
from .publish import AS_OF_MAX_STEP_BACK, AS_OF_RULE, GATE_P, as_of, choose, consistent

MODEL_RUNS = dc.get("training.model_runs")
FORECASTS = dc.get("predictions.zl_forecasts")
MIN_REGIMES = int(dc.get("regimes.regime_calendar").rules_of("min_distinct")[0].param("minimum"))
CANONICAL = "canonical"
FORECAST_SYMBOLS = ("ZL",)  # predictions.zl_forecasts holds ZL only
METRIC_FIELDS = [f.name for f in MODEL_RUNS.column("metrics").fields]
FOLD_FIELDS = [f.name for f in MODEL_RUNS.column("fold_metrics").fields]
RUN_COLUMNS = set(MODEL_RUNS.column_names)
FORECAST_COLUMNS = set(FORECASTS.column_names)
SCORE_FIELDS = [f.name for f in MODEL_RUNS.column("scores").fields]
INDICATIVE_SESSIONS = 126  # 6m and 12m: a few independent windows per fold


class TrainError(ValueError):
    pass


@dataclass
class TrainOptions:
    symbol: str = "ZL"
    horizons: list[str] = field(default_factory=lambda: list(HORIZONS))
    matrix_source: str = CANONICAL
    weights: bool = True
    folds: int = 3
    test_size: int | None = None
    embargo: int | None = None  # sessions; None = the horizon (the minimum)
    window: str = "expanding"
    train_size: int | None = None  # rolling window length (rows)
    min_train: int = 252
    seed: int = 42
    rounds: int = DEFAULT_ROUNDS
    threads: int | None = None
    start: date | None = None
    end: date | None = None
    write: bool = True  # record the run (model files, tables, batch)

    def check(self) -> None:
        bad = [h for h in self.horizons if h not in HORIZONS]
        if bad or not self.horizons:
            raise TrainError(f"unknown horizon(s) {bad or self.horizons}; use some of {', '.join(HORIZONS)}")
        if self.matrix_source not in ("canonical", "yahoo_historical"):
            raise TrainError(f"unknown matrix source {self.matrix_source!r}; use canonical or yahoo_historical")
        if self.window not in ("expanding", "rolling"):
            raise TrainError(f"unknown window {self.window!r}; use expanding or rolling")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(d: np.datetime64 | date) -> str:
    return str(np.datetime64(d, "D"))


def _pydate(d: np.datetime64) -> date:
    return date.fromisoformat(_iso(d))


def git_commit() -> str | None:
    repo = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if sha.returncode:
            return None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def target_date(symbol: str, as_of: date, sessions: int) -> tuple[date, str]:
    """The session `sessions` trade dates after as_of: the CME calendar of the root, or weekdays."""
    if symbol in calendars.roots():
        days = calendars.session_dates(symbol, as_of + timedelta(days=1), as_of + timedelta(days=sessions * 2 + 30))
        return days[sessions - 1], f"CME calendar of {symbol}"
    d = np.busday_offset(np.datetime64(as_of, "D"), sessions, roll="forward")
    return _pydate(d), "weekdays (no CME calendar for the symbol)"


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, np.floating):
        return _clean(float(v))
    if isinstance(v, np.integer):
        return int(v)
    return v


def _regime_check(frame: Frame, rows: np.ndarray, what: str) -> list[str]:
    names = sorted({r for r in frame.regimes[rows] if r is not None})
    if len(names) < MIN_REGIMES:
        first, last = _iso(frame.dates[rows[0]]), _iso(frame.dates[rows[-1]])
        raise TrainError(
            f"{frame.symbol} {frame.matrix_source} matrix: {what} {first}..{last} covers {len(names)} regime(s) "
            f"({', '.join(names) or 'none'}); training needs at least {MIN_REGIMES} (rule min_distinct on "
            "regimes.regime_calendar), so nothing was trained or recorded. "
            + ("The canonical series is too short; train the research matrix with --source yahoo_historical "
               "(recorded as research, never production) or extend the canonical data."
               if frame.matrix_source == CANONICAL else "Widen the window (--start/--end).")
        )
    return names


def plan(frame: Frame, opts: TrainOptions) -> dict[str, list[cv.Fold]]:
    """Every horizon's folds, checked before anything is trained."""
    _regime_check(frame, np.arange(frame.rows), "the window")
    out = {}
    for h in opts.horizons:
        lab = frame.labelled(h)
        if lab.size == 0:
            raise TrainError(f"horizon {h}: no row of the window has a known target_{h}")
        _regime_check(frame, lab, f"horizon {h}'s labelled rows")
        if opts.weights:
            missing = lab[~np.isfinite(frame.weights[lab])]
            if missing.size:
                raise TrainError(
                    f"horizon {h}: {missing.size} labelled rows have no regime weight (dates "
                    f"{_iso(frame.dates[missing[0]])}..{_iso(frame.dates[missing[-1]])} are not in regimes.regime_calendar); "
                    "ingest the registry or train with --no-weights"
                )
        try:
            out[h] = cv.walk_forward(
                lab, HORIZONS[h], n_folds=opts.folds, test_size=opts.test_size, embargo=opts.embargo,
                window=opts.window, train_size=opts.train_size, min_train=opts.min_train,  # type: ignore[arg-type]
            )
        except cv.CVError as exc:
            raise TrainError(f"horizon {h}: {exc}") from None
    return out


def _fold_dates(frame: Frame, f: cv.Fold) -> dict[str, Any]:
    d = frame.dates
    return {"train_start": _pydate(d[f.train[0]]), "train_end": _pydate(d[f.train[-1]]),
            "test_start": _pydate(d[f.test[0]]), "test_end": _pydate(d[f.test[-1]])}


def _fit_pair(frame: Frame, rows: np.ndarray, h: str, opts: TrainOptions, params: dict[str, Any]):
    X, y = frame.X[rows], frame.targets[h][rows]
    w = frame.weights[rows] if opts.weights else None
    main = fit(X, y, w, params, opts.rounds, frame.feature_names)
    unweighted = fit(X, y, None, params, opts.rounds, frame.feature_names) if opts.weights else main
    return main, unweighted


def train(con: duckdb.DuckDBPyConnection, home: Path, opts: TrainOptions) -> dict[str, Any]:
    """Train, evaluate, record; returns the report (also the CLI's --json)."""
    t0 = time.perf_counter()
    opts.check()
    symbol = opts.symbol.upper()
    opts.symbol = symbol
    try:
        frame = load_frame(con, symbol, opts.matrix_source, opts.start, opts.end)
    except DataError as exc:
        raise TrainError(str(exc)) from None
    row, skipped = as_of(frame.dates, frame.volume)
    if row is None:
        raise TrainError(
            f"{symbol} {opts.matrix_source} matrix: none of the last {len(skipped)} rows "
            f"({skipped[-1]['date']}..{skipped[0]['date']}) has a real volume ("
            + "; ".join(f"{s['date']}: {s['reason']}" for s in skipped)
            + f"). A forecast needs an as-of bar with a real volume within {AS_OF_MAX_STEP_BACK} sessions of the "
            "window's end, so nothing was trained or recorded; rebuild the matrix once the source has real bars "
            "(`cbi features build`) or end the window earlier (--end)."
        )
    folds = plan(frame, opts)
    params = lgb_params(opts.seed, opts.threads)
    now = _now()
    stamp = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_id, batch_id = f"{symbol.lower()}-{stamp}", f"train-{stamp}"
    is_research = opts.matrix_source != CANONICAL
    regimes = sorted({r for r in frame.regimes if r is not None})
    report: dict[str, Any] = {
        "run_id": run_id, "batch_id": batch_id if opts.write else None, "symbol": symbol,
        "matrix_source": opts.matrix_source, "is_research": is_research,
        "label": "RESEARCH" if is_research else "production",
        "seed": opts.seed, "weights": "regime" if opts.weights else "none", "rows": frame.rows,
        "window": [_iso(frame.dates[0]), _iso(frame.dates[-1])], "regimes": regimes,
        "features": frame.feature_names, "excluded_features": frame.excluded,
        "cv": {"folds": opts.folds, "window": opts.window, "test_size": opts.test_size,
               "embargo": opts.embargo or "horizon", "min_train": opts.min_train},
        "data_fingerprint": frame.fingerprint(), "git_commit": git_commit(), "horizons": {}, "forecasts": [],
        "roll_adjustment": frame.roll_adjustment,  # how the targets treat the recorded rolls (features.rolls)
        "as_of": {"date": _iso(frame.dates[row]), "last_row": _iso(frame.dates[-1]), "skipped": skipped,
                  "rule": AS_OF_RULE},
    }
    run_params = {
        "lightgbm": {k: v for k, v in params.items() if k != "verbosity"}, "num_boost_round": opts.rounds,
        "models": {"point": "regression (L2) on the forward log return",
                   **{k: f"quantile alpha={a}" for k, a in QUANTILES.items()}},
        "quantile_rearrangement": "P10/P50/P90 sorted per row (fitted separately, they can cross)",
        "weights": "regime.weight, normalised to mean 1 per training window" if opts.weights else "none (--no-weights)",
        "cv": report["cv"], "window": report["window"], "rows": frame.rows, "regimes": regimes,
        "excluded_features": frame.excluded, "default_params": DEFAULT_PARAMS, "as_of": report["as_of"],
        "roll_adjustment": frame.roll_adjustment,
        "publication_gate": (f"model published only when it beats no_change, drift and vol_band on MAPE and quantile "
                             f"score with one-sided DM p < {GATE_P} against no_change and vol_band; else the best "
                             "baseline (publish.choose)"),
    }
    model_dir = home / "models" / run_id
    try:
        for h in opts.horizons:
            report["horizons"][h] = _train_horizon(frame, h, folds[h], opts, params, model_dir if opts.write else None, row)
    except BaseException:
        shutil.rmtree(model_dir, ignore_errors=True)
        raise
    score_rows = {h: r.pop("_score_rows") for h, r in report["horizons"].items()}
    report["forecasts"] = consistent([r.pop("_forecast") for r in report["horizons"].values()])
    report["published"] = {f["horizon"]: f["method"] for f in report["forecasts"]}
    report["publication_gate"] = run_params["publication_gate"]
    if opts.write:
        model_dir.mkdir(parents=True, exist_ok=True)
        (model_dir / "run.json").write_text(json.dumps({**report, "params": run_params}, indent=2, default=str))
        report["model_path"] = str(model_dir)
        try:
            _record(con, report, run_params, now, opts, score_rows)
        except BaseException:
            shutil.rmtree(model_dir, ignore_errors=True)
            raise
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


def _train_horizon(frame: Frame, h: str, folds: list[cv.Fold], opts: TrainOptions, params: dict[str, Any],
                   model_dir: Path | None, row: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    y_all, fwd_all = frame.targets[h], frame.fwd_close[h]
    n = HORIZONS[h]
    kinds = ("model", "unweighted", *BASELINES)
    pooled: dict[str, list] = {"rows": [], **{k: [] for k in kinds}}
    fold_out, fold_scores = [], []
    for f in folds:
        main, unw = _fit_pair(frame, f.train, h, opts, params)
        Xt = frame.X[f.test]
        fc = {"model": main.predict(Xt), "unweighted": unw.predict(Xt),
              **baselines(y_all[f.train], frame.vol21[f.test], n)}
        close_t, y_t, fwd_t = frame.close[f.test], y_all[f.test], fwd_all[f.test]
        m = evaluate(close_t, y_t, fwd_t, {**fc, "baseline": fc["no_change"]})
        fold_scores.append(compare_methods(close_t, y_t, fwd_t, {k: fc[k] for k in METHODS}, n))
        for k in pooled:
            pooled[k].append(f.test if k == "rows" else fc[k])
        regimes_train = len({r for r in frame.regimes[f.train] if r is not None})
        fold_out.append({"fold": f.fold, **_fold_dates(frame, f), "n_train": f.n_train, "gap_sessions": f.gap,
                         "train_regimes": regimes_train, "train_regimes_below_minimum": regimes_train < MIN_REGIMES,
                         "label_overlap_rows": cv.overlaps(f, n), "metrics": m})
    rows = np.concatenate(pooled["rows"])
    cat = {k: {q: np.concatenate([d[q] for d in pooled[k]]) for q in pooled[k][0]} for k in kinds}
    close_p, y_p, fwd_p = frame.close[rows], y_all[rows], fwd_all[rows]
    overall = evaluate(close_p, y_p, fwd_p, {**cat, "baseline": cat["no_change"]})
    scores = compare_methods(close_p, y_p, fwd_p, {k: cat[k] for k in METHODS}, n)
    for k in METHODS:
        hits = np.sign(cat[k].get("direction", cat[k]["point"])) == np.sign(y_p)
        lo, hi = block_bootstrap_ci(hits, n, seed=opts.seed)
        scores[k]["directional_accuracy_lo"], scores[k]["directional_accuracy_hi"] = lo, hi

    # final models on every labelled row of the window; forecast from the as-of row (publish.as_of)
    lab = frame.labelled(h)
    final = fit(frame.X[lab], y_all[lab], frame.weights[lab] if opts.weights else None, params, opts.rounds,
                frame.feature_names)
    gains = final.boosters["point"].feature_importance(importance_type="gain")
    importance = sorted(({"feature": name, "gain": float(g)} for name, g in zip(frame.feature_names, gains)),
                        key=lambda r: (-r["gain"], r["feature"]))
    live = {"model": final.predict(frame.X[row:row + 1]), **baselines(y_all[lab], frame.vol21[row:row + 1], n)}
    as_of_date = _pydate(frame.dates[row])
    close = float(frame.close[row])
    tdate, cal = target_date(frame.symbol, as_of_date, n)
    by_method = {k: {q: close * math.exp(float(v[q][0])) for q in ("point", *QUANTILES)} for k, v in live.items()}
    method, reason = choose(scores, {k for k, v in by_method.items() if not all(map(math.isfinite, v.values()))})
    forecast = {"as_of_date": as_of_date, "horizon": h, "target_date": tdate, "target_calendar": cal, "close": close,
                "method": method, **by_method[method], "by_method": by_method}
    if model_dir is not None:
        d = model_dir / h
        d.mkdir(parents=True, exist_ok=True)
        for name, b in final.boosters.items():
            b.save_model(str(d / f"{name}.txt"))
    return {
        "sessions": n, "train_start": _pydate(frame.dates[lab[0]]), "train_end": _pydate(frame.dates[lab[-1]]),
        "n_train": int(lab.size), "folds": fold_out, "metrics": overall,
        "scoring": _scoring(h, n, scores, fold_scores, folds, method, reason),
        "_score_rows": _score_rows(scores, fold_scores, folds, method),
        "feature_importance": importance,
        "models": list(MODELS), "seconds": round(time.perf_counter() - t0, 3), "_forecast": forecast,
    }


_SHOWN = ("mape", "mae", "quantile_score", "coverage_p10_p90", "directional_accuracy", "directional_accuracy_lo",
          "directional_accuracy_hi", "pinball_p10", "pinball_p50", "pinball_p90", "n_test")


_SHOWN_DM = (*_SHOWN, "dm_stat_no_change", "dm_p_value_no_change", "dm_p_better_no_change",
             "dm_stat_vol_band", "dm_p_value_vol_band", "dm_p_better_vol_band")


def _scoring(h: str, n: int, scores: dict[str, dict[str, float]], fold_scores: list[dict[str, dict[str, float]]],
             folds: list[cv.Fold], method: str, reason: str) -> dict[str, Any]:
    """The honest-scoring object of one horizon (every method on the same test rows)."""
    def pick(s: dict[str, float], keys=_SHOWN) -> dict[str, Any]:
        return {k: _clean(s[k]) for k in keys if k in s}

    m = scores["model"]
    n_test = int(m["n_test"])
    return {
        "horizon": h, "sessions": n, "n_test": n_test, "independent_windows": round(n_test / n, 1),
        "indicative": n >= INDICATIVE_SESSIONS,
        "published": {"method": method, "reason": reason, **pick(scores[method]),
                      # the gate's evidence: one-sided DM p that the model beats no_change (abs % error)
                      "dm_p_value": _clean(m["dm_p_better_no_change"])},
        "model": pick(m, _SHOWN_DM),
        "baselines": {b: pick(scores[b], _SHOWN_DM) for b in BASELINES},
        "dm": {ref: {"loss": loss, "stat": _clean(m[f"dm_stat_{ref}"]), "p_value": _clean(m[f"dm_p_value_{ref}"]),
                     "p_model_better": _clean(m[f"dm_p_better_{ref}"])}
               for ref, loss in (("no_change", "absolute % error"), ("vol_band", "per-row quantile loss"))},
        "per_fold": [{"fold": f.fold, **{k: pick(s[k], ("mape", "quantile_score", "coverage_p10_p90",
                                                        "directional_accuracy", "n_test")) for k in METHODS}}
                     for f, s in zip(folds, fold_scores)],
    }


def _score_rows(scores: dict[str, dict[str, float]], fold_scores: list[dict[str, dict[str, float]]],
                folds: list[cv.Fold], method: str) -> list[dict[str, Any]]:
    """training.model_runs.scores: one row per (fold, method), fold NULL = all folds pooled."""
    out = []
    for fold, s in ((None, scores), *((f.fold, fs) for f, fs in zip(folds, fold_scores))):
        for k in METHODS:
            out.append({**{x: _clean(s[k].get(x)) for x in SCORE_FIELDS}, "fold": fold, "method": k,
                        "published": k == method})
    return out


def _struct(m: dict[str, Any], names: list[str]) -> dict[str, Any]:
    return {k: _clean(m.get(k)) for k in names}


def _record(con: duckdb.DuckDBPyConnection, report: dict[str, Any], run_params: dict[str, Any], now: datetime,
            opts: TrainOptions, score_rows: dict[str, list[dict[str, Any]]]) -> None:
    run_id, batch_id = report["run_id"], report["batch_id"]
    runs = []
    for h, r in report["horizons"].items():
        runs.append({
            "run_id": run_id, "horizon": h, "created_at": now, "symbol": report["symbol"],
            "matrix_source": report["matrix_source"], "is_research": report["is_research"],
            "params": json.dumps({**run_params, "horizon_sessions": HORIZONS[h]}, default=str, sort_keys=True),
            "train_start": r["train_start"], "train_end": r["train_end"], "feature_names": report["features"],
            "fold_metrics": [_struct({**f, **f["metrics"]}, FOLD_FIELDS) for f in r["folds"]],
            "metrics": _struct(r["metrics"], METRIC_FIELDS),
            "feature_importance": r["feature_importance"], "git_commit": report["git_commit"],
            "data_fingerprint": report["data_fingerprint"], "model_path": f"{report['model_path']}/{h}",
            "seed": opts.seed, "batch_id": batch_id,
            "method": report["published"][h], "scores": score_rows[h],
        })
    runs = [{k: v for k, v in row.items() if k in RUN_COLUMNS} for row in runs]
    forecasts = [
        {k: v for k, v in {
            "as_of_date": f["as_of_date"], "symbol": report["symbol"], "horizon": f["horizon"], "run_id": run_id,
            "target_date": f["target_date"], "p10": f["p10"], "p50": f["p50"], "p90": f["p90"], "point": f["point"],
            "method": f["method"], "matrix_source": report["matrix_source"], "is_research": report["is_research"],
            "created_at": now, "batch_id": batch_id}.items() if k in FORECAST_COLUMNS}
        for f in report["forecasts"]
    ] if report["symbol"] in FORECAST_SYMBOLS else []
    report["forecasts_written"] = len(forecasts)
    tables = [MODEL_RUNS.fqn] + ([FORECASTS.fqn] if forecasts else [])
    with transaction(con):
        for contract, rows in ((MODEL_RUNS, runs), (FORECASTS, forecasts)):
            if not rows:
                continue
            con.register("_cbi_train_rows", pl.DataFrame(rows, schema=to_polars.schema(contract)).to_arrow())
            con.execute(f"INSERT INTO {to_duckdb.table_ref(contract)} BY NAME SELECT * FROM _cbi_train_rows")
            con.unregister("_cbi_train_rows")
        batches.record_validated(
            con, batch_id, now, "train", tables, report["rows"], len(runs) + len(forecasts),
            f"train {run_id}: {report['symbol']} {report['matrix_source']}"
            f"{' (research)' if report['is_research'] else ''} {','.join(report['horizons'])}",
        )
    report["gate"] = health.validate_batch(con, batch_id)  # a failure marks the batch failed_validation


# --- reading runs back -------------------------------------------------------------------


def resolve_run(con: duckdb.DuckDBPyConnection, ref: str) -> str:
    """A run id, a unique prefix of one, or `latest` / `previous` (by created_at)."""
    if ref in ("latest", "previous"):
        ids = [r[0] for r in con.execute(
            "SELECT run_id FROM training.model_runs GROUP BY run_id ORDER BY max(created_at) DESC, run_id DESC LIMIT 2"
        ).fetchall()]
        i = 0 if ref == "latest" else 1
        if len(ids) <= i:
            raise TrainError(f"no {ref} run: training.model_runs holds {len(ids)} run(s)")
        return ids[i]
    ids = [r[0] for r in con.execute(
        "SELECT DISTINCT run_id FROM training.model_runs WHERE starts_with(run_id, ?) ORDER BY 1", [ref]
    ).fetchall()]
    if ref in ids:
        return ref
    if len(ids) != 1:
        raise TrainError(f"run {ref!r}: " + (f"ambiguous, matches {', '.join(ids[:5])}" if ids else
                                             "no such run in training.model_runs (`cbi train runs` lists them)"))
    return ids[0]


SHOWN_SCORES = ("mape", "quantile_score", "coverage_p10_p90", "directional_accuracy", "dm_p_better_no_change",
                "dm_p_better_vol_band")


def run_scores(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """{run_id: {horizon: {"method": published, "pooled": {method: {SHOWN_SCORES...}}}}}: from
    training.model_runs.scores, or, for a run recorded without that column, from its run.json."""
    if not run_ids:
        return {}
    stored = "scores" in _table_columns(con) and "method" in _table_columns(con)
    sel = "method, scores" if stored else "NULL AS method, NULL AS scores"
    rows = con.execute(f"SELECT run_id, horizon, model_path, {sel} FROM training.model_runs "
                       "WHERE list_contains($ids, run_id)", {"ids": run_ids}).fetchall()
    out: dict[str, dict[str, dict[str, Any]]] = {}
    reports: dict[str, Any] = {}
    for run_id, h, path, method, scores in rows:
        if scores:
            pooled = {s["method"]: {k: s.get(k) for k in SHOWN_SCORES} for s in scores if s["fold"] is None}
            out.setdefault(run_id, {})[h] = {"method": method, "pooled": pooled}
            continue
        if not path:
            continue
        if run_id not in reports:
            try:
                reports[run_id] = json.loads((Path(path).parent / "run.json").read_text())
            except (OSError, ValueError):
                reports[run_id] = None
        sc = ((reports[run_id] or {}).get("horizons", {}).get(h) or {}).get("scoring")
        if sc:
            pooled = {"model": sc["model"], **sc["baselines"]}
            out.setdefault(run_id, {})[h] = {
                "method": sc["published"]["method"],
                "pooled": {m: {k: v.get(k) for k in SHOWN_SCORES} for m, v in pooled.items()}}
    return out


def _table_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'training' AND table_name = 'model_runs'"
    ).fetchall()}


def _load_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, dict[str, Any]]:
    cur = con.execute(
        "SELECT horizon, symbol, matrix_source, is_research, train_start, train_end, data_fingerprint, git_commit, "
        "seed, created_at, metrics, params FROM training.model_runs WHERE run_id = ?", [run_id]
    )
    names = [d[0] for d in cur.description]
    out = {r[0]: dict(zip(names, r)) for r in cur.fetchall()}
    for h, sc in run_scores(con, [run_id]).get(run_id, {}).items():
        out[h]["scoring"] = sc
    return out


def compare(con: duckdb.DuckDBPyConnection, ref_a: str, ref_b: str) -> dict[str, Any]:
    """Metric deltas B - A per horizon both runs trained (ΔMAPE < 0: B is better)."""
    a_id, b_id = resolve_run(con, ref_a), resolve_run(con, ref_b)
    a, b = _load_run(con, a_id), _load_run(con, b_id)
    shown = [k for k in METRIC_FIELDS if k != "n_test"]
    out: dict[str, Any] = {"run_a": a_id, "run_b": b_id, "horizons": {}, "notes": []}
    for label, run in (("a", a), ("b", b)):
        first = next(iter(run.values()))
        out[f"{label}_info"] = {k: first[k] for k in ("symbol", "matrix_source", "is_research", "seed", "git_commit",
                                                        "data_fingerprint", "created_at")}
        out[f"{label}_info"]["label"] = "RESEARCH" if first["is_research"] else "production"
    ia, ib = out["a_info"], out["b_info"]
    if ia["data_fingerprint"] != ib["data_fingerprint"]:
        out["notes"].append("different data (fingerprints differ): deltas mix model and data changes")
    if ia["is_research"] != ib["is_research"]:
        out["notes"].append("one run is research, the other production")
    for h in [h for h in HORIZONS if h in a and h in b]:
        ma, mb = a[h]["metrics"], b[h]["metrics"]
        rows = {}
        for k in shown:
            va, vb = ma.get(k), mb.get(k)
            d = None if va is None or vb is None else vb - va
            better = None if d is None or d == 0 or k.startswith(("baseline_", "unweighted_")) else (
                (d < 0) == (k in LOWER_IS_BETTER) if k != "coverage_p10_p90" else abs(vb - 0.8) < abs(va - 0.8))
            rows[k] = {"a": va, "b": vb, "delta": d, "b_better": better}
        sa, sb = a[h].get("scoring"), b[h].get("scoring")
        scoring = None
        if sa and sb:
            # every method's scores on each run's own test rows, and what each run published
            scoring = {"published": [sa["method"], sb["method"]], "methods": {}}
            for meth in METHODS:
                for k in ("mape", "quantile_score", "coverage_p10_p90"):
                    va, vb = sa["pooled"].get(meth, {}).get(k), sb["pooled"].get(meth, {}).get(k)
                    d = None if va is None or vb is None else vb - va
                    better = None if d is None or d == 0 or meth != "model" else (
                        (d < 0) if k != "coverage_p10_p90" else abs(vb - 0.8) < abs(va - 0.8))
                    scoring["methods"][f"{meth}_{k}"] = {"a": va, "b": vb, "delta": d, "b_better": better}
        out["horizons"][h] = {"metrics": rows, "scoring": scoring, "n_test": [ma.get("n_test"), mb.get("n_test")],
                              "windows": [[str(a[h]["train_start"]), str(a[h]["train_end"])],
                                          [str(b[h]["train_start"]), str(b[h]["train_end"])]]}
    only = sorted((set(a) ^ set(b)), key=list(HORIZONS).index)
    if only:
        out["notes"].append(f"horizons in one run only (not compared): {', '.join(only)}")
    return out


def list_runs(con: duckdb.DuckDBPyConnection, symbol: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    cur = con.execute(
        """
        SELECT run_id, max(created_at) AS created_at, any_value(symbol) AS symbol, any_value(matrix_source) AS matrix_source,
               bool_or(is_research) AS is_research, list(horizon ORDER BY horizon) AS horizons,
               map_from_entries(list(struct_pack(k := horizon, v := metrics.mape))) AS mape,
               map_from_entries(list(struct_pack(k := horizon, v := metrics.baseline_mape))) AS baseline_mape,
               any_value(seed) AS seed, any_value(git_commit) AS git_commit
        FROM training.model_runs WHERE ($symbol IS NULL OR symbol = $symbol)
        GROUP BY run_id ORDER BY created_at DESC, run_id DESC LIMIT $limit
        """,
        {"symbol": symbol, "limit": limit},
    )
    names = [d[0] for d in cur.description]
    out = []
    for r in cur.fetchall():
        row = dict(zip(names, r))
        row["horizons"] = sorted(row["horizons"], key=list(HORIZONS).index)
        row["label"] = "RESEARCH" if row["is_research"] else "production"
        out.append(row)
    scores = run_scores(con, [r["run_id"] for r in out])
    for row in out:
        sc = scores.get(row["run_id"], {})
        row["published"] = {h: sc[h]["method"] for h in row["horizons"] if h in sc}
        row["scores"] = {h: sc[h]["pooled"] for h in row["horizons"] if h in sc}
    return out


