"""`cbi fetch plan` on real coverage: the real ES sample (one session, 2020-12-28) ingested, the plan is checked
against the CME calendar directly. No network: planning never talks to Databento."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
from typer.testing import CliRunner

from cbi_local import calendars, pipeline
from cbi_local.cli import app

START, END = dt.date(2020, 12, 22), dt.date(2020, 12, 31)


def _plan(home, sample_data, *args):
    r = CliRunner().invoke(app, ["fetch", "plan", "--home", str(home), "--json", "--start", START.isoformat(),
                                 "--end", END.isoformat(), "--universe",
                                 str(sample_data / "registry/universe/databento_universe.yaml"), *args])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_fetch_plan_fills_real_coverage_gaps(home, con, sample_data):
    glbx = sample_data / "databento" / "GLBX.MDP3"
    pipeline.ingest_paths(con, [glbx / "test_data.ohlcv-1h.dbn.zst", glbx / "test_data.ohlcv-1d.dbn.zst"])
    con.close()
    plan = _plan(home, sample_data, "--roots", "ES,ZL,ZS", "--schemas", "ohlcv-1h,ohlcv-1d")
    es = calendars.sessions("ES", START, END).to_pandas()
    held = es[es["session_date"] == dt.date(2020, 12, 28)].iloc[0]
    es_reqs = [q for q in plan["requests"] if q["roots"] == ["ES"]]
    # ES: the sessions before and after the one held, per schema; the held session is never requested again.
    assert plan["held_sessions"]["ES ohlcv-1h"] == plan["held_sessions"]["ES ohlcv-1d"] == 1
    for schema in ("ohlcv-1h", "ohlcv-1d"):
        mine = [q for q in es_reqs if q["schema"] == schema]
        assert sum(q["sessions"] for q in mine) == len(es) - 1
        assert [(q["first_session"], q["last_session"]) for q in mine] == [("2020-12-22", "2020-12-24"), ("2020-12-29", "2020-12-31")]
        for q in mine:
            w0, w1 = pd.Timestamp(q["start"]), pd.Timestamp(q["end"])
            assert w1 <= held["open_utc"] or w0 >= held["close_utc"]
    # ZL and ZS hold nothing and share the grain calendar: one request per schema with both parents.
    grains = [q for q in plan["requests"] if q["roots"] == ["ZL", "ZS"]]
    assert sorted(q["schema"] for q in grains) == ["ohlcv-1d", "ohlcv-1h"]
    zl = calendars.sessions("ZL", START, END).to_pandas()
    for q in grains:
        assert q["symbols"] == ["ZL.FUT", "ZS.FUT"] and q["stype_in"] == "parent" and q["dataset"] == "GLBX.MDP3"
        assert q["sessions"] == len(zl)
        assert pd.Timestamp(q["start"]) == zl["open_utc"].iloc[0] and pd.Timestamp(q["end"]) == zl["close_utc"].iloc[-1]


def test_fetch_help_and_unknown_root(home, sample_data):
    assert "plan" in CliRunner().invoke(app, ["fetch", "--help"]).output
    plan = _plan(home, sample_data, "--roots", "XX", "--schemas", "ohlcv-1d")
    assert plan["requests"] == [] and plan["skipped"] and plan["skipped"][0].startswith("XX")


def test_fetch_plan_nothing_held_is_requested_and_bad_schema_exits_2(home, con, sample_data):
    glbx = sample_data / "databento" / "GLBX.MDP3"
    pipeline.ingest_paths(con, [glbx / "test_data.ohlcv-1d.dbn.zst"])
    con.close()
    r = CliRunner().invoke(app, ["fetch", "plan", "--home", str(home), "--json", "--roots", "ES", "--schemas", "ohlcv-1d",
                                 "--start", "2020-12-28", "--end", "2020-12-28", "--universe",
                                 str(sample_data / "registry/universe/databento_universe.yaml")])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["requests"] == []  # the one session in range is held
    bad = CliRunner().invoke(app, ["fetch", "plan", "--home", str(home), "--schemas", "trades", "--universe",
                                   str(sample_data / "registry/universe/databento_universe.yaml")])
    assert bad.exit_code == 2 and "unsupported schema" in bad.output
