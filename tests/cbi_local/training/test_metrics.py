"""The scoring math on crafted arrays (these are math checks, not data acceptance: every value is
written out or recomputed here by an independent route), then the baselines on the real matrix."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cbi_local import pipeline, warehouse
from cbi_local.features import build_features
from cbi_local.training import load_frame
from cbi_local.training.cv import walk_forward
from cbi_local.training.metrics import (
    Z90, abs_pct_error, baselines, block_bootstrap_ci, compare_methods, dm_test, drift, newey_west_variance,
    no_change, pinball, pinball_loss, quantile_loss, score, vol_band,
)

LN = np.log


def _f(point, p10, p50, p90, direction=None):
    out = {k: np.asarray(v, dtype=float) for k, v in (("point", point), ("p10", p10), ("p50", p50), ("p90", p90))}
    if direction is not None:
        out["direction"] = np.asarray(direction, dtype=float)
    return out


# --- pinball, quantile score, coverage, direction ------------------------------------------


def test_pinball_loss_by_hand():
    y = np.array([10.0, 10.0, 10.0])
    q = np.array([8.0, 12.0, 10.0])
    # under-forecast by 2 at 0.1: 0.1*2; over-forecast by 2 at 0.1: 0.9*2; exact: 0
    assert pinball_loss(y, q, 0.1) == pytest.approx([0.2, 1.8, 0.0])
    assert pinball_loss(y, q, 0.9) == pytest.approx([1.8, 0.2, 0.0])
    assert pinball_loss(y, q, 0.5) == pytest.approx([1.0, 1.0, 0.0])
    assert pinball(y, q, 0.1) == pytest.approx(2.0 / 3)


def test_score_by_hand():
    close = np.array([100.0, 200.0])
    fwd = np.array([110.0, 180.0])
    y = LN(fwd / close)
    # point +5% / -5%, P10 -10%, P50 = point, P90 +10% (as prices: exp of the log returns)
    f = _f(LN([1.05, 0.95]), LN([0.9, 0.9]), LN([1.05, 0.95]), LN([1.1, 1.1]))
    s = score(close, y, fwd, f)
    # point prices 105, 190: |105-110| = 5, |190-180| = 10
    assert s["mae"] == pytest.approx(7.5)
    assert s["mape"] == pytest.approx((5 / 110 + 10 / 180) / 2 * 100)
    assert s["directional_accuracy"] == pytest.approx(1.0)
    # row 1: P10 90, P50 105, P90 110 vs 110 -> 0.1*20, 0.5*5, 0 ; row 2: P10 180, P50 190, P90 220 vs 180
    # -> 0, 0.5*10, 0.1*40
    assert s["pinball_p10"] == pytest.approx((2.0 + 0.0) / 2)
    assert s["pinball_p50"] == pytest.approx((2.5 + 5.0) / 2)
    assert s["pinball_p90"] == pytest.approx((0.0 + 4.0) / 2)
    qs_rows = [(2.0 + 2.5 + 0.0) / 3 / 100 * 100, (0.0 + 5.0 + 4.0) / 3 / 200 * 100]
    assert quantile_loss(close, fwd, f) == pytest.approx(qs_rows)
    assert s["quantile_score"] == pytest.approx(np.mean(qs_rows))
    # 110 is inside [90, 110] (closed), 180 inside [180, 220]
    assert s["coverage_p10_p90"] == 1.0
    assert abs_pct_error(close, fwd, f) == pytest.approx([5 / 110 * 100, 10 / 180 * 100])


def test_coverage_and_direction_count_misses():
    close = np.full(4, 100.0)
    fwd = np.array([89.0, 95.0, 105.0, 111.0])
    y = LN(fwd / close)
    f = _f(np.full(4, LN(1.01)), np.full(4, LN(0.9)), np.full(4, 0.0), np.full(4, LN(1.1)))
    s = score(close, y, fwd, f)
    assert s["coverage_p10_p90"] == 0.5
    assert s["directional_accuracy"] == 0.5  # forecast up; two of four went up
    s = score(close, y, fwd, {**f, "direction": np.array([-1.0, -1.0, 1.0, 1.0])})
    assert s["directional_accuracy"] == 1.0


# --- baselines ---------------------------------------------------------------------------------


def test_no_change_and_drift_baselines():
    train_y = np.array([-0.2, -0.1, 0.0, 0.1, 0.3, 0.5])
    q10, q50, q90 = np.quantile(train_y, [0.1, 0.5, 0.9])
    nc = no_change(train_y, 3)
    assert np.all(nc["point"] == 0) and np.all(nc["p50"] == 0)
    assert nc["p10"] == pytest.approx(np.full(3, q10 - q50)) and nc["p90"] == pytest.approx(np.full(3, q90 - q50))
    assert np.all(nc["direction"] == 1.0)  # 3 of 6 up: ties go up
    d = drift(train_y, 2)
    mu = train_y.mean()
    assert d["point"] == pytest.approx([mu, mu]) and d["p50"] == pytest.approx([mu, mu])
    assert d["p10"] == pytest.approx(np.full(2, mu + q10 - q50)) and d["p90"] == pytest.approx(np.full(2, mu + q90 - q50))
    assert np.all(no_change(-train_y, 1)["direction"] == -1.0)


def test_vol_band_is_1_2816_sigma_sqrt_n_over_252_around_no_change():
    assert Z90 == pytest.approx(1.2816, abs=1e-4)
    vol = np.array([0.2, 0.4])
    b = vol_band(np.array([0.1, -0.1, 0.2]), vol, 63)
    half = 1.2816 * vol * math.sqrt(63 / 252)
    assert b["p90"] == pytest.approx(half, rel=1e-4) and b["p10"] == pytest.approx(-half, rel=1e-4)
    assert np.all(b["point"] == 0) and np.all(b["p50"] == 0)


def test_vol_band_covers_80_percent_of_lognormal_outcomes():
    """With returns drawn N(0, sigma*sqrt(n/252)) the band is the exact 10-90% interval."""
    rng = np.random.default_rng(7)
    n, sigma, rows = 21, 0.3, 200_000
    close = np.full(rows, 50.0)
    y = rng.normal(0.0, sigma * math.sqrt(n / 252), rows)
    fwd = close * np.exp(y)
    s = score(close, y, fwd, vol_band(y[:10], np.full(rows, sigma), n))
    assert s["coverage_p10_p90"] == pytest.approx(0.8, abs=0.005)


# --- Diebold-Mariano ----------------------------------------------------------------------------


def test_dm_with_h1_is_the_paired_t_test():
    """h = 1: no lags, HLN factor (T-1)/T, t(T-1): exactly the paired t-test."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 1.0, 300), rng.normal(1.1, 1.0, 300)
    r = dm_test(a, b, 1)
    t = stats.ttest_rel(a, b)
    assert r["dm_stat"] == pytest.approx(t.statistic, rel=1e-10)
    assert r["p_value"] == pytest.approx(t.pvalue, rel=1e-10)
    assert r["p_a_better"] == pytest.approx(stats.ttest_rel(a, b, alternative="less").pvalue, rel=1e-10)


