"""features.daily_ml_matrix on the real sample data.

Inputs are real: the legacy Yahoo ZL export (canonical ZL = the Yahoo bridge 2000-11 .. 2010-06,
built by the legacy migration; the research matrix = market_data.yahoo_historical ZL 2000-2025,
with ZS/ZM for the crush margin), the real FRED CSVs and the regime registry, and the real
Databento ES 1h/1d bars. Every expected value is recomputed here in plain Python/NumPy from the
warehouse's input rows or the sample files themselves, never with the code under test.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import json
import math
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
import yaml
import typer.main
from typer.testing import CliRunner

import data_contracts as dc
from cbi_local import calendars, pipeline, warehouse
from cbi_local.cli import app
from cbi_local.features import build_features, flat_columns
from cbi_local.features.build import _first_at_or_after, hourly_sessions, read_inputs

MATRIX = dc.get("features.daily_ml_matrix")
HORIZONS = {"1w": 5, "1m": 21, "3m": 63, "6m": 126, "12m": 252}
runner = CliRunner()
SOURCES = {"canonical": "SELECT date, open, high, low, close, volume FROM market_data.futures_continuous_1d WHERE root = 'ZL'",
           "yahoo_historical": "SELECT date, open, high, low, close, volume FROM market_data.yahoo_historical WHERE symbol = 'ZL'"}


def _cli(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def home(tmp_path_factory, sample_data: Path) -> Path:
    h = tmp_path_factory.mktemp("features")
    warehouse.init(h / "warehouse.duckdb")
    with warehouse.open_warehouse(h / "warehouse.duckdb") as con:
        assert pipeline.migrate_legacy_dir(con, sample_data / "legacy_bq")["ok"]
        assert pipeline.ingest_paths(con, [sample_data / "fred", sample_data / "registry"])["ok"]
    for source in ("canonical", "yahoo_historical"):
        report = _cli("features", "build", "--source", source, "--home", str(h))
        assert report["ok"] and report["inserted"] > 0
    return h


@pytest.fixture
def con(home: Path):
    c = warehouse.connect(home / "warehouse.duckdb", read_only=True)
    yield c
    c.close()


def _series(con, source: str) -> list[tuple]:
    return con.execute(SOURCES[source] + " ORDER BY date").fetchall()


def _matrix(con, source: str) -> dict[dt.date, dict]:
    cols = [name for _, name in flat_columns()]
    rows = con.execute(
        "SELECT * FROM features.vw_daily_ml_flat WHERE symbol = 'ZL' AND matrix_source = ? ORDER BY date", [source]
    ).fetchall()
    return {r[0]: dict(zip(cols, r)) for r in rows}


def _close(a, b, rel=1e-9) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


# -- independent reference computations (plain Python / NumPy) -------------------------


def wilder_rsi(closes: list[float], i: int, n: int = 14) -> float | None:
    if i < n:
        return None
    changes = [closes[k] - closes[k - 1] for k in range(1, i + 1)]
    avg_g = sum(max(c, 0.0) for c in changes[:n]) / n
    avg_l = sum(max(-c, 0.0) for c in changes[:n]) / n
    for c in changes[n:]:
        avg_g = (avg_g * (n - 1) + max(c, 0.0)) / n
        avg_l = (avg_l * (n - 1) + max(-c, 0.0)) / n
    if avg_l == 0:
        return 100.0 if avg_g > 0 else None
    return 100.0 - 100.0 / (1.0 + avg_g / avg_l)


def vol21(closes: np.ndarray, i: int) -> float | None:
    if i < 21:
        return None
    r = np.log(closes[i - 20: i + 1] / closes[i - 21: i])
    return float(np.std(r, ddof=1) * math.sqrt(252))


@pytest.mark.parametrize("source", ["canonical", "yahoo_historical"])
def test_indicators_equal_an_independent_computation(con, source):
    rows = _series(con, source)
    m = _matrix(con, source)
    assert len(m) == len(rows)
    closes = np.array([r[4] for r in rows], dtype=float)
    n = len(rows)
    for i in (30, 300, 1111, n // 2, n - 300, n - 1):
        d = rows[i][0]
        got = m[d]
        c = closes[i]
        assert got["market_data__close"] == rows[i][4] and got["market_data__volume"] == rows[i][5]
        assert _close(got["market_data__return_1d"], math.log(c / closes[i - 1]))
        assert _close(got["market_data__return_5d"], math.log(c / closes[i - 5]))
        assert _close(got["market_data__return_21d"], math.log(c / closes[i - 21]))
        assert _close(got["market_data__momentum_21d"], c / closes[i - 21] - 1)
        assert _close(got["market_data__ma_5"], float(np.mean(closes[i - 4: i + 1])))
        assert _close(got["market_data__ma_21"], float(np.mean(closes[i - 20: i + 1])))
        assert _close(got["market_data__ma_63"], None if i < 62 else float(np.mean(closes[i - 62: i + 1])))
        assert _close(got["market_data__rsi_14"], wilder_rsi(list(closes), i), rel=1e-7)
        assert _close(got["market_data__volatility_21d"], vol21(closes, i), rel=1e-7)
        # regime volatility state over the trailing 252 volatility_21d values
        if i >= 21 + 251:
            vols = np.array([vol21(closes, k) for k in range(i - 251, i + 1)])
            assert _close(got["regime__vol_percentile"], 100.0 * np.sum(vols <= vols[-1]) / 252, rel=1e-7)
            assert _close(got["regime__k_vol"], vols[-1] / np.median(vols), rel=1e-7)
        else:
            assert got["regime__vol_percentile"] is None and got["regime__k_vol"] is None
        # targets: the close n sessions ahead, NULL where the series has not got there
        for h, k in HORIZONS.items():
            fwd = closes[i + k] if i + k < n else None
            assert _close(got[f"fwd_close_{h}"], fwd)
            assert _close(got[f"target_{h}"], None if fwd is None else math.log(fwd / c))
        # no 1h bars for ZL in the sample: NULL, never a placeholder
        assert got["market_data__vwap"] is None and got["market_data__realized_vol_1h"] is None
    warmup = m[rows[10][0]]
    assert warmup["market_data__ma_21"] is None and warmup["market_data__volatility_21d"] is None


@pytest.mark.parametrize("source", ["canonical", "yahoo_historical"])
def test_pivots_come_from_the_prior_session(con, source):
    rows = _series(con, source)
    m = _matrix(con, source)
    weeks: dict[tuple, list[tuple]] = {}
    for r in rows:
        weeks.setdefault(tuple(r[0].isocalendar()[:2]), []).append(r)
    week_keys = sorted(weeks)
    checked = withheld = 0
    for i in range(1, len(rows), 97):
        (d, _, _, _, c, _), (_, _, h, lo, pc, _) = rows[i], rows[i - 1]
        got = m[d]
        if h is None or lo is None:
            assert all(got[f"pivots__{x}"] is None for x in ("p", "r1", "r2", "s1", "s2", "distance_to_p", "is_above_p"))
            withheld += 1
            continue
        p = (h + lo + pc) / 3
        levels = {"p": p, "r1": 2 * p - lo, "r2": p + (h - lo), "s1": 2 * p - h, "s2": p - (h - lo)}
        for k, v in levels.items():
            assert _close(got[f"pivots__{k}"], v)
        assert _close(got["pivots__distance_to_p"], (c - p) / p)
        nearest = min(levels.values(), key=lambda v: abs(c - v))
        assert _close(got["pivots__distance_to_nearest"], (c - nearest) / nearest)
        assert got["pivots__is_above_p"] == (c > p)
        wk = week_keys.index(tuple(d.isocalendar()[:2]))
        if wk > 0:
            prev = weeks[week_keys[wk - 1]]
            if all(r[2] is not None and r[3] is not None for r in prev):
                wp = (max(r[2] for r in prev) + min(r[3] for r in prev) + prev[-1][4]) / 3
                assert _close(got["pivots__weekly_p_distance"], (c - wp) / wp)
            else:
                assert got["pivots__weekly_p_distance"] is None
        checked += 1
    assert checked > 20
    if source == "canonical":  # the Yahoo stitch withholds O/H/L on 651 inconsistent days
        assert withheld > 0


def test_regime_names_and_weights_equal_the_registry(con, sample_data):
    reg = yaml.safe_load((sample_data / "registry" / "regime_weights.yaml").read_text())["regimes"]
    spans = [(dt.date.fromisoformat(r["start_date"]), dt.date.fromisoformat(r["end_date"]), r["name"], r["weight"])
             for r in reg.values()]
    base = next(s for s in spans if s[2] == "baseline")
    m = _matrix(con, "yahoo_historical")
    dates = sorted(m)
    names = set()
    for d in dates[::250] + [dt.date(2008, 10, 10), dt.date(2020, 3, 16), dt.date(2025, 1, 21)]:
        if d not in m:
            continue
        specific = [s for s in spans if s[2] != "baseline" and s[0] <= d <= s[1]]
        want = specific[0] if specific else base
        assert (m[d]["regime_name"], m[d]["regime__name"], m[d]["regime__weight"]) == (want[2], want[2], want[3]), d
        names.add(want[2])
    assert len(names) >= 10


def _fred_csv(sample_data: Path, series: str) -> list[tuple[dt.date, float]]:
    with open(sample_data / "fred" / f"{series}.csv") as f:
        return [(dt.date.fromisoformat(r["date"]), float(r["value"])) for r in csv.DictReader(f) if r["value"] not in ("", ".")]


def _available(rule: str, d: dt.date) -> dt.date:
    if rule == "daily":
        return d + dt.timedelta(days=1)
    if rule == "weekly":  # Thursday of the following week
        return d - dt.timedelta(days=d.weekday()) + dt.timedelta(days=10)
    nxt = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)  # monthly: the 15th of the next month
    return nxt + dt.timedelta(days=14)


MACRO = {"dgs10": ("DGS10", "daily", 10), "t10y2y": ("T10Y2Y", "daily", 10), "vix": ("VIXCLS", "daily", 10),
         "dollar_index": ("DTWEXBGS", "weekly", 21), "wti": ("DCOILWTICO", "weekly", 21),
         "fed_funds": ("FEDFUNDS", "monthly", 45), "dgs2": ("DGS2", "daily", 10), "t10yie": ("T10YIE", "daily", 10),
         "brent": ("DCOILBRENTEU", "weekly", 21)}


def test_macro_values_respect_the_publication_lag(con, sample_data):
    m = _matrix(con, "yahoo_historical")
    for field, (series, rule, stale) in MACRO.items():
        obs = sorted((_available(rule, d), d, v) for d, v in _fred_csv(sample_data, series))
        keys = [o[0] for o in obs]
        for d, row in m.items():
            k = bisect.bisect_right(keys, d) - 1
            want = obs[k][2] if k >= 0 and (d - obs[k][0]).days <= stale else None
            assert row[f"macro__{field}"] == want, (field, d)
    # explicit lags on real values: Tuesday 2008-09-16 sees Monday's DGS10, never its own
    dgs10 = dict(_fred_csv(sample_data, "DGS10"))
    d = dt.date(2008, 9, 16)
    assert m[d]["macro__dgs10"] == dgs10[dt.date(2008, 9, 15)] != dgs10[d]
    # FEDFUNDS of October 2008 is usable from 2008-11-15 only
    ff = dict(_fred_csv(sample_data, "FEDFUNDS"))
    assert m[dt.date(2008, 11, 14)]["macro__fed_funds"] == ff[dt.date(2008, 9, 1)]
    assert m[dt.date(2008, 11, 17)]["macro__fed_funds"] == ff[dt.date(2008, 10, 1)]
    # before DTWEXBGS starts (2006-01-02) the dollar index is NULL, not filled
    assert m[dt.date(2005, 6, 1)]["macro__dollar_index"] is None
    labels = {r["macro__vix"]: r["macro__vix_regime"] for r in m.values() if r["macro__vix"] is not None}
    for v, label in labels.items():
        assert label == ("low" if v < 15 else "normal" if v < 25 else "high" if v < 35 else "crisis")


def test_crush_margin_from_the_same_source_closes(con):
    legs = {}
    for sym, d, c in con.execute(
        "SELECT symbol, date, close FROM market_data.yahoo_historical WHERE symbol IN ('ZS', 'ZM', 'ZL')"
    ).fetchall():
        legs.setdefault(d, {})[sym] = c
    m = _matrix(con, "yahoo_historical")
    both = 0
    for d, row in m.items():
        leg = legs.get(d, {})
        if len(leg) == 3:
            assert _close(row["macro__crush_margin"], leg["ZM"] * 0.022 + leg["ZL"] * 0.11 - leg["ZS"] / 100.0)
            both += 1
        else:
            assert row["macro__crush_margin"] is None
    assert both > 5000
    # canonical: no Databento ZS/ZM in the sample -> NULL on every row, and a warning
    assert all(r["macro__crush_margin"] is None for r in _matrix(con, "canonical").values())
    warned = con.execute(
        "SELECT COUNT(*) FROM monitoring.health_checks WHERE rule = 'missing_input' AND status = 'warn' "
        "AND rule_columns = 'macro.crush_margin' AND message LIKE 'canonical ZL%'"
    ).fetchall()[0][0]
    assert warned >= 1


def test_research_rows_are_marked_and_never_pushable(con):
    by_source = dict(con.execute(
        "SELECT matrix_source, COUNT(*) FROM features.daily_ml_matrix GROUP BY 1").fetchall())
    canon = con.execute(SOURCES["canonical"].replace("date, open, high, low, close, volume", "COUNT(*)")).fetchall()[0][0]
    yahoo = con.execute(SOURCES["yahoo_historical"].replace("date, open, high, low, close, volume", "COUNT(*)")).fetchall()[0][0]
    assert by_source == {"canonical": canon, "yahoo_historical": yahoo}
    pushable = con.execute(
        f"SELECT matrix_source, COUNT(*) FROM features.daily_ml_matrix WHERE {MATRIX.push_only_where} GROUP BY 1"
    ).fetchall()
    assert pushable == [("canonical", canon)]
    span = con.execute("SELECT MIN(date), MAX(date) FROM features.daily_ml_matrix WHERE matrix_source = 'canonical'").fetchall()[0]
    assert span[0] >= dt.date(2000, 11, 1) and span[1] < dt.date(2010, 6, 6)


def test_rebuild_is_idempotent_and_replaces_only_its_slice(home):
    before = _cli("features", "build", "--source", "canonical", "--symbols", "ZL", "--home", str(home))
    assert (before["inserted"], before["deleted"], before["batch_id"]) == (0, 0, None)
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as c:
        n = c.execute("SELECT matrix_source, COUNT(*), COUNT(DISTINCT batch_id) FROM features.daily_ml_matrix GROUP BY 1 ORDER BY 1").fetchall()
        batches = c.execute("SELECT COUNT(*) FROM ops.batches WHERE kind = 'features'").fetchall()[0][0]
    again = _cli("features", "build", "--source", "yahoo_historical", "--home", str(home))
    assert again["inserted"] == again["deleted"] == 0 and again["unchanged"] == n[1][1]
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as c:
        assert c.execute("SELECT matrix_source, COUNT(*), COUNT(DISTINCT batch_id) FROM features.daily_ml_matrix GROUP BY 1 ORDER BY 1").fetchall() == n
        assert c.execute("SELECT COUNT(*) FROM ops.batches WHERE kind = 'features'").fetchall()[0][0] == batches


def _snapshot(con, upto: dt.date) -> set[tuple]:
    keep = [name for _, name in flat_columns()
            if not name.startswith(("target_", "fwd_close_")) and name not in ("batch_id", "created_at")]
    sql = f"SELECT {', '.join(keep)} FROM features.vw_daily_ml_flat WHERE date <= ?"
    return set(con.execute(sql, [upto]).fetchall())


def test_no_look_ahead_changing_every_input_after_d_changes_no_feature_up_to_d(home, tmp_path):
    shutil.copy(home / "warehouse.duckdb", tmp_path / "w.duckdb")
    D = dt.date(2006, 3, 15)
    with warehouse.open_warehouse(tmp_path / "w.duckdb") as c:
        before = _snapshot(c, D)
        targets_before = c.execute("SELECT date, matrix_source, target_1m FROM features.daily_ml_matrix WHERE date <= ?", [D]).fetchall()
        assert len(before) > 2000
        for table in ("market_data.futures_continuous_1d", "market_data.yahoo_historical"):
            c.execute(f"UPDATE {table} SET open = open * 1.37, high = high * 1.37, low = low * 1.37, "
                      "close = close * 1.37, volume = volume + 7 WHERE date > ?", [D])
        c.execute("UPDATE raw_intelligence.fred_economic SET value = value * 1.5 + 1 WHERE date > ?", [D])
        c.execute("UPDATE regimes.regime_calendar SET regime_name = 'mutated_after_d', regime_weight = 999 WHERE date > ?", [D])
        for source in ("canonical", "yahoo_historical"):
            rep = build_features(c, None, source)
            assert rep.inserted > 0
        assert _snapshot(c, D) == before
        # the mutation did reach later rows, and the targets (which look ahead by design) near D
        assert c.execute("SELECT COUNT(*) FROM features.daily_ml_matrix WHERE date > ? AND regime_name = 'mutated_after_d'", [D]).fetchall()[0][0] > 1000
        targets_after = c.execute("SELECT date, matrix_source, target_1m FROM features.daily_ml_matrix WHERE date <= ?", [D]).fetchall()
        assert set(targets_after) != set(targets_before)


def test_a_vanished_input_row_rewrites_exactly_the_rows_whose_content_changed(home, tmp_path):
    shutil.copy(home / "warehouse.duckdb", tmp_path / "w.duckdb")
    content = [name for _, name in flat_columns() if name not in ("batch_id", "created_at")]
    sql = (f"SELECT batch_id, {', '.join(content)} FROM features.vw_daily_ml_flat "
           "WHERE matrix_source = 'canonical' AND symbol = 'ZL'")

    def rows(c) -> dict[dt.date, tuple]:
        return {r[1]: r for r in c.execute(sql).fetchall()}  # r[1]: date

    with warehouse.open_warehouse(tmp_path / "w.duckdb") as c:
        before = rows(c)
        dates = sorted(before)
        i = 1500
        c.execute("DELETE FROM market_data.futures_continuous_1d WHERE root = 'ZL' AND date = ?", [dates[i]])
        rep = build_features(c, ["ZL"], "canonical")
        after = rows(c)
        other = c.execute("SELECT COUNT(*) FROM features.daily_ml_matrix WHERE matrix_source = 'yahoo_historical' "
                          "AND batch_id = ?", [rep.batch_id]).fetchall()[0][0]
    assert set(after) == set(before) - {dates[i]}
    changed = {d for d in after if after[d][1:] != before[d][1:]}
    rewritten = {d for d in after if after[d][0] == rep.batch_id}
    # a row gets the new batch exactly when its content changed; the others keep theirs
    assert rewritten == changed and all(after[d][0] == before[d][0] for d in set(after) - changed)
    assert rep.deleted == rep.inserted + 1 and rep.inserted == len(changed) and other == 0
    assert rep.unchanged == len(after) - rep.inserted
    # the earliest row it reaches: the 12m forward close of the row 252 sessions before it
    assert min(changed) == dates[i - HORIZONS["12m"]] and max(changed) > dates[i + 252]


def test_1h_sessions_are_bit_identical_whatever_the_row_order(tmp_path, sample_data):
    glbx = sample_data / "databento" / "GLBX.MDP3"
    c = _es_warehouse(tmp_path, [glbx / "test_data.ohlcv-1h.dbn.zst", glbx / "test_data.definition.dbn.zst"], [])
    try:
        inputs = read_inputs(c, "canonical", ["ES"])
    finally:
        c.close()
    bars = inputs.bars_1h
    assert bars.height == 4
    want = hourly_sessions(bars, inputs.pairs)
    assert want.height == 1 and want["date"].to_list() == [dt.date(2020, 12, 28)]
    for order in ([3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]):
        assert hourly_sessions(bars[order], inputs.pairs).equals(want)


def test_session_cuts_packed_search_equals_one_search_per_range():
    # Ranges: each product group's real session opens 2019-2021 (sorted within a range); queries:
    # every group's real session ends, asked of every range.
    groups = [calendars.sessions(g.roots[0], "2019-01-01", "2021-12-31") for g in calendars.GROUPS]
    opens = [g.column("open_utc").cast(pa.int64()).to_numpy() for g in groups]
    ends = np.concatenate([g.column("assign_until_utc").cast(pa.int64()).to_numpy() for g in groups])
    ts = np.concatenate(opens)
    r1 = np.cumsum([len(o) for o in opens])
    r0 = r1 - [len(o) for o in opens]
    owner = np.repeat(np.arange(len(r0)), len(ends))
    t = np.tile(ends, len(r0))
    want = np.array([r0[j] + np.searchsorted(ts[r0[j]:r1[j]], q) for j, q in zip(owner, t)])
    assert np.array_equal(_first_at_or_after(ts, r0, r1, owner, t), want)  # ranges back to back: packed
    # ranges with gaps between them take one search per range
    gap_r0, gap_r1 = r0 + 5, r1 - 5
    want = np.array([gap_r0[j] + np.searchsorted(ts[gap_r0[j]:gap_r1[j]], q) for j, q in zip(owner, t)])
    assert np.array_equal(_first_at_or_after(ts, gap_r0, gap_r1, owner, t), want)


def _es_warehouse(tmp_path: Path, files: list[Path], fred_registry: list[Path]):
    warehouse.init(tmp_path / "w.duckdb")
    c = warehouse.connect(tmp_path / "w.duckdb")
    assert pipeline.ingest_paths(c, files + fred_registry)["ok"]
    return c


def test_vwap_and_realized_vol_from_real_1h_bars(tmp_path, sample_data):
    glbx = sample_data / "databento" / "GLBX.MDP3"
    c = _es_warehouse(tmp_path, [glbx / "test_data.ohlcv-1h.dbn.zst", glbx / "test_data.definition.dbn.zst"], [])
    try:
        rep = build_features(c, ["ES"], "canonical")
        bars = c.execute("SELECT open, high, low, close, volume FROM market_data.databento_futures_ohlcv_1h ORDER BY ts_event").fetchall()
        (md,) = c.execute("SELECT market_data FROM features.daily_ml_matrix WHERE symbol = 'ES'").fetchall()[0]
    finally:
        c.close()
    assert len(bars) == 4 and rep.rows == {"ES": 1}
    vwap = sum((h + lo + cl) / 3 * v for _, h, lo, cl, v in bars) / sum(b[4] for b in bars)
    rets = [math.log(bars[0][3] / bars[0][0])] + [math.log(bars[k][3] / bars[k - 1][3]) for k in range(1, 4)]
    assert _close(md["vwap"], vwap) and _close(md["realized_vol_1h"], math.sqrt(sum(r * r for r in rets)))
    assert md["volume"] == sum(b[4] for b in bars)


def test_partial_1h_bars_give_null_and_a_warning(tmp_path, sample_data):
    # with the real ohlcv-1d bar the session's volume (718,174) exceeds the four 1h bars': partial coverage
    c = _es_warehouse(tmp_path, [sample_data / "databento" / "GLBX.MDP3"], [])
    try:
        rep = build_features(c, ["ES"], "canonical")
        (md,) = c.execute("SELECT market_data FROM features.daily_ml_matrix WHERE symbol = 'ES'").fetchall()[0]
        recorded = c.execute("SELECT COUNT(*) FROM monitoring.health_checks WHERE rule = 'missing_input' "
                             "AND rule_columns = 'market_data.vwap'").fetchall()[0][0]
    finally:
        c.close()
    assert md["volume"] == 718174 and md["vwap"] is None and md["realized_vol_1h"] is None
    assert any("do not cover" in w["reason"] for w in rep.warnings) and recorded >= 1
    # no regime calendar / FRED loaded: NULL with warnings, never invented
    fields = {w["field"] for w in rep.warnings}
    assert {"regime.name", "macro.vix", "macro.fed_funds"} <= fields


def test_flat_view_and_parquet_export_follow_the_contract(home, tmp_path):
    names = [name for _, name in flat_columns()]
    n_fields = sum(len(c.fields) if c.type == "STRUCT" else 1 for c in MATRIX.columns)
    assert len(names) == len(set(names)) == n_fields
    out = tmp_path / "m.parquet"
    res = _cli("features", "export", "--format", "parquet", "--out", str(out), "--source", "yahoo_historical",
               "--home", str(home))
    df = pl.read_parquet(out)
    assert df.columns == names and df.height == res["rows"] > 6000
    assert set(df["matrix_source"].unique()) == {"yahoo_historical"}
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as c:
        view_cols = [r[0] for r in c.execute("DESCRIBE features.vw_daily_ml_flat").fetchall()]
        row = c.execute("SELECT market_data.close, pivots.p, macro.vix, regime.weight FROM features.daily_ml_matrix "
                        "WHERE matrix_source = 'yahoo_historical' AND date = DATE '2015-06-01'").fetchall()[0]
    assert view_cols == names
    got = df.filter(pl.col("date") == dt.date(2015, 6, 1)).row(0, named=True)
    assert (got["market_data__close"], got["pivots__p"], got["macro__vix"], got["regime__weight"]) == row
    bad = runner.invoke(app, ["features", "export", "--format", "csv", "--home", str(home)])
    assert bad.exit_code == 2 and "unsupported export format" in bad.output


def test_unknown_source_is_refused(home):
    assert "build" in typer.main.get_command(app).commands["features"].commands  # the group is registered on `cbi`
    bad = runner.invoke(app, ["features", "build", "--source", "databento_raw", "--home", str(home)])
    assert bad.exit_code == 2 and "unknown matrix source" in bad.output


# --- positioning (CFTC COT) ------------------------------------------------------------------------


def _cot_reports(con) -> list[tuple]:
    return con.execute(
        "SELECT report_date, commercial_net, managed_money_net, open_interest FROM raw_intelligence.cftc_cot "
        "WHERE contract_code = 'ZL' AND open_interest > 0 ORDER BY report_date"
    ).fetchall()


def test_positioning_recomputed_independently_from_the_cot_rows(con):
    reports = _cot_reports(con)
    assert len(reports) > 800
    pct = [c / oi * 100 for _, c, _, oi in reports]
    usable = [r[0] + dt.timedelta(days=7) for r in reports]
    rows = _matrix(con, "yahoo_historical")
    checked = 0
    for d, row in rows.items():
        i = bisect.bisect_right(usable, d) - 1  # the latest report usable on d
        if i < 0 or (d - usable[i]).days > 21:
            assert row["positioning__commercial_net_pct_oi"] is None, d
            continue
        assert _close(row["positioning__commercial_net_pct_oi"], pct[i]), d
        assert _close(row["positioning__commercial_net_change_1w"], pct[i] - pct[i - 1] if i else None), d
        window = pct[max(0, i - 155): i + 1]
        want = sum(v <= pct[i] for v in window) / len(window) if i + 1 >= 52 else None
        assert _close(row["positioning__commercial_net_pctile_3y"], want), d
        mm = reports[i][2]
        assert _close(row["positioning__managed_money_net_pct_oi"], None if mm is None else mm / reports[i][3] * 100), d
        checked += 1
    assert checked > 4000


def test_positioning_has_no_look_ahead_a_report_is_used_only_after_its_release(home, tmp_path):
    """Reports not yet usable on D (report date within 7 days of D, or later) are mutated: no positioning
    value up to D changes; later rows do."""
    shutil.copy(home / "warehouse.duckdb", tmp_path / "w.duckdb")
    D = dt.date(2012, 6, 14)  # a Thursday: the report of Tuesday the 12th is not usable before the 19th
    sql = ("SELECT date, matrix_source, positioning FROM features.daily_ml_matrix WHERE symbol = 'ZL' AND date <= ? "
           "ORDER BY ALL")
    with warehouse.open_warehouse(tmp_path / "w.duckdb") as c:
        before = c.execute(sql, [D]).fetchall()
        later = c.execute(sql.replace("date <= ?", "date > ?"), [D]).fetchall()
        assert sum(r[2] is not None and r[2]["commercial_net_pct_oi"] is not None for r in before) > 1000
        c.execute("UPDATE raw_intelligence.cftc_cot SET commercial_net = commercial_net + open_interest / 3 "
                  "WHERE report_date > ?", [D - dt.timedelta(days=7)])
        for source in ("canonical", "yahoo_historical"):
            build_features(c, None, source)
        assert c.execute(sql, [D]).fetchall() == before
        assert c.execute(sql.replace("date <= ?", "date > ?"), [D]).fetchall() != later


# --- cross-asset ---------------------------------------------------------------------------------


def test_cross_asset_recomputed_independently_from_the_research_series(con):
    closes = {s: dict(con.execute("SELECT date, close FROM market_data.yahoo_historical WHERE symbol = ? "
                                  "AND close > 0 ORDER BY date", [s]).fetchall()) for s in ("ZL", "ZM", "ZS", "CL")}
    rows = _matrix(con, "yahoo_historical")
    zs_dates = sorted(closes["ZS"])
    cl_dates = sorted(closes["CL"])
    checked = 0
    for d, row in rows.items():
        zl, zm = closes["ZL"].get(d), closes["ZM"].get(d)
        want = zl * 11 / (zl * 11 + zm * 2.2) if zl is not None and zm is not None else None
        assert _close(row["cross_asset__oil_share"], want), d
        if d in closes["ZS"]:
            i = bisect.bisect_left(zs_dates, d)
            want = math.log(closes["ZS"][d] / closes["ZS"][zs_dates[i - 1]]) if i else None
            assert _close(row["cross_asset__zs_ret_1d"], want), d
            checked += 1
        if d in closes["CL"]:
            i = bisect.bisect_left(cl_dates, d)
            want = math.log(closes["CL"][d] / closes["CL"][cl_dates[i - 21]]) if i >= 21 else None
            assert _close(row["cross_asset__cl_ret_21d"], want), d
        corr = row["cross_asset__zs_corr_63d"]
        assert corr is None or -1 - 1e-9 <= corr <= 1 + 1e-9
    assert checked > 5000


def test_a_leg_that_is_the_rows_own_symbol_has_no_correlation(home, tmp_path):
    """ZS rows of the research matrix (the real Yahoo ZS series): their soybean leg is ZS itself, whose
    correlation with itself is 1 on every row, a constant the placeholder checks refuse. It is NULL
    there, the other legs are computed, and the build passes its health gate."""
    h = tmp_path / "zs"
    h.mkdir()
    shutil.copy(home / "warehouse.duckdb", h / "warehouse.duckdb")
    report = _cli("features", "build", "--source", "yahoo_historical", "--symbols", "ZS", "--home", str(h))
    assert report["ok"] and not (report.get("gate") or {}).get("failed"), report.get("gate")
    with warehouse.connect(h / "warehouse.duckdb", read_only=True) as c:
        rows, zs_corr, zm_corr, zs_ret = c.execute(
            "SELECT count(*), count(cross_asset__zs_corr_63d), count(cross_asset__zm_corr_63d), count(cross_asset__zs_ret_1d) "
            "FROM features.vw_daily_ml_flat WHERE matrix_source = 'yahoo_historical' AND symbol = 'ZS'").fetchone()
    assert rows > 5000 and zs_corr == 0 and zm_corr > 5000 and zs_ret > 5000


def test_canonical_rows_never_read_research_series_for_cross_asset(con):
    """The canonical matrix has no continuous ZS/ZM/CL/ES-era legs in the sample: its cross_asset fields
    stay NULL (with a warning), never filled from the Yahoo series of the research matrix."""
    n = con.execute("SELECT count(*), count(cross_asset__zs_ret_1d), count(cross_asset__cl_ret_21d), "
                    "count(cross_asset__oil_share) FROM features.vw_daily_ml_flat WHERE matrix_source = 'canonical' "
                    "AND symbol = 'ZL'").fetchone()
    assert n[0] > 2000 and n[1:] == (0, 0, 0)


def test_calendar_features_recomputed_independently(con):
    def days_to(d: dt.date, start: tuple[int, int], end: tuple[int, int]) -> tuple[int, bool]:
        s, e = dt.date(d.year, *start), dt.date(d.year, *end)
        if s <= d <= e:
            return 0, True
        nxt = s if d < s else dt.date(d.year + 1, *start)
        return (nxt - d).days, False

    rows = _matrix(con, "canonical")
    assert len(rows) > 2000
    for d, row in rows.items():
        assert (row["calendar__month"], row["calendar__week_of_year"]) == (d.month, d.isocalendar()[1]), d
        assert (row["calendar__days_to_planting"], row["calendar__in_planting"]) == days_to(d, (5, 1), (6, 15)), d
        assert (row["calendar__days_to_harvest"], row["calendar__in_harvest"]) == days_to(d, (9, 20), (11, 10)), d


# --- term structure (Databento outrights) --------------------------------------------------------

TS_FIELDS = ("second_symbol", "front_minus_second", "front_minus_second_rel", "front_days_to_expiry", "is_roll_day")


def _dbn_rows(path: Path):
    import warnings

    import databento as db

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # databento's own pandas deprecation warnings
        return db.DBNStore.from_file(path).to_df().reset_index()


def test_term_structure_is_null_with_a_warning_when_one_contract_trades(tmp_path, sample_data):
    """The real GLBX sample holds one outright (ESH1) on one day: no second contract, so every
    term_structure field is NULL, with a missing_input warning. The count of outrights per day is
    redone here from the raw DBN records, and the front's expiration from the raw definition."""
    glbx = sample_data / "databento" / "GLBX.MDP3"
    per_day: dict[dt.date, set[int]] = {}
    for schema in ("ohlcv-1d", "ohlcv-1h"):
        df = _dbn_rows(glbx / f"test_data.{schema}.dbn.zst")
        for ts, iid in zip(df["ts_event"], df["instrument_id"]):
            per_day.setdefault(ts.date(), set()).add(int(iid))
    assert {d: len(ids) for d, ids in per_day.items()} == {dt.date(2020, 12, 28): 1}  # 0 days with 2+ contracts
    definition = _dbn_rows(glbx / "test_data.definition.dbn.zst").iloc[0]
    c = _es_warehouse(tmp_path, [glbx], [])
    try:
        rep = build_features(c, ["ES"], "canonical")
        cont = c.execute("SELECT symbol, next_symbol, next_close, contract_prior_close FROM market_data.futures_continuous_1d "
                         "WHERE root = 'ES'").fetchall()
        inputs = read_inputs(c, "canonical", ["ES"])
        (ts,) = c.execute("SELECT term_structure FROM features.daily_ml_matrix WHERE symbol = 'ES'").fetchall()[0]
        recorded = c.execute("SELECT message FROM monitoring.health_checks WHERE rule = 'missing_input' "
                             "AND rule_columns = 'term_structure.front_minus_second'").fetchall()
    finally:
        c.close()
    assert cont == [(definition["raw_symbol"], None, None, None)]  # the first row has no prior close either
    # the input a second contract would make usable: the front's expiration, from its real definition
    assert inputs.expiries.rows() == [(definition["raw_symbol"], definition["expiration"].date())]
    assert inputs.expiries.rows() == [("ESH1", dt.date(2021, 3, 19))]
    assert ts == {f: None for f in TS_FIELDS}
    [w] = [w for w in rep.warnings if w["field"] == "term_structure.front_minus_second"]
    assert (w["symbol"], w["null_rows"], w["rows"]) == ("ES", 1, 1) and "one contract is no curve" in w["reason"]
    assert not [w for w in rep.warnings if w["field"] == "term_structure.front_days_to_expiry"]
    assert len(recorded) == 1 and recorded[0][0].startswith("canonical ES: 1 of 1 rows NULL")


