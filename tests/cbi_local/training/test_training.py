"""Training on the real ZL matrices built from the sample data.

The warehouse is the real pipeline: the legacy exports (Yahoo ZL: canonical bridge 2000-2010,
research matrix yahoo_historical 2000-2025), the real FRED series and the regime registry,
then `build_features` for both sources. Expected values (purge/embargo by dates, the naive
baseline's MAPE) are recomputed here from the warehouse rows, not with the trainer's code.
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cbi_local import pipeline, warehouse
from cbi_local.cli import app
import cbi_local.cli_train  # noqa: F401  (registers `cbi train` until cli.py imports it)
from cbi_local.features import build_features
from cbi_local.training import (
    CVError, TrainError, TrainOptions, load_frame, overlaps, plan, train, walk_forward,
)
from cbi_local.training.model import fit, lgb_params

HORIZONS = {"1w": 5, "1m": 21, "3m": 63, "6m": 126, "12m": 252}
RESEARCH = "yahoo_historical"
runner = CliRunner()


def _cli(*args: str, code: int = 0):
    result = runner.invoke(app, [*args])
    assert result.exit_code == code, result.output
    return result


@pytest.fixture(scope="module")
def home(tmp_path_factory, sample_data: Path) -> Path:
    h = tmp_path_factory.mktemp("train")
    warehouse.init(h / "warehouse.duckdb")
    with warehouse.open_warehouse(h / "warehouse.duckdb") as con:
        assert pipeline.migrate_legacy_dir(con, sample_data / "legacy_bq")["ok"]
        assert pipeline.ingest_paths(con, [sample_data / "fred", sample_data / "registry"])["ok"]
        assert build_features(con, None, "canonical").ok
        assert build_features(con, ["ZL"], RESEARCH).ok
    return h


@pytest.fixture(scope="module")
def frame(home):
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        return load_frame(con, "ZL", RESEARCH)


@pytest.fixture(scope="module")
def research_run(home) -> dict:
    """The acceptance run: all five horizons on the real research matrix, via the CLI."""
    out = _cli("train", "--source", RESEARCH, "--home", str(home), "--json").stdout
    return json.loads(out)


def _q(home: Path, sql: str, params=None) -> list[tuple]:
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def _real_as_of(home: Path, end: date | None = None) -> date:
    """The last research ZL date (<= end) whose volume is real: not NULL, not 0, not the previous row's."""
    return _q(home, """
        WITH t AS (SELECT date, market_data.volume AS v, lag(market_data.volume) OVER (ORDER BY date) AS pv
                   FROM features.daily_ml_matrix WHERE symbol = 'ZL' AND matrix_source = ? AND date <= coalesce(?, date))
        SELECT max(date) FROM t WHERE v > 0 AND v IS DISTINCT FROM pv""", [RESEARCH, end])[0][0]


# --- purged walk-forward CV ----------------------------------------------------------------


@pytest.mark.parametrize("h", list(HORIZONS))
@pytest.mark.parametrize("window", ["expanding", "rolling"])
def test_no_training_label_window_overlaps_a_test_window(frame, h, window):
    n = HORIZONS[h]
    lab = frame.labelled(h)
    folds = walk_forward(lab, n, n_folds=3, window=window)
    d = frame.dates
    # the session `n` rows ahead of each row = the end of its label window (the matrix is one row per session)
    label_end = {int(i): d[i + n] for i in lab}
    previous_test_end = None
    for f in folds:
        test_windows = [(d[j], label_end[int(j)]) for j in f.test]
        first_test_day = min(a for a, _ in test_windows)
        # every training label window ends strictly before every test window starts
        assert max(label_end[int(i)] for i in f.train) < first_test_day
        assert overlaps(f, n) == 0
        # at least `n` sessions lie strictly between the last training row and the first test row
        assert f.gap >= n and int(f.test[0]) - int(f.train[-1]) - 1 >= n
        # test folds are contiguous, in time order and disjoint
        assert np.array_equal(f.test, lab[np.searchsorted(lab, f.test[0]): np.searchsorted(lab, f.test[-1]) + 1])
        if previous_test_end is not None:
            assert f.test[0] > previous_test_end
        previous_test_end = f.test[-1]
    if window == "rolling":
        assert len({f.n_train for f in folds}) == 1
    else:
        assert [f.n_train for f in folds] == sorted(f.n_train for f in folds) and folds[0].train[0] == lab[0]