def test_dm_with_lags_matches_the_formula_written_out():
    rng = np.random.default_rng(2)
    h = 5
    e = rng.normal(size=205)
    d_series = np.convolve(e, np.ones(h), "valid")[:200] * 0.1 + 0.05  # MA(h-1) differential
    a, b = d_series + 2.0, np.full(200, 2.0)
    r = dm_test(a, b, h)
    # independent: plain-Python sums
    d = list(a - b)
    T = len(d)
    m = sum(d) / T
    g = [sum((d[i] - m) * (d[i - k] - m) for i in range(k, T)) / T for k in range(h)]
    v = g[0] + 2 * sum((1 - k / h) * g[k] for k in range(1, h))
    dm = m / math.sqrt(v / T)
    hln = dm * math.sqrt((T + 1 - 2 * h + h * (h - 1) / T) / T)
    assert newey_west_variance(np.array(d), h - 1) == pytest.approx(v, rel=1e-10)
    assert r["dm_stat"] == pytest.approx(hln, rel=1e-10)
    assert r["p_value"] == pytest.approx(2 * stats.t.sf(abs(hln), T - 1), rel=1e-10)
    assert r["dm_stat"] > 0 and r["p_a_better"] > 0.5  # a's loss is higher


def test_dm_detects_a_clearly_better_forecast_and_is_nan_without_variance():
    rng = np.random.default_rng(3)
    b = np.abs(rng.normal(0, 2, 500))
    a = b * 0.5
    r = dm_test(a, b, 3)
    assert r["dm_stat"] < 0 and r["p_a_better"] < 1e-6 and r["p_value"] < 1e-6
    same = dm_test(b, b, 3)
    assert math.isnan(same["dm_stat"]) and math.isnan(same["p_value"])