def test_term_structure_is_null_on_the_sample_matrices(con):
    # canonical ZL is the Yahoo bridge (no Databento outright at all), the research matrix Yahoo only
    sources = con.execute("SELECT DISTINCT source, symbol FROM market_data.futures_continuous_1d WHERE root = 'ZL'").fetchall()
    assert sources == [("yahoo", "ZL")]
    counts = con.execute(
        f"SELECT matrix_source, count(*), {', '.join(f'count(term_structure__{f})' for f in TS_FIELDS)} "
        "FROM features.vw_daily_ml_flat WHERE symbol = 'ZL' GROUP BY 1 ORDER BY 1").fetchall()
    assert [(s, n > 2000, rest) for s, n, *rest in counts] == [
        ("canonical", True, [0] * 5), ("yahoo_historical", True, [0] * 5)]
    warned = dict(con.execute(
        "SELECT split_part(message, ' ', 1), message FROM monitoring.health_checks WHERE rule = 'missing_input' "
        "AND rule_columns = 'term_structure.front_minus_second' AND message LIKE '% ZL: %'").fetchall())
    assert set(warned) == {"canonical", "yahoo_historical"}
    assert "no Databento outrights in a research matrix" in warned["yahoo_historical"]


def test_term_structure_has_no_look_ahead_inputs_after_d_change_no_value_up_to_d(home, tmp_path):
    """Every term-structure input after D is changed (a second contract appears, rolls are recorded):
    no term_structure value on or before D moves; later rows do. The sample has no second contract,
    so the values up to D are the NULLs the sample gives. (The mutated rows are no data: the build
    runs without the health gate, which would rightly hold such a batch back.)"""
    shutil.copy(home / "warehouse.duckdb", tmp_path / "w.duckdb")
    D = dt.date(2006, 3, 15)
    sql = ("SELECT date, term_structure FROM features.daily_ml_matrix WHERE matrix_source = 'canonical' "
           "AND symbol = 'ZL' AND date {} ? ORDER BY date")
    with warehouse.open_warehouse(tmp_path / "w.duckdb") as c:
        before, later = c.execute(sql.format("<="), [D]).fetchall(), c.execute(sql.format(">"), [D]).fetchall()
        assert len(before) > 1000
        c.execute("UPDATE market_data.futures_continuous_1d SET next_symbol = 'ZLZ9', "
                  "next_close = close * (1.01 + (day(date) % 5) / 100), source = 'databento', "
                  "roll_from_symbol = CASE WHEN day(date) = 1 THEN 'ZLZ8' END, contract_prior_close = close "
                  "WHERE root = 'ZL' AND date > ?", [D])
        build_features(c, ["ZL"], "canonical", record_health=False)
        assert c.execute(sql.format("<="), [D]).fetchall() == before
        after = c.execute(sql.format(">"), [D]).fetchall()
    assert len(after) == len(later) and all(a[1]["second_symbol"] == "ZLZ9" for a in after)
    assert {a[1]["is_roll_day"] for a in after} == {True, False}
    assert all(r[1] == {f: None for f in TS_FIELDS} for r in later)