def test_a_longer_embargo_is_honoured_and_a_shorter_one_refused(frame):
    lab = frame.labelled("1m")
    for f in walk_forward(lab, 21, n_folds=3, embargo=60):
        assert int(f.test[0]) - int(f.train[-1]) - 1 == 60
    with pytest.raises(CVError, match="shorter than the horizon"):
        walk_forward(lab, 21, embargo=10)


def test_the_folds_the_run_records_are_purged_by_date(research_run, home):
    for h, n in HORIZONS.items():
        dates = [r[0] for r in _q(home, "SELECT date FROM features.daily_ml_matrix WHERE symbol = 'ZL' AND "
                                        "matrix_source = ? ORDER BY date", [RESEARCH])]
        pos = {d: i for i, d in enumerate(dates)}
        for f in research_run["horizons"][h]["folds"]:
            train_end, test_start = pos[date.fromisoformat(f["train_end"])], pos[date.fromisoformat(f["test_start"])]
            assert train_end + n < test_start, (h, f)
            assert f["label_overlap_rows"] == 0


def test_each_fold_says_how_many_regimes_it_trained_on(research_run, home):
    """The 7-regime rule is of the window; a fold's floor is min_train sessions. Each fold's count is
    recomputed here from the matrix and the fold's dates, and a fold below 7 is flagged and named."""
    for h in HORIZONS:
        for f in research_run["horizons"][h]["folds"]:
            (n,) = _q(home, "SELECT count(DISTINCT regime_name) FROM features.daily_ml_matrix WHERE symbol = 'ZL' AND "
                            "matrix_source = ? AND date BETWEEN ? AND ?", [RESEARCH, f["train_start"], f["train_end"]])[0]
            assert f["train_regimes"] == n and f["train_regimes_below_minimum"] == (n < 7), (h, f)
    first = research_run["horizons"]["1w"]["folds"][0]
    assert first["train_regimes_below_minimum"]  # the 2000s train on 4 regimes
    shown = _cli("train", "--source", RESEARCH, "--horizons", "1w", "--home", str(home)).stdout
    assert f"fold {first['fold']} trains on {first['train_regimes']} regimes" in " ".join(shown.split())


def test_too_few_rows_for_the_folds_fails_clearly(home):
    res = _cli("train", "--source", RESEARCH, "--horizons", "12m", "--test-size", "1900", "--home", str(home), code=2)
    assert "fold 1" in res.output and "training rows" in res.output and "fewer --folds" in res.output


# --- the >= 7 regimes rule -------------------------------------------------------------------


def test_the_canonical_matrix_with_4_regimes_is_refused_and_nothing_recorded(home):
    before = _q(home, "SELECT count(*) FROM training.model_runs")[0][0]
    res = _cli("train", "--home", str(home), code=2)
    assert "4 regime(s)" in res.output and "at least 7" in res.output and "--source yahoo_historical" in res.output
    assert _q(home, "SELECT count(*) FROM training.model_runs")[0][0] == before
    assert _q(home, "SELECT count(*) FROM ops.batches WHERE kind = 'train' AND message LIKE '%canonical%'")[0][0] == 0


def test_a_research_window_with_3_regimes_is_refused(home):
    res = _cli("train", "--source", RESEARCH, "--start", "2015-01-01", "--end", "2019-12-31", "--home", str(home), code=2)
    assert "3 regime(s)" in res.output and "at least 7" in res.output


# --- the acceptance run --------------------------------------------------------------------


