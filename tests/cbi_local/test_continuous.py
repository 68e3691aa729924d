"""market_data.futures_continuous_1d built from real Databento ES bars and real Yahoo ZL rows.

Real data: the GLBX.MDP3 ESH1 sample (2020-12-28: one ohlcv-1d bar, the first four ohlcv-1h
bars) and the legacy soybean_oil_prices export (Yahoo ZL, 2000-11 .. 2025-11). No real sample
holds two contracts of one root, so the volume roll (and the 1h-verification branch) is covered
only by `test_volume_roll_logic_on_crafted_rows`, whose rows are CRAFTED, marked as such in
their source_file, and test logic only: they are never accepted data. The next-contract and
prior-close columns are tested on the real one-contract samples only (NULL next contract, prior
close within the one series); their two-contract values have no real sample to test on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from pathlib import Path

import pandas as pd
import pytest

import data_contracts as dc
from cbi_local import calendars, continuous
from data_contracts import to_duckdb

CONT = dc.get("market_data.futures_continuous_1d")
CRAFTED = "CRAFTED unit-test rows: logic only, never data"
ES_1D = dict(open=3702.75, high=3735.0, low=3697.25, close=3735.0, volume=718174)  # the real ohlcv-1d bar


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dbn(path: Path) -> pd.DataFrame:
    import databento as db

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # databento's own pandas deprecation warnings
        return db.DBNStore.from_file(path).to_df().reset_index()


def load_es_bars(con, sample_data: Path, interval: str) -> None:
    """Minimal INSERT of a real DBN bar file (no Databento ingest exists yet)."""
    glbx = sample_data / "databento" / "GLBX.MDP3"
    root = _dbn(glbx / "test_data.definition.dbn.zst")["asset"].iloc[0]  # 'ES', from the real definition
    path = glbx / f"test_data.ohlcv-{interval}.dbn.zst"
    df = _dbn(path)[["ts_event", "symbol", "instrument_id", "publisher_id", "open", "high", "low", "close", "volume"]]
    contract = dc.get(f"market_data.databento_futures_ohlcv_{interval}")
    con.register("dbn_df", df)
    con.execute(
        f"INSERT INTO {to_duckdb.table_ref(contract)} (ts_event, symbol, root, instrument_id, publisher_id, open, high, "
        "low, close, volume, source, source_file, file_sha256, batch_id, ingested_at) "
        "SELECT ts_event, symbol, $root, instrument_id, publisher_id, open, high, low, close, volume, 'databento', "
        "$path, $sha, 'test-load', now() FROM dbn_df",
        {"root": root, "path": str(path), "sha": _sha(path)},
    )
    con.unregister("dbn_df")


def load_yahoo_zl(con, sample_data: Path) -> Path:
    """Minimal INSERT of the real legacy Yahoo ZL rows (daily rows; one per date)."""
    path = sample_data / "legacy_bq" / "forecasting_data_warehouse.soybean_oil_prices.parquet"
    con.execute(
        "INSERT INTO market_data.yahoo_historical (date, symbol, source_symbol, open, high, low, close, volume, "
        "source_name, legacy_table, source, source_file, file_sha256, batch_id, ingested_at) "
        "SELECT CAST(time AS DATE), symbol, symbol, open, high, low, close, volume, source_name, "
        "'forecasting_data_warehouse.soybean_oil_prices', 'yahoo', $path, $sha, 'test-load', now() "
        "FROM read_parquet($path) WHERE time = date_trunc('day', time) "
        "QUALIFY row_number() OVER (PARTITION BY CAST(time AS DATE) "
        "ORDER BY source_name = 'yahoo_realtime_emergency_nov5', source_name) = 1",
        {"path": str(path), "sha": _sha(path)},
    )
    return path


def rows(con, where: str = "TRUE") -> list[dict]:
    cols = [c for c in CONT.column_names if c != "ingested_at"]
    rel = con.sql(f"SELECT {', '.join(cols)}, epoch_us(ingested_at) AS ingested_us FROM {to_duckdb.table_ref(CONT)} "
                  f"WHERE {where} ORDER BY root, date")
    return [dict(zip(rel.columns, r)) for r in rel.fetchall()]


def test_es_row_is_the_real_1d_bar_on_its_session_date(con, sample_data):
    load_es_bars(con, sample_data, "1h")
    load_es_bars(con, sample_data, "1d")
    report = continuous.build_continuous(con, ["ES"], batch_id="b-1")
    [row] = rows(con)
    assert row["date"] == dt.date(2020, 12, 28) and row["root"] == "ES" and row["symbol"] == "ESH1"
    assert {k: row[k] for k in ES_1D} == ES_1D
    assert row["source"] == "databento" and row["batch_id"] == "b-1" and row["roll_from_symbol"] is None
    assert row["source_file"].endswith("test_data.ohlcv-1d.dbn.zst")
    # The 1h sample covers 4 of the UTC day's hours (45,690 of 718,174 contracts): it cannot be
    # verified against the 1d bar, so the 1d bar is used.
    assert report.basis == {"ES": {"1d": 1}}
    assert report.rows == {"ES": {"databento": 1}} and report.rolls == [] and report.stitches == []
    assert report.inserted == 1 and report.deleted == 0


def test_es_1h_aggregate_compares_with_the_1d_bar_where_comparable(con, sample_data):
    load_es_bars(con, sample_data, "1h")
    report = continuous.build_continuous(con, ["ES"])
    [agg] = rows(con)
    # Aggregate of the four real 1h bars (00:00-04:00 UTC) assigned to trade date 2020-12-28.
    assert agg["date"] == dt.date(2020, 12, 28)
    assert (agg["open"], agg["high"], agg["low"], agg["close"], agg["volume"]) == (3702.75, 3719.75, 3697.25, 3717.75, 45690)
    assert report.basis == {"ES": {"1h_unverified": 1}}
    assert agg["batch_id"] is None and agg["source_file"].endswith("test_data.ohlcv-1h.dbn.zst")
    # Comparable with the real 1d bar: the same first trade; a sub-range of its high/low/volume.
    # The close is not comparable (the 1h sample stops at 04:00 UTC).
    assert agg["open"] == ES_1D["open"]
    assert agg["high"] <= ES_1D["high"] and agg["low"] >= ES_1D["low"] and agg["volume"] <= ES_1D["volume"]


def test_zl_yahoo_bridge_covers_only_before_databento(con, sample_data):
    path = load_yahoo_zl(con, sample_data)
    after = con.sql("SELECT COUNT(*) FROM market_data.yahoo_historical WHERE date >= DATE '2010-06-06'").fetchall()[0][0]
    assert after > 2000  # Yahoo has ZL rows after the cutoff: none may enter
    report = continuous.build_continuous(con, ["ZL"], batch_id="b-zl")
    got = rows(con)
    assert {r["source"] for r in got} == {"yahoo"} and {r["symbol"] for r in got} == {"ZL"}
    assert got[0]["date"] == dt.date(2000, 11, 13)
    assert got[-1]["date"] == dt.date(2010, 6, 4) <= dt.date(2010, 6, 5)
    assert all(r["source_file"] == str(path) for r in got)
    [stitch] = report.stitches
    assert (stitch.first_date, stitch.last_date, stitch.rows) == (dt.date(2000, 11, 13), dt.date(2010, 6, 4), len(got))
    # Real Yahoo rows on days CME was closed (Thanksgiving, the 2004-06-11 day of mourning) are not trade dates.
    assert stitch.off_calendar_dates == [dt.date(2004, 6, 11), dt.date(2005, 11, 24), dt.date(2006, 11, 23)]
    yahoo_days = con.sql("SELECT COUNT(*) FROM market_data.yahoo_historical WHERE date < DATE '2010-06-06'").fetchall()[0][0]
    assert len(got) == yahoo_days - 3
    assert set(calendars.session_dates("ZL", "2000-11-13", "2010-06-04")) >= {r["date"] for r in got}
    # Closes are Yahoo's; open/high/low are withheld only where Yahoo's close lies outside [low, high].
    same_close = con.sql(
        "SELECT COUNT(*) FROM market_data.futures_continuous_1d c JOIN market_data.yahoo_historical y "
        "ON y.symbol = c.root AND y.date = c.date WHERE c.close = y.close AND c.volume IS NOT DISTINCT FROM y.volume"
    ).fetchall()[0][0]
    assert same_close == len(got)
    withheld = [r for r in got if r["open"] is None]
    assert len(withheld) == stitch.ohlc_withheld > 0
    assert all(r["high"] is None and r["low"] is None for r in withheld)
    sane = [r for r in got if r["open"] is not None]
    assert all(0 < r["low"] <= min(r["open"], r["close"]) <= max(r["open"], r["close"]) <= r["high"] for r in sane)


def test_default_build_covers_every_root_and_es_never_gets_yahoo(con, sample_data):
    load_es_bars(con, sample_data, "1d")
    load_yahoo_zl(con, sample_data)
    report = continuous.build_continuous(con)
    assert report.roots == ["ES", "ZL"] and report.skipped_roots == []
    assert report.rows["ES"] == {"databento": 1}
    assert set(report.rows["ZL"]) == {"yahoo"}
    assert con.sql("SELECT COUNT(*) FROM market_data.futures_continuous_1d WHERE source = 'yahoo' "
                   "AND (root <> 'ZL' OR date >= DATE '2010-06-06')").fetchall()[0][0] == 0


def test_rebuild_twice_gives_identical_table(con, sample_data):
    load_es_bars(con, sample_data, "1h")
    load_es_bars(con, sample_data, "1d")
    load_yahoo_zl(con, sample_data)
    first = continuous.build_continuous(con, batch_id="b-1")
    before = rows(con)
    second = continuous.build_continuous(con, batch_id="b-2")
    assert rows(con) == before  # ingested_at and batch_id included
    assert (second.inserted, second.deleted, second.unchanged) == (0, 0, first.inserted)
    assert not second.changed


def test_rebuild_replaces_only_the_requested_roots(con, sample_data):
    load_es_bars(con, sample_data, "1h")
    load_es_bars(con, sample_data, "1d")
    load_yahoo_zl(con, sample_data)
    continuous.build_continuous(con, batch_id="b-1")
    zl_before = rows(con, "root = 'ZL'")
    con.execute("DELETE FROM market_data.databento_futures_ohlcv_1d")  # the ES input changes
    report = continuous.build_continuous(con, ["ES"], batch_id="b-2")
    assert (report.inserted, report.deleted) == (1, 1)
    [es] = rows(con, "root = 'ES'")
    assert (es["close"], es["volume"], es["batch_id"]) == (3717.75, 45690, "b-2")
    assert rows(con, "root = 'ZL'") == zl_before


def test_unknown_root_is_refused(con):
    with pytest.raises(calendars.UnknownRoot):
        continuous.build_continuous(con, ["LE"])


def _crafted_bar(interval: str, ts: str, symbol: str, o: float, h: float, lo: float, c: float, v: int) -> tuple:
    root = symbol[:-2]
    return (interval, ts, symbol, root, o, h, lo, c, v)


def test_volume_roll_logic_on_crafted_rows(con, sample_data):
    """CRAFTED rows (logic only, not data): volume roll, no roll-back, tie rule, 1h verification,
    Databento precedence over Yahoo and the stitch marker. Real Yahoo ZL rows are used as is."""
    bars = [
        # ES, week of 2021-03-08 (CST). Volumes: H leads Mon-Tue, M leads Wed, H leads Thu (no roll back).
        _crafted_bar("1d", "2021-03-07 00:00", "ESH1", 99.5, 100, 99, 99.75, 10),  # Sunday 23:00 UTC hour
        _crafted_bar("1d", "2021-03-08 00:00", "ESH1", 100, 102, 98, 101, 990),
        _crafted_bar("1d", "2021-03-09 00:00", "ESH1", 101, 103, 100, 102, 900),
        _crafted_bar("1d", "2021-03-10 00:00", "ESH1", 102, 104, 101, 103, 400),
        _crafted_bar("1d", "2021-03-11 00:00", "ESH1", 103, 105, 102, 104, 700),
        _crafted_bar("1d", "2021-03-12 00:00", "ESH1", 104, 106, 103, 105, 100),
        *(_crafted_bar("1d", f"2021-03-{d:02d} 00:00", "ESM1", 100, 101, 99, 100, v)
          for d, v in ((8, 200), (9, 500), (10, 800), (11, 600), (12, 900))),
        *(_crafted_bar("1d", f"2021-03-{d:02d} 00:00", "ESU1", 100, 101, 99, 100, 5) for d in range(8, 13)),
        # 1h bars covering every hour of UTC 2021-03-07 and 03-08 for ESH1 (volumes match the 1d bars).
        _crafted_bar("1h", "2021-03-07 23:00", "ESH1", 99.5, 100, 99, 99.75, 10),
        _crafted_bar("1h", "2021-03-08 00:00", "ESH1", 99.75, 101, 99.25, 100.5, 600),
        _crafted_bar("1h", "2021-03-08 01:00", "ESH1", 100.5, 102, 98, 100.75, 390),
        # An incomplete hour for 03-09: must not be used (1d bar instead).
        _crafted_bar("1h", "2021-03-09 00:00", "ESH1", 101, 101.5, 100.5, 101.25, 50),
        # MES tie on 2021-03-08: equal volumes, the nearer expiry wins.
        _crafted_bar("1d", "2021-03-08 00:00", "MESH1", 100, 101, 99, 100, 300),
        _crafted_bar("1d", "2021-03-08 00:00", "MESM1", 100, 101, 99, 100, 300),
        # ZL: a Databento bar on a Yahoo date (precedence) and the first GLBX sessions.
        _crafted_bar("1d", "2010-06-03 00:00", "ZLN0", 37.5, 37.9, 37.3, 37.6, 1000),
        _crafted_bar("1d", "2010-06-07 00:00", "ZLN0", 36.8, 37.0, 36.4, 36.5, 1000),
        _crafted_bar("1d", "2010-06-08 00:00", "ZLN0", 36.5, 36.8, 36.4, 36.7, 1000),
    ]
    for interval in ("1h", "1d"):
        contract = dc.get(f"market_data.databento_futures_ohlcv_{interval}")
        for _, ts, symbol, root, o, h, lo, c, v in (b for b in bars if b[0] == interval):
            con.execute(
                f"INSERT INTO {to_duckdb.table_ref(contract)} (ts_event, symbol, root, open, high, low, close, volume, "
                "source, source_file, batch_id) VALUES (CAST($ts || '+00' AS TIMESTAMPTZ), $s, $r, $o, $h, $l, $c, $v, "
                "'databento', $f, 'crafted')",
                {"ts": ts, "s": symbol, "r": root, "o": o, "h": h, "l": lo, "c": c, "v": v, "f": CRAFTED},
            )
    load_yahoo_zl(con, sample_data)
    report = continuous.build_continuous(con, ["ES", "MES", "ZL"])

    es = {r["date"]: r for r in rows(con, "root = 'ES'")}
    assert [es[dt.date(2021, 3, d)]["symbol"] for d in range(8, 13)] == ["ESH1", "ESH1", "ESM1", "ESM1", "ESM1"]
    assert [es[dt.date(2021, 3, d)]["roll_from_symbol"] for d in range(8, 13)] == [None, None, "ESH1", None, None]
    # 03-08: every UTC hour present -> the 1h aggregate (close 100.75), not the 1d bars (close 101).
    mon = es[dt.date(2021, 3, 8)]
    assert (mon["open"], mon["high"], mon["low"], mon["close"], mon["volume"]) == (99.5, 102, 98, 100.75, 1000)
    assert es[dt.date(2021, 3, 9)]["close"] == 102  # incomplete 1h -> the 1d bar
    assert report.basis["ES"] == {"1h_verified": 1, "1d": 4}  # basis of the front rows written
    assert rows(con, "root = 'MES'")[0]["symbol"] == "MESH1"

    zl = {r["date"]: r for r in rows(con, "root = 'ZL'")}
    assert zl[dt.date(2010, 6, 3)]["source"] == "databento"  # Databento wins on a shared date
    assert zl[dt.date(2010, 6, 4)]["source"] == "yahoo"
    assert zl[dt.date(2010, 6, 7)]["roll_from_symbol"] == "ZL"
    assert max(d for d, r in zl.items() if r["source"] == "yahoo") == dt.date(2010, 6, 4)
    assert [(e.root, e.date, e.from_symbol, e.to_symbol, e.kind) for e in report.rolls] == [
        ("ES", dt.date(2021, 3, 10), "ESH1", "ESM1", "roll"),
        ("ZL", dt.date(2010, 6, 3), "ZL", "ZLN0", "stitch"),
        ("ZL", dt.date(2010, 6, 4), "ZLN0", "ZL", "stitch"),
        ("ZL", dt.date(2010, 6, 7), "ZL", "ZLN0", "stitch"),
    ]
    assert "ES 2021-03-10 roll: ESH1 -> ESM1" in report.roll_log()


def test_failed_build_leaves_the_table_as_it_was(con, sample_data, monkeypatch):
    load_es_bars(con, sample_data, "1d")
    continuous.build_continuous(con, ["ES"], batch_id="b-1")
    before = rows(con)
    con.execute("DELETE FROM market_data.databento_futures_ohlcv_1d")
    monkeypatch.setattr(continuous, "_fill_report", lambda *_: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):  # fails after its DELETE/INSERT, before COMMIT
        continuous.build_continuous(con, ["ES"], batch_id="b-2")
    assert rows(con) == before
    assert con.sql("SELECT COUNT(*) FROM duckdb_tables() WHERE temporary").fetchall()[0][0] == 0


def test_next_contract_and_prior_close_on_the_real_samples(con, sample_data):
    """next_symbol/next_close need a second outright trading the same session: the real samples have
    none (ESH1 alone in the GLBX files, counted here from the raw records; Yahoo ZL is one series),
    so they are NULL. contract_prior_close is the previous close within one contract: on the real ZL
    rows, the previous Yahoo close (recomputed from market_data.yahoo_historical)."""
    glbx = sample_data / "databento" / "GLBX.MDP3"
    outrights: dict[dt.date, set[str]] = {}
    for interval in ("1h", "1d"):
        df = _dbn(glbx / f"test_data.ohlcv-{interval}.dbn.zst")
        for ts, sym in zip(df["ts_event"], df["symbol"]):
            outrights.setdefault(ts.date(), set()).add(sym)
    assert outrights == {dt.date(2020, 12, 28): {"ESH1"}}
    load_es_bars(con, sample_data, "1h")
    load_es_bars(con, sample_data, "1d")
    load_yahoo_zl(con, sample_data)
    continuous.build_continuous(con)
    got = rows(con)
    assert all(r["next_symbol"] is None and r["next_close"] is None for r in got)
    [es] = [r for r in got if r["root"] == "ES"]
    assert es["contract_prior_close"] is None  # the series' first row
    zl = [r for r in got if r["root"] == "ZL"]
    yahoo = dict(con.execute("SELECT date, close FROM market_data.yahoo_historical WHERE symbol = 'ZL'").fetchall())
    dates = sorted(d for d in yahoo if d in {r["date"] for r in zl})
    assert [r["date"] for r in zl] == dates and zl[0]["contract_prior_close"] is None
    assert [r["contract_prior_close"] for r in zl[1:]] == [yahoo[d] for d in dates[:-1]]