# --- roll adjustment of returns and targets --------------------------------------------------------

RETURN_FIELDS = ("market_data__return_1d", "market_data__return_5d", "market_data__return_21d",
                 "market_data__momentum_21d", "market_data__volatility_21d", "regime__vol_percentile", "regime__k_vol",
                 *(f"cross_asset__{k}_{w}" for k in ("zs", "zm", "cl", "spx", "dxy") for w in ("ret_1d", "ret_21d", "corr_63d")))


def _content(c, source: str) -> dict[dt.date, tuple]:
    cols = [n for _, n in flat_columns() if n not in ("batch_id", "created_at", "roll_adjustment")]
    rows = c.execute(f"SELECT {', '.join(cols)}, roll_adjustment FROM features.vw_daily_ml_flat WHERE symbol = 'ZL' "
                     "AND matrix_source = ? ORDER BY date", [source]).fetchall()
    return {r[0]: r for r in rows}


def test_ratio_adjustment_changes_nothing_on_the_real_series_which_records_no_roll(home, tmp_path):
    """No recorded roll in the sample (canonical ZL is the Yahoo bridge, one series 'ZL'; Yahoo's own
    ZL=F rolls are not recorded): the ratio back-adjusted returns and targets are the raw ones bit for
    bit, and the raw ones are today's (recomputed independently in the indicator test above)."""
    shutil.copy(home / "warehouse.duckdb", tmp_path / "w.duckdb")
    with warehouse.open_warehouse(tmp_path / "w.duckdb") as c:
        assert c.execute("SELECT count(roll_from_symbol) FROM market_data.futures_continuous_1d").fetchall()[0][0] == 0
        raw = {s: _content(c, s) for s in ("canonical", "yahoo_historical")}
        reports = {s: build_features(c, None, s, roll_adjustment="ratio") for s in raw}
        adjusted = {s: _content(c, s) for s in raw}
        closes = [r[0] for r in c.execute("SELECT close FROM market_data.futures_continuous_1d WHERE root = 'ZL' "
                                          "ORDER BY date").fetchall()]
        back = build_features(c, ["ZL"], "canonical")  # and back to the default
        restored = _content(c, "canonical")
    for s in raw:
        assert reports[s].roll_adjustment == "ratio" and reports[s].rolls == {"ZL": {"recorded": 0, "unadjustable": 0}}
        assert {r[-1] for r in raw[s].values()} == {"none"} and {r[-1] for r in adjusted[s].values()} == {"ratio"}
        assert {d: r[:-1] for d, r in adjusted[s].items()} == {d: r[:-1] for d, r in raw[s].items()}
    assert back.roll_adjustment == "none" and restored == raw["canonical"]
    # the adjusted targets of the real canonical series, recomputed from its closes
    names = [n for _, n in flat_columns() if n not in ("batch_id", "created_at", "roll_adjustment")]
    rows = list(adjusted["canonical"].values())
    for i in (0, 500, len(rows) - 300, len(rows) - 1):
        got = dict(zip(names, rows[i]))
        for h, k in HORIZONS.items():
            want = closes[i + k] if i + k < len(closes) else None
            assert _close(got[f"fwd_close_{h}"], want)
            assert _close(got[f"target_{h}"], None if want is None else math.log(want / closes[i]))