def test_research_run_trains_all_horizons_and_records_everything(research_run, home):
    r = research_run
    run_id = r["run_id"]
    assert r["is_research"] and r["label"] == "RESEARCH" and r["matrix_source"] == RESEARCH
    assert len(r["regimes"]) >= 7 and r["rows"] == _q(
        home, "SELECT count(*) FROM features.daily_ml_matrix WHERE symbol = 'ZL' AND matrix_source = ?", [RESEARCH])[0][0]
    assert list(r["horizons"]) == list(HORIZONS)
    for h, hr in r["horizons"].items():
        m = hr["metrics"]
        for k in ("mae", "mape", "r2", "directional_accuracy", "pinball_p10", "pinball_p50", "pinball_p90",
                  "coverage_p10_p90"):
            for prefix in ("", "baseline_", "unweighted_"):
                assert np.isfinite(m[prefix + k]), (h, prefix + k)
        assert m["n_test"] == sum(f["metrics"]["n_test"] for f in hr["folds"]) and len(hr["folds"]) == 3
        assert 0 <= m["coverage_p10_p90"] <= 1 and hr["feature_importance"][0]["gain"] > 0
    # model_runs: one research row per horizon with folds, metrics, features, lineage
    rows = _q(home, "SELECT horizon, is_research, len(fold_metrics), metrics.mape, metrics.baseline_mape, "
                    "len(feature_names), len(feature_importance), git_commit, data_fingerprint, model_path, seed, "
                    "batch_id, params FROM training.model_runs WHERE run_id = ? ORDER BY horizon", [run_id])
    assert sorted(x[0] for x in rows) == sorted(HORIZONS)
    for h, research, n_folds, mape, base, n_feat, n_imp, git, fp, path, seed, batch, params in rows:
        assert research is True and n_folds == 3 and n_feat == n_imp == len(r["features"]) > 20
        assert mape == pytest.approx(r["horizons"][h]["metrics"]["mape"]) and base > 0
        assert fp == r["data_fingerprint"] and seed == 42 and batch == r["batch_id"]
        assert git is None or len(git) >= 40
        assert {p.name for p in Path(path).iterdir()} == {"point.txt", "p10.txt", "p50.txt", "p90.txt"}
        assert json.loads(params)["horizon_sessions"] == HORIZONS[h]
    # forecasts: one per horizon, from the as-of date (the last date with a real volume), ordered quantiles,
    # in a validated train batch
    last = _real_as_of(home)
    assert r["as_of"]["date"] == str(last)
    fc = _q(home, "SELECT horizon, as_of_date, target_date, p10, p50, p90, is_research, batch_id "
                  "FROM predictions.zl_forecasts WHERE run_id = ?", [run_id])
    assert sorted(x[0] for x in fc) == sorted(HORIZONS)
    for h, as_of, target, p10, p50, p90, research, batch in fc:
        assert as_of == last and target > as_of and 0 < p10 <= p50 <= p90 and research is True
        assert batch == r["batch_id"]
    ((kind, status, tables),) = _q(home, "SELECT kind, status, table_names FROM ops.batches WHERE batch_id = ?",
                                   [r["batch_id"]])
    assert kind == "train" and status == "validated"
    assert set(tables) == {"training.model_runs", "predictions.zl_forecasts"}


def test_baseline_mape_equals_the_no_change_forecast_on_the_test_rows(research_run, home):
    for h in ("1w", "12m"):
        folds = research_run["horizons"][h]["folds"]
        ranges = " OR ".join(f"date BETWEEN DATE '{f['test_start']}' AND DATE '{f['test_end']}'" for f in folds)
        ((mape, n),) = _q(home, f"""
            SELECT avg(abs(market_data.close - fwd_close_{h}) / fwd_close_{h}) * 100, count(*)
            FROM features.daily_ml_matrix WHERE symbol = 'ZL' AND matrix_source = ? AND target_{h} IS NOT NULL
              AND ({ranges})""", [RESEARCH])
        m = research_run["horizons"][h]["metrics"]
        assert n == m["n_test"] and m["baseline_mape"] == pytest.approx(mape, rel=1e-9)