# --- block bootstrap --------------------------------------------------------------------------


def test_block_bootstrap_interval():
    assert block_bootstrap_ci(np.ones(100), 10) == (1.0, 1.0)
    hits = np.r_[np.ones(50), np.zeros(50)]
    lo, hi = block_bootstrap_ci(hits, 10, seed=4)
    assert lo < 0.5 < hi
    # long blocks of a persistent series: a wider interval than iid resampling
    lo1, hi1 = block_bootstrap_ci(hits, 1, seed=4)
    assert (hi - lo) > (hi1 - lo1)
    assert block_bootstrap_ci(hits, 10, seed=4) == (lo, hi)  # seeded: reproducible


# --- compare_methods -------------------------------------------------------------------------


def test_compare_methods_scores_every_method_on_the_same_rows():
    rng = np.random.default_rng(5)
    rows, n = 400, 21
    close = np.full(rows, 100.0)
    y = rng.normal(0, 0.05, rows)
    fwd = close * np.exp(y)
    train_y = rng.normal(0, 0.05, 1000)
    fc = baselines(train_y, np.full(rows, 0.05 * math.sqrt(252 / n)), n)
    fc["model"] = _f(y * 0.5, y * 0.5 - 0.05, y * 0.5, y * 0.5 + 0.05)  # knows half the future
    out = compare_methods(close, y, fwd, fc, n)
    assert set(out) == {"model", "no_change", "drift", "vol_band"}
    for m, s in out.items():
        assert s["n_test"] == rows
        assert s["mape"] == pytest.approx(score(close, y, fwd, fc[m])["mape"])
    assert out["model"]["dm_p_better_no_change"] < 1e-6 and out["model"]["dm_p_better_vol_band"] < 1e-6
    assert math.isnan(out["no_change"]["dm_stat_no_change"]) and math.isnan(out["vol_band"]["dm_stat_vol_band"])
    # no_change and vol_band share the point: equal MAPE
    assert out["no_change"]["mape"] == out["vol_band"]["mape"]


# --- on the real matrix -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frame(tmp_path_factory, sample_data: Path):
    h = tmp_path_factory.mktemp("metrics")
    warehouse.init(h / "warehouse.duckdb")
    with warehouse.open_warehouse(h / "warehouse.duckdb") as con:
        assert pipeline.migrate_legacy_dir(con, sample_data / "legacy_bq")["ok"]
        assert pipeline.ingest_paths(con, [sample_data / "fred", sample_data / "registry"])["ok"]
        assert build_features(con, ["ZL"], "yahoo_historical").ok
        vol = dict(con.execute(
            "SELECT date, market_data.volatility_21d FROM features.daily_ml_matrix "
            "WHERE symbol = 'ZL' AND matrix_source = 'yahoo_historical'").fetchall())
        return load_frame(con, "ZL", "yahoo_historical"), vol


def test_baselines_on_the_real_matrix(frame):
    """The vol band on real ZL test rows: its bounds are the matrix's own volatility_21d (read
    back by date here), and it covers roughly its nominal 80%."""
    fr, vol_by_date = frame
    for h, n in (("1w", 5), ("3m", 63)):
        lab = fr.labelled(h)
        folds = walk_forward(lab, n, n_folds=3)
        test = np.concatenate([f.test for f in folds])
        vol = np.array([vol_by_date[d] for d in fr.dates[test].astype(object)])
        assert np.all(np.isfinite(vol)) and np.all(vol > 0)
        close, fwd, y = fr.close[test], fr.fwd_close[h][test], fr.targets[h][test]
        fc = baselines(fr.targets[h][folds[0].train], fr.vol21[test], n)
        p90 = close * np.exp(fc["vol_band"]["p90"])
        assert p90 == pytest.approx(close * np.exp(1.2816 * vol * math.sqrt(n / 252)), rel=1e-4)
        out = compare_methods(close, y, fwd, fc, n)
        assert 0.65 <= out["vol_band"]["coverage_p10_p90"] <= 0.9, out["vol_band"]
        assert out["no_change"]["mape"] == pytest.approx(
            float(np.mean(np.abs(close - fwd) / fwd) * 100), rel=1e-12)


# --- the publication gate ----------------------------------------------------------------------