def test_ratio_adjustment_has_no_look_ahead_and_never_lets_an_unadjustable_roll_in(home, tmp_path):
    """Rows after D are made rolls (a mutation, as in the other look-ahead tests); on some the new
    contract's prior close is missing (CRAFTED: rolls that must be rejected, not adjusted). Built with
    ratio: no feature up to D moves, targets up to D do (they cross the rolls by design), and across
    every unadjustable roll the returns and targets are NULL, with a warning: never a gap. (No health
    gate on these builds: the mutated rows are no data.)"""
    shutil.copy(home / "warehouse.duckdb", tmp_path / "w.duckdb")
    D = dt.date(2006, 3, 15)
    with warehouse.open_warehouse(tmp_path / "w.duckdb") as c:
        build_features(c, ["ZL"], "canonical", record_health=False, roll_adjustment="ratio")
        before = _snapshot(c, D)
        targets_before = c.execute("SELECT date, target_12m FROM features.daily_ml_matrix WHERE date <= ? "
                                   "AND matrix_source = 'canonical' ORDER BY date", [D]).fetchall()
        c.execute("UPDATE market_data.futures_continuous_1d SET source = 'databento', roll_from_symbol = 'ZLX9', "
                  "contract_prior_close = CASE WHEN day(date) % 7 = 0 THEN NULL ELSE close * 0.98 END "
                  "WHERE root = 'ZL' AND date > ?", [D])
        series = c.execute("SELECT date, contract_prior_close FROM market_data.futures_continuous_1d WHERE root = 'ZL' "
                           "ORDER BY date").fetchall()
        rep = build_features(c, ["ZL"], "canonical", record_health=False, roll_adjustment="ratio")
        after = _snapshot(c, D)
        targets_after = c.execute("SELECT date, target_12m FROM features.daily_ml_matrix WHERE date <= ? "
                                  "AND matrix_source = 'canonical' ORDER BY date", [D]).fetchall()
        m = {r[0]: r for r in c.execute("SELECT date, market_data.return_1d, market_data.return_5d, target_1w, "
                                        "fwd_close_1w FROM features.daily_ml_matrix WHERE matrix_source = 'canonical' "
                                        "ORDER BY date").fetchall()}
    dates = [d for d, _ in series]
    first_after = next(i for i, d in enumerate(dates) if d > D)
    # the first row after D follows a Yahoo row: a stitch, never a roll
    rolls = [i for i in range(first_after + 1, len(dates))]
    broken = [i for i in rolls if series[i][1] is None]
    assert rep.rolls == {"ZL": {"recorded": len(rolls), "unadjustable": len(broken)}} and len(broken) > 100
    assert after == before
    assert targets_after != targets_before
    for i in broken:
        assert m[dates[i]][1] is None  # return_1d across it
        assert all(m[dates[j]][2] is None for j in range(i, min(i + 5, len(dates))))  # return_5d spanning it
        assert all(m[dates[j]][3] is None and m[dates[j]][4] is None for j in range(max(i - 5, 0), i))  # target_1w
    assert any(w["field"] == "market_data.return_1d" and "not ratio-adjustable" in w["reason"] for w in rep.warnings)