def test_compare_gives_deltas_and_the_unweighted_column_is_the_unweighted_model(research_run, home):
    text = _cli("train", "--source", RESEARCH, "--horizons", "1w,1m", "--no-weights", "--home", str(home)).output
    assert "RESEARCH" in text and "is_research = true" in text and "purged walk-forward folds" in text
    # the output names the as-of date and the skipped last row (its volume repeats the previous session's)
    assert "as of 2025-11-04, not the window's last row 2025-11-05: skipped 2025-11-05 (volume 68,962 repeats" in text
    b_id = json.loads(_cli("train", "runs", "--home", str(home), "--json").stdout)["items"][0]["run_id"]
    b = json.loads(Path(_q(home, "SELECT model_path FROM training.model_runs WHERE run_id = ? AND horizon = '1w'",
                           [b_id])[0][0]).parent.joinpath("run.json").read_text())
    assert b["run_id"] == b_id and b["weights"] == "none" and b["is_research"] and b["label"] == "RESEARCH"
    out = json.loads(_cli("train", "compare", research_run["run_id"], b["run_id"], "--home", str(home), "--json").stdout)
    assert set(out["horizons"]) == {"1w", "1m"} and any("one run only" in n for n in out["notes"])
    assert out["a_info"]["label"] == out["b_info"]["label"] == "RESEARCH"
    for h in ("1w", "1m"):
        a_m, b_m = research_run["horizons"][h]["metrics"], b["horizons"][h]["metrics"]
        d = out["horizons"][h]["metrics"]
        assert d["mape"]["delta"] == pytest.approx(b_m["mape"] - a_m["mape"])
        assert d["mape"]["b_better"] == (b_m["mape"] < a_m["mape"])
        # same data, folds and seed: the weighted run's "unweighted" column is exactly the --no-weights run
        assert a_m["unweighted_mape"] == b_m["mape"] and a_m["unweighted_mae"] == b_m["mae"]
        # regime weights change the fit
        assert a_m["mape"] != a_m["unweighted_mape"]
    text = _cli("train", "compare", research_run["run_id"], b["run_id"], "--home", str(home)).output
    assert "RESEARCH" in text and "mape" in text
    runs = json.loads(_cli("train", "runs", "--home", str(home), "--json").stdout)["items"]
    assert {research_run["run_id"], b["run_id"]} <= {x["run_id"] for x in runs}


def test_regime_weights_change_the_fitted_models(frame):
    lab = frame.labelled("1m")
    X, y, w = frame.X[lab], frame.targets["1m"][lab], frame.weights[lab]
    assert len(np.unique(w)) > 5
    params = lgb_params(7)
    weighted = fit(X, y, w, params, 50, frame.feature_names, ("point", "p50")).predict(X)
    plain = fit(X, y, None, params, 50, frame.feature_names, ("point", "p50")).predict(X)
    for k in ("point", "p50"):
        assert np.abs(weighted[k] - plain[k]).max() > 1e-4


def test_same_seed_same_metrics_other_seed_other_metrics(home):
    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        runs = [train(con, home, TrainOptions(matrix_source=RESEARCH, horizons=["1m"], seed=s, write=False))
                for s in (11, 11, 12)]
    a, b, c = (r["horizons"]["1m"] for r in runs)
    assert a["metrics"] == b["metrics"] and a["folds"] == b["folds"]
    assert a["feature_importance"] == b["feature_importance"]
    assert runs[0]["forecasts"] == runs[1]["forecasts"]
    assert a["metrics"]["mape"] != c["metrics"]["mape"]


def test_plan_needs_a_built_matrix(home):
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        with pytest.raises(TrainError, match="cbi features build --source yahoo_historical"):
            train(con, home, TrainOptions(symbol="MES", matrix_source=RESEARCH, write=False))
        frame = load_frame(con, "ZL", RESEARCH)
    assert set(plan(frame, TrainOptions(horizons=["1w"], matrix_source=RESEARCH))) == {"1w"}
    with pytest.raises(TrainError, match="unknown horizon"):
        TrainOptions(horizons=["2y"]).check()