def _real_rows(fr, h, n):
    lab = fr.labelled(h)
    folds = walk_forward(lab, n, n_folds=3)
    test = np.concatenate([f.test for f in folds])
    train_y = fr.targets[h][folds[0].train]
    return test, train_y


def test_the_gate_publishes_a_baseline_when_a_model_has_no_signal(frame):
    """On real ZL test rows: a 'model' that forecasts shuffled training returns (no signal) loses to
    the baselines and is not published; one that is told the realised return is."""
    from cbi_local.training.publish import choose

    fr, _ = frame
    rng = np.random.default_rng(11)
    for h, n in (("1w", 5), ("3m", 63)):
        test, train_y = _real_rows(fr, h, n)
        close, fwd, y = fr.close[test], fr.fwd_close[h][test], fr.targets[h][test]
        fc = baselines(train_y, fr.vol21[test], n)
        noise = rng.choice(train_y, size=test.size)
        q10, q90 = np.quantile(train_y, [0.1, 0.9])
        fc["model"] = _f(noise, noise + q10, noise, noise + q90)
        method, reason = choose(compare_methods(close, y, fwd, fc, n))
        assert method in ("no_change", "drift", "vol_band") and "loses to" in reason
        oracle = y + rng.normal(0, 0.001, y.size)
        fc["model"] = _f(oracle, oracle - 0.002, oracle, oracle + 0.002)
        assert choose(compare_methods(close, y, fwd, fc, n))[0] == "model"


def test_the_best_baseline_is_no_worse_than_no_change_on_mape():
    """drift is published only when its MAPE is no worse than no-change's; otherwise the lowest
    quantile score among no_change and vol_band."""
    from cbi_local.training.publish import choose

    def s(mape, qs, p=0.9):
        return {"mape": mape, "quantile_score": qs, "dm_p_better_no_change": p, "dm_p_better_vol_band": p}

    pooled = {"model": s(3.0, 1.0), "no_change": s(2.0, 0.9), "drift": s(2.1, 0.5), "vol_band": s(2.0, 0.8)}
    assert choose(pooled)[0] == "vol_band"
    pooled["drift"] = s(1.9, 0.5)
    assert choose(pooled)[0] == "drift"
    # beating every baseline on both scores is not enough without DM evidence
    pooled["model"] = s(1.0, 0.1, p=0.2)
    method, reason = choose(pooled)
    assert method == "drift" and "DM p" in reason and "loses to" not in reason
    pooled["model"] = s(1.0, 0.1, p=0.05)
    assert choose(pooled)[0] == "model"
    # a method that cannot forecast from today's row is never published; no_change always can
    assert choose(pooled, {"model"})[0] == "drift"
    pooled["model"] = s(3.0, 1.0)
    pooled["drift"] = s(2.1, 0.5)
    assert choose(pooled, {"vol_band"})[0] == "no_change"
    pooled["vol_band"] = s(2.0, float("nan"))
    assert choose(pooled)[0] == "no_change"


def test_consistent_bands_are_ordered_and_never_narrower_at_a_longer_horizon():
    from cbi_local.training.publish import consistent

    c = 100.0
    out = consistent([
        {"horizon": "6m", "close": c, "point": 130.0, "p10": 95.0, "p50": 101.0, "p90": 110.0},  # narrower than 3m
        {"horizon": "3m", "close": c, "point": 99.0, "p10": 90.0, "p50": 100.0, "p90": 112.0},
        {"horizon": "1w", "close": c, "point": 100.0, "p10": 101.0, "p50": 99.0, "p90": 102.0},  # crossed
    ])
    assert [f["horizon"] for f in out] == ["1w", "3m", "6m"]
    w = out[0]
    assert (w["p10"], w["p50"], w["p90"]) == pytest.approx((99.0, 101.0, 102.0))
    m3, m6 = out[1], out[2]
    assert m3["widened"] == [] and (m3["p10"], m3["p90"]) == (90.0, 112.0)
    # 6m keeps its median and takes the 3m half-widths (in log terms)
    assert m6["p50"] == pytest.approx(101.0)
    assert m6["p10"] == pytest.approx(101.0 * 90.0 / 100.0) and m6["p90"] == pytest.approx(101.0 * 112.0 / 100.0)
    assert set(m6["widened"]) == {"p10", "p90"}
    assert m6["point"] == pytest.approx(m6["p90"])  # clipped into the band