def test_roll_adjustment_option_cli_and_setting(home, tmp_path, monkeypatch):
    shutil.copy(home / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    bad = runner.invoke(app, ["features", "build", "--roll-adjustment", "difference", "--home", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown roll adjustment" in bad.output
    monkeypatch.setenv("CBI_ROLL_ADJUSTMENT", "ratio")
    rep = _cli("features", "build", "--symbols", "ZL", "--home", str(tmp_path))
    assert rep["roll_adjustment"] == "ratio" and rep["rolls"] == {"ZL": {"recorded": 0, "unadjustable": 0}}
    rep = _cli("features", "build", "--symbols", "ZL", "--roll-adjustment", "none", "--home", str(tmp_path))
    assert rep["roll_adjustment"] == "none" and rep["rolls"] == {}
    with warehouse.open_warehouse(tmp_path / "warehouse.duckdb", read_only=True) as c:
        assert c.execute("SELECT DISTINCT roll_adjustment FROM features.daily_ml_matrix").fetchall() == [("none",)]


def test_training_reads_the_term_structure_fields_scale_free():
    from cbi_local.training.data import feature_spec

    direct, levels, excluded = feature_spec()
    assert {f"term_structure__{f}" for f in ("front_minus_second_rel", "front_days_to_expiry", "is_roll_day")} <= set(direct)
    assert "term_structure__front_minus_second" in excluded and "term_structure__second_symbol" in excluded
    assert not any(c.startswith("term_structure__") for c in levels)