def test_a_train_batch_is_pushed_by_sync(research_run, home, tmp_path, bq_emulator):
    """The run's batch is 'validated' and sync pushes its model runs (nested fold metrics included)
    through the real google-cloud-bigquery client to the local emulator; its research forecasts stay local. In this copy of the warehouse the
    ingest/features batches are marked pushed first: their push is sync's own tests' subject."""
    import shutil
    import uuid

    from sync import push as push_mod
    from sync.bigquery.client import make_client
    from cbi_local.config import settings

    shutil.copy(home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    project = "t" + uuid.uuid4().hex[:12]
    s = settings(tmp_path).model_copy(update={"bq_endpoint": bq_emulator.endpoint, "bq_project": project})
    run_id, batch_id = research_run["run_id"], research_run["batch_id"]
    with warehouse.open_warehouse(tmp_path / "warehouse.duckdb") as con:
        con.execute("UPDATE ops.batches SET status = 'pushed' WHERE batch_id <> ?", [batch_id])
        assert push_mod.push(con, make_client(s), s).ok
        assert con.execute("SELECT status FROM ops.batches WHERE batch_id = ?", [batch_id]).fetchall() == [("pushed",)]
    client = bq_emulator.client(project=project)
    try:
        rows = [tuple(r) for r in client.query(
            f"SELECT horizon, ARRAY_LENGTH(fold_metrics), metrics.mape, is_research FROM `{project}.training.model_runs` "
            f"WHERE run_id = '{run_id}'").result()]
        assert sorted((h, n, research) for h, n, _, research in rows) == sorted((h, 3, True) for h in HORIZONS)
        for h, _, mape, _ in rows:
            assert mape == pytest.approx(research_run["horizons"][h]["metrics"]["mape"])
        # Research forecasts stay local (zl_forecasts' push_only_where): none reach BigQuery.
        from google.api_core.exceptions import NotFound

        try:
            fc = list(client.query(f"SELECT COUNT(*) FROM `{project}.predictions.zl_forecasts` WHERE run_id = '{run_id}'").result())[0][0]
        except NotFound:
            fc = 0
        assert fc == 0
        with warehouse.open_warehouse(tmp_path / "warehouse.duckdb", read_only=True) as con:
            local = con.execute("SELECT COUNT(*) FROM predictions.zl_forecasts WHERE run_id = ? AND is_research", [run_id]).fetchall()[0][0]
        assert local == len(HORIZONS)
    finally:
        for ds in client.list_datasets():
            client.delete_dataset(ds.reference, delete_contents=True, not_found_ok=True)
        client.close()


# --- honest scoring and the publication gate (issue 21) -------------------------------------


def _test_dates(folds) -> str:
    return " OR ".join(f"date BETWEEN DATE '{f['test_start']}' AND DATE '{f['test_end']}'" for f in folds)


def test_every_horizon_scores_the_model_beside_the_baselines_and_publishes_no_worse_than_them(research_run):
    """Acceptance (issue 21): per horizon `scoring` has horizon, published (method, mape, quantile_score,
    coverage_p10_p90, dm_p_value) and baselines, all on the same test rows; on the sample data the
    published forecast covers 0.72-0.88 and is no worse than no-change and the vol band."""
    for h, hr in research_run["horizons"].items():
        sc = hr["scoring"]
        assert sc["horizon"] == h and sc["n_test"] == hr["metrics"]["n_test"]
        pub = sc["published"]
        assert {"method", "mape", "quantile_score", "coverage_p10_p90", "dm_p_value"} <= set(pub)
        assert set(sc["baselines"]) == {"no_change", "drift", "vol_band"}
        for b in sc["baselines"].values():
            assert b["n_test"] == sc["n_test"] and {"mape", "quantile_score", "coverage_p10_p90"} <= set(b)
        assert 0.72 <= pub["coverage_p10_p90"] <= 0.88, (h, pub)
        for ref in ("no_change", "vol_band"):
            assert pub["mape"] <= sc["baselines"][ref]["mape"] + 1e-12, (h, ref)
            assert pub["quantile_score"] <= sc["baselines"][ref]["quantile_score"] + 1e-12, (h, ref)
        # the model's own scores are the `metrics` record's (job.py reads metrics.mape)
        assert sc["model"]["mape"] == pytest.approx(hr["metrics"]["mape"])
        assert sc["indicative"] == (h in ("6m", "12m"))
        lo, hi = sc["model"]["directional_accuracy_lo"], sc["model"]["directional_accuracy_hi"]
        assert lo <= sc["model"]["directional_accuracy"] <= hi
        # the model loses here (MAPE and DM at every horizon, as measured in issue 21): a baseline is published
        assert pub["method"] != "model" and "loses to" in pub["reason"]
        assert sc["model"]["mape"] > sc["baselines"]["no_change"]["mape"]
        assert [len(f) for f in sc["per_fold"]] == [5] * len(hr["folds"])


def test_the_vol_band_is_recomputed_from_the_matrix_on_the_same_rows(research_run, home):
    """Independent recomputation in SQL: the band ±1.2816·σ21·√(n/252) around today's close on the
    run's test rows, its coverage and MAPE."""
    for h in ("1w", "3m", "12m"):
        n = HORIZONS[h]
        folds = research_run["horizons"][h]["folds"]
        ((cover, mape, rows),) = _q(home, f"""
            WITH t AS (
                SELECT market_data.close AS c, fwd_close_{h} AS fwd,
                       1.2816 * market_data.volatility_21d * sqrt({n} / 252.0) AS half
                FROM features.daily_ml_matrix
                WHERE symbol = 'ZL' AND matrix_source = ? AND target_{h} IS NOT NULL AND ({_test_dates(folds)}))
            SELECT avg(CASE WHEN fwd BETWEEN c * exp(-half) AND c * exp(half) THEN 1.0 ELSE 0.0 END),
                   avg(abs(c - fwd) / fwd) * 100, count(*) FROM t""", [RESEARCH])
        vb = research_run["horizons"][h]["scoring"]["baselines"]["vol_band"]
        assert rows == vb["n_test"]
        assert vb["coverage_p10_p90"] == pytest.approx(cover, abs=2 / rows)  # 1.2816 vs the exact z: a row at most
        assert vb["mape"] == pytest.approx(mape, rel=1e-9)


def test_the_published_forecasts_are_the_baselines_from_the_as_of_row_and_bands_widen_with_the_horizon(research_run, home):
    fc = {f["horizon"]: f for f in research_run["forecasts"]}
    ((close, vol),) = _q(home, "SELECT market_data.close, market_data.volatility_21d FROM features.daily_ml_matrix "
                               "WHERE symbol = 'ZL' AND matrix_source = ? AND date = ?", [RESEARCH, _real_as_of(home)])
    lows, highs = [], []
    for h, n in HORIZONS.items():
        f = fc[h]
        assert f["method"] == research_run["horizons"][h]["scoring"]["published"]["method"]
        assert f["p10"] <= f["p50"] <= f["p90"] and f["p10"] <= f["point"] <= f["p90"]
        if f["method"] == "vol_band" and not f["widened"]:
            assert f["p90"] == pytest.approx(close * math.exp(1.2816 * vol * math.sqrt(n / 252)), rel=1e-4)
            assert f["p50"] == pytest.approx(close) and f["point"] == pytest.approx(close)
        lows.append(math.log(f["p50"] / f["p10"]))
        highs.append(math.log(f["p90"] / f["p50"]))
    assert lows == sorted(lows) and highs == sorted(highs)
    rows = _q(home, "SELECT horizon, p10, p50, p90, point FROM predictions.zl_forecasts WHERE run_id = ?",
              [research_run["run_id"]])
    for h, p10, p50, p90, point in rows:
        assert (p10, p50, p90, point) == pytest.approx((fc[h]["p10"], fc[h]["p50"], fc[h]["p90"], fc[h]["point"]))


def test_the_published_method_and_every_score_are_stored_in_the_tables(research_run, home):
    from cbi_local.training.runs import FORECASTS, MODEL_RUNS

    if "scores" not in MODEL_RUNS.column_names or "method" not in FORECASTS.column_names:
        pytest.skip("the catalog (data_contracts/columns.py) does not declare `method` / `scores` yet")
    run_id = research_run["run_id"]
    for h, method, scores in _q(home, "SELECT horizon, method, scores FROM training.model_runs WHERE run_id = ?", [run_id]):
        sc = research_run["horizons"][h]["scoring"]
        assert method == sc["published"]["method"]
        pooled = {s["method"]: s for s in scores if s["fold"] is None}
        assert set(pooled) == {"model", "no_change", "drift", "vol_band"} and len(scores) == 4 * 4
        assert [m for m, s in pooled.items() if s["published"]] == [method]
        assert pooled["vol_band"]["quantile_score"] == pytest.approx(sc["baselines"]["vol_band"]["quantile_score"])
        assert pooled["model"]["dm_p_better_no_change"] == pytest.approx(sc["model"]["dm_p_better_no_change"])
    assert dict(_q(home, "SELECT horizon, method FROM predictions.zl_forecasts WHERE run_id = ?", [run_id])) == \
        research_run["published"]


def test_runs_and_compare_show_the_model_beside_the_baselines(research_run, home):
    text = runner.invoke(app, ["train", "runs", "--home", str(home)], env={"COLUMNS": "200"}).output
    assert "QS" in text and f"→ {research_run['published']['1w']}" in text
    items = json.loads(_cli("train", "runs", "--home", str(home), "--json").stdout)["items"]
    mine = next(x for x in items if x["run_id"] == research_run["run_id"])
    assert mine["published"] == research_run["published"]
    assert mine["scores"]["1m"]["vol_band"]["quantile_score"] == pytest.approx(
        research_run["horizons"]["1m"]["scoring"]["baselines"]["vol_band"]["quantile_score"])
    out = json.loads(_cli("train", "compare", research_run["run_id"], research_run["run_id"], "--home", str(home),
                          "--json").stdout)
    s = out["horizons"]["12m"]["scoring"]
    assert s["published"] == [research_run["published"]["12m"]] * 2
    assert s["methods"]["model_quantile_score"]["delta"] == 0 and "vol_band_coverage_p10_p90" in s["methods"]
    text = runner.invoke(app, ["train", "compare", research_run["run_id"], research_run["run_id"], "--home", str(home)],
                         env={"COLUMNS": "200"}).output
    assert "vol_band_quantile_score" in text and "published" in text


# --- the as-of row: a forecast is made from a bar with a real volume ------------------------------------


def test_the_last_real_row_repeats_the_previous_volume_so_the_forecast_steps_back_and_says_so(research_run, home):
    # The real research matrix ends on 2025-11-05, whose volume (68,962) repeats 2025-11-04's: a stale bar
    # (the legacy Yahoo ZL series repeats the previous session's volume on 288 days).
    tail = _q(home, "SELECT date, market_data.volume FROM features.daily_ml_matrix WHERE symbol = 'ZL' AND "
                    "matrix_source = ? ORDER BY date DESC LIMIT 3", [RESEARCH])
    assert tail == [(date(2025, 11, 5), 68962), (date(2025, 11, 4), 68962), (date(2025, 11, 3), 0)]
    assert _real_as_of(home) == date(2025, 11, 4)  # 11-04 differs from 11-03's 0
    a = research_run["as_of"]
    assert (a["date"], a["last_row"]) == ("2025-11-04", "2025-11-05")
    assert [(s["date"], s["volume"]) for s in a["skipped"]] == [("2025-11-05", 68962)]
    assert "repeats the previous session's (2025-11-04)" in a["skipped"][0]["reason"] and "stale" in a["rule"]
    # every forecast is from the as-of row: its date, its close; the target dates count from it
    close = _q(home, "SELECT market_data.close FROM features.daily_ml_matrix WHERE symbol = 'ZL' AND matrix_source = ? "
                     "AND date = DATE '2025-11-04'", [RESEARCH])[0][0]
    for f in research_run["forecasts"]:
        assert str(f["as_of_date"]) == "2025-11-04" and f["close"] == pytest.approx(close)
    assert str(research_run["forecasts"][0]["target_date"]) == "2025-11-11"  # 5 CME sessions after 11-04
    # recorded: the forecasts' as_of_date, and the as-of choice in each run row's params
    run_id = research_run["run_id"]
    assert {r[0] for r in _q(home, "SELECT as_of_date FROM predictions.zl_forecasts WHERE run_id = ?", [run_id])} == {
        date(2025, 11, 4)}
    for (params,) in _q(home, "SELECT params FROM training.model_runs WHERE run_id = ?", [run_id]):
        assert json.loads(params)["as_of"] == a
        # and how its targets treat the recorded rolls: the matrix rows' setting (the default, raw)
        assert json.loads(params)["roll_adjustment"] == research_run["roll_adjustment"] == ["none"]


def test_a_zero_volume_as_of_row_is_skipped(home):
    # Real rows: 2025-11-03's volume is 0; with the window ending there the forecast is from 2025-10-31.
    assert _q(home, "SELECT market_data.volume FROM features.daily_ml_matrix WHERE symbol = 'ZL' AND "
                    "matrix_source = ? AND date = DATE '2025-11-03'", [RESEARCH])[0][0] == 0
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        r = train(con, home, TrainOptions(matrix_source=RESEARCH, horizons=["1w"], end=date(2025, 11, 3), write=False))
    assert _real_as_of(home, date(2025, 11, 3)) == date(2025, 10, 31)
    assert r["as_of"]["date"] == "2025-10-31" and r["as_of"]["last_row"] == "2025-11-03"
    assert r["as_of"]["skipped"] == [{"date": "2025-11-03", "volume": 0, "reason": "volume 0"}]
    assert [str(f["as_of_date"]) for f in r["forecasts"]] == ["2025-10-31"]


def test_the_as_of_selection_on_real_rows_steps_back_over_repeated_volumes(home):
    # Real January 2010 rows: 4,976 on 01-07, then repeated on 01-08, 01-11 and 01-12 (stale bars).
    from cbi_local.training.publish import as_of

    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as con:
        frame = load_frame(con, "ZL", RESEARCH, end=date(2010, 1, 12))
    assert frame.volume[-4:].tolist() == [4976.0] * 4 and frame.volume[-5] != 4976.0
    row, skipped = as_of(frame.dates, frame.volume)
    assert str(frame.dates[row]) == "2010-01-07" and row == frame.rows - 4
    assert [s["date"] for s in skipped] == ["2010-01-12", "2010-01-11", "2010-01-08"]
    assert all(s["volume"] == 4976 and "repeats the previous session's" in s["reason"] for s in skipped)
    # a NULL volume is never real either (the first row has no previous one: judged on NULL and 0 only)
    v = frame.volume[-3:].copy()
    v[:] = [np.nan, 7.0, 7.0]
    assert as_of(frame.dates[-3:], v) == (1, [{"date": "2010-01-12", "volume": 7,
                                               "reason": "volume 7 repeats the previous session's (2010-01-11): a stale or forward-filled bar"}])
    assert as_of(frame.dates[-3:], v, max_back=0)[0] is None


def test_no_real_volume_within_a_week_refuses_and_records_nothing(home):
    # Real rows: Yahoo's ZL volume is 1 on every session from 2002-12-27 to 2003-01-13 (repeated ten times).
    before = _q(home, "SELECT count(*) FROM training.model_runs")[0][0]
    res = _cli("train", "--source", RESEARCH, "--end", "2003-01-13", "--home", str(home), code=2)
    out = " ".join(res.output.split())
    assert "none of the last 6 rows (2003-01-06..2003-01-13) has a real volume" in out
    assert "2003-01-13: volume 1 repeats the previous session's (2003-01-10)" in out
    assert "nothing was trained or recorded" in out
    assert _q(home, "SELECT count(*) FROM training.model_runs")[0][0] == before
