"""CME session calendars, checked against the real Databento ES sample where it speaks.

The real GLBX.MDP3 sample (ESH1, 2020-12-28) carries `status` records: trading starts
2020-12-27 23:00 UTC (Sunday 17:00 CT) and pauses 21:15-21:30 UTC (15:15-15:30 CT).
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest
import yaml

from cbi_local import calendars

UTC = dt.timezone.utc


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def dbn_df(sample_data: Path, schema: str) -> pd.DataFrame:
    import databento as db

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # databento's own pandas deprecation warnings
        df = db.DBNStore.from_file(sample_data / "databento" / "GLBX.MDP3" / f"test_data.{schema}.dbn.zst").to_df()
    return df.reset_index()


def session_row(root: str, day: str) -> dict:
    tbl = calendars.sessions(root, day, day).to_pylist()
    assert len(tbl) == 1, tbl
    return tbl[0]


def test_every_universe_root_has_a_calendar(sample_data):
    universe = yaml.safe_load((sample_data / "registry" / "universe" / "databento_universe.yaml").read_text())
    for entry in universe["roots"]:
        group = calendars.product_group(entry["root"])
        assert group.exchange.startswith("X")
    assert calendars.product_group("ZL").name == "grains"
    assert calendars.product_group("MES").name == "equity_index"
    assert calendars.product_group("CL").name == "energy"
    with pytest.raises(calendars.UnknownRoot):
        calendars.product_group("LE")


def test_es_session_matches_real_status_records(sample_data):
    status = dbn_df(sample_data, "status").sort_values("ts_event")
    trading = status[status.is_trading == "Y"].ts_event.tolist()
    paused = status[status.is_trading == "N"].ts_event.tolist()
    row = session_row("ES", "2020-12-28")
    assert row["open_utc"] == trading[0] == ts("2020-12-27 23:00")  # Sunday 17:00 CT
    assert row["break_start_utc"] == paused[0] == ts("2020-12-28 21:15")  # 15:15 CT pause (until 2021-06-25)
    assert row["break_end_utc"] == trading[1] == ts("2020-12-28 21:30")
    assert row["close_utc"] == ts("2020-12-28 22:00")  # 16:00 CT
    assert row["holiday_merged"] is False


def test_real_es_bars_belong_to_monday_session(sample_data):
    con = duckdb.connect()
    bars = pd.concat([dbn_df(sample_data, "ohlcv-1h"), dbn_df(sample_data, "ohlcv-1d")])
    bars["root"] = "ES"
    con.register("bars_df", bars[["root", "symbol", "rtype", "ts_event"]])
    con.execute("CREATE TABLE bars AS SELECT * FROM bars_df")
    rel = calendars.assign_session_dates(con, "bars").order("rtype, ts_event")
    rows = rel.select("root, symbol, rtype, timezone('UTC', ts_event), session_date, in_session").fetchall()
    cols = ["root", "symbol", "rtype", "ts_event", "session_date", "in_session"]
    got = [dict(zip(cols, r)) for r in rows]
    assert len(got) == 5
    # 2020-12-28 00:00 UTC is Sunday 18:00 in Chicago, yet it is Monday's trade date.
    assert pd.Timestamp("2020-12-28 00:00", tz="UTC").tz_convert("America/Chicago").strftime("%a %H:%M") == "Sun 18:00"
    assert {r["session_date"] for r in got} == {dt.date(2020, 12, 28)}
    assert all(r["in_session"] for r in got if r["rtype"] == 34)  # the 1h bars


def test_polars_join_asof_gives_the_same_dates(sample_data):
    bars = pl.from_pandas(dbn_df(sample_data, "ohlcv-1h")[["ts_event", "symbol", "close"]]).with_columns(
        root=pl.lit("ES"), ts_event=pl.col("ts_event").dt.cast_time_unit("us")
    )
    sess = pl.from_arrow(calendars.sessions("ES", "2020-12-20", "2021-01-10"))
    joined = bars.sort("ts_event").join_asof(
        sess.sort("assign_until_utc").select("root", "assign_until_utc", "session_date"),
        left_on="ts_event", right_on="assign_until_utc", by="root", strategy="forward", allow_exact_matches=False,
        check_sortedness=False,
    )
    assert joined["session_date"].to_list() == [dt.date(2020, 12, 28)] * 4


def test_grain_hours_break_and_dst():
    winter = session_row("ZL", "2021-01-19")  # day after MLK: grains closed Monday
    assert winter["open_utc"] == ts("2021-01-19 01:00")  # Monday 19:00 CST
    assert (winter["break_start_utc"], winter["break_end_utc"]) == (ts("2021-01-19 13:45"), ts("2021-01-19 14:30"))
    assert winter["close_utc"] == ts("2021-01-19 19:20")  # 13:20 CST
    assert winter["holiday_merged"] is False
    summer = session_row("ZS", "2021-07-14")
    assert summer["open_utc"] == ts("2021-07-14 00:00")  # 19:00 CDT
    assert summer["close_utc"] == ts("2021-07-14 18:20")
    pieces = calendars.trading_intervals("ZM", "2021-07-14", "2021-07-14").to_pylist()
    assert [(p["start_utc"], p["end_utc"]) for p in pieces] == [
        (ts("2021-07-14 00:00"), ts("2021-07-14 12:45")),
        (ts("2021-07-14 13:30"), ts("2021-07-14 18:20")),
    ]


def test_holiday_globex_session_belongs_to_next_trade_date():
    # MLK 2021-01-18: ES and CL trade an abbreviated Globex session; CME dates it Tuesday.
    for root in ("ES", "CL"):
        days = calendars.session_dates(root, "2021-01-14", "2021-01-20")
        assert days == [dt.date(2021, 1, 14), dt.date(2021, 1, 15), dt.date(2021, 1, 19), dt.date(2021, 1, 20)]
        tue = session_row(root, "2021-01-19")
        assert tue["open_utc"] == ts("2021-01-17 23:00")  # the Sunday open
        assert tue["holiday_merged"] is True
        pieces = calendars.trading_intervals(root, "2021-01-19", "2021-01-19").to_pylist()
        assert pieces[0]["start_utc"] == ts("2021-01-17 23:00")
        assert pieces[1]["start_utc"] == ts("2021-01-18 23:00")  # halt in between
    assert dt.date(2021, 1, 18) not in calendars.session_dates("ZL", "2021-01-14", "2021-01-20")


def test_group_specific_holidays_and_early_closes():
    assert dt.date(2020, 12, 24) in calendars.session_dates("ES", "2020-12-21", "2020-12-31")
    assert session_row("ES", "2020-12-24")["close_utc"] == ts("2020-12-24 18:00")  # early close
    assert session_row("ES", "2020-12-24")["break_start_utc"] is None
    for root in ("ES", "ZL", "CL"):
        days = calendars.session_dates(root, "2020-12-21", "2021-01-08")
        assert dt.date(2020, 12, 25) not in days and dt.date(2021, 1, 1) not in days
        assert dt.date(2023, 6, 19) not in calendars.session_dates(root, "2023-06-12", "2023-06-23")  # Juneteenth
    assert session_row("CL", "2020-12-28")["break_start_utc"] is None  # energy: no daily break


def test_bar_in_grace_window_after_early_close_stays_with_the_session():
    # The library closes ES at 12:00 CT on Black Friday; CME's real close is 12:15 CT, so the
    # 12:00 CT hour bar (18:00 UTC) must stay with Friday, not jump to Monday.
    fri = session_row("ES", "2020-11-27")
    assert fri["close_utc"] == ts("2020-11-27 18:00")
    assert fri["assign_until_utc"] == ts("2020-11-27 18:30")
    con = duckdb.connect()
    con.execute("CREATE TABLE b AS SELECT 'ES' AS root, TIMESTAMPTZ '2020-11-27 18:00:00+00' AS ts_event "
                "UNION ALL SELECT 'ES', TIMESTAMPTZ '2020-11-29 23:00:00+00'")
    got = calendars.assign_session_dates(con, "b").order("ts_event").select("session_date, in_session").fetchall()
    assert got == [(dt.date(2020, 11, 27), False), (dt.date(2020, 11, 30), True)]


def test_sessions_table_is_arrow_with_utc_timestamps():
    tbl = calendars.sessions(["ES", "ZL"], "2020-12-01", "2020-12-31")
    assert tbl.schema == calendars.SESSION_SCHEMA
    assert set(tbl.column("root").to_pylist()) == {"ES", "ZL"}
    iv = calendars.trading_intervals(["ES"], "2020-12-01", "2020-12-31")
    assert iv.schema == calendars.INTERVAL_SCHEMA
