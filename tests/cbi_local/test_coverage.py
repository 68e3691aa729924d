"""Coverage on real data: the ES sample against the CME equity calendar, FRED series against FRED's own
calendars, and a removed day (real rows deleted) reported as a gap."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cbi_local import calendars, pipeline, warehouse
from cbi_local.cli import app
from cbi_local.continuous import build_continuous
from cbi_local.coverage import coverage



def _by(items, table_suffix: str, series: str):
    found = [c for c in items if c.table.endswith(table_suffix) and c.series == series]
    assert len(found) == 1, [(c.table, c.series) for c in items]
    return found[0]


def test_real_es_sample_one_session_and_its_missing_hours(con, sample_data):
    assert pipeline.ingest_paths(con, [sample_data / "databento" / "GLBX.MDP3"])["ok"]
    items = coverage(con, roots=["ES"], include_fred=False)
    # The session of trade date 2020-12-28 runs Sunday 23:00 UTC .. Monday 22:00 UTC (15:15-15:30 CT pause):
    # 23 hour buckets. The real 1h sample holds 4 bars (00:00-03:00 UTC).
    h = _by(items, "ohlcv_1h", "ES")
    assert (h.sessions_expected, h.sessions_present) == (1, 1)
    assert (h.hours_expected, h.hours_present, h.expected, h.present) == (23, 4, 23, 4)
    assert h.first == "2020-12-28 00:00:00" and h.last == "2020-12-28 03:00:00"
    assert h.gaps == [
        {"kind": "hours", "session_date": "2020-12-28", "start": "2020-12-27 23:00:00", "end": "2020-12-27 23:00:00", "count": 1},
        {"kind": "hours", "session_date": "2020-12-28", "start": "2020-12-28 04:00:00", "end": "2020-12-28 21:00:00", "count": 18},
    ]
    assert h.months == [{"month": "2020-12", "sessions_expected": 1, "sessions_present": 1, "hours_expected": 23,
                         "hours_present": 4, "completeness": round(4 / 23, 6)}]
    assert "CME_Equity" in h.calendar and h.outside == 0
    # 1m: four real minutes, all inside the 00:00 hour.
    m = _by(items, "ohlcv_1m", "ES")
    assert (m.hours_present, m.hours_expected, sum(g["count"] for g in m.gaps)) == (1, 23, 22)
    # 1d and the continuous series: one session expected, one present.
    d = _by(items, "ohlcv_1d", "ES")
    assert (d.expected, d.present, d.gaps, d.unit) == (1, 1, [], "sessions")
    c = _by(items, "futures_continuous_1d", "ES")
    assert (c.expected, c.present, c.first, c.last) == (1, 1, "2020-12-28", "2020-12-28")


def _fred_blank_count(path: Path) -> tuple[int, int]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return len(rows), sum(1 for r in rows if r["value"].strip() in ("", "."))


def test_real_fred_series_against_their_calendars(con, sample_data):
    assert pipeline.ingest_paths(con, [sample_data / "fred"])["ok"]
    items = {c.series: c for c in coverage(con, schemas=(), include_continuous=False)}
    # DGS10 (not in metadata.csv): daily, inferred; FRED's daily calendar is every weekday.
    dgs10 = items["DGS10"]
    n_rows, blanks = _fred_blank_count(sample_data / "fred" / "DGS10.csv")
    weekdays = int(np.busday_count(date.fromisoformat(dgs10.first), date.fromisoformat(dgs10.last), weekmask="1111100")) + 1
    assert (dgs10.schema, dgs10.frequency_source, dgs10.unit) == ("D", "inferred", "observations")
    assert dgs10.expected == weekdays == n_rows == dgs10.present
    assert dgs10.null_values == blanks > 0  # holidays: rows with FRED's blank, not gaps
    assert dgs10.gaps == [] and dgs10.outside == 0
    # CPIAUCSL: monthly per metadata.csv; expected = months from first to last.
    cpi = items["CPIAUCSL"]
    first, last = date.fromisoformat(cpi.first), date.fromisoformat(cpi.last)
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    assert (cpi.schema, cpi.frequency_source, cpi.expected, cpi.present) == ("M", "metadata", months, months)
    assert cpi.months[0] == {"month": "1980-01", "expected": 1, "present": 1, "completeness": 1.0}
    assert items["VIXCLS"].frequency_source == "metadata" and items["VIXCLS"].schema == "D"


def test_a_removed_fred_day_is_reported_as_a_gap(con, sample_data):
    assert pipeline.ingest_paths(con, [sample_data / "fred"])["ok"]
    before = coverage(con, schemas=(), include_continuous=False, series=["DGS10"])[0]
    # Delete the real observation of one weekday.
    con.execute("DELETE FROM raw_intelligence.fred_economic WHERE series_id = 'DGS10' AND date = DATE '2020-03-16'")
    after = coverage(con, schemas=(), include_continuous=False, series=["DGS10"])[0]
    assert after.expected == before.expected and after.present == before.present - 1
    assert after.gaps == [{"kind": "observations", "start": "2020-03-16", "end": "2020-03-16", "count": 1}]
    march = next(m for m in after.months if m["month"] == "2020-03")
    assert march["present"] == march["expected"] - 1 == 21


def test_yahoo_zl_bridge_against_the_cbot_calendar_and_a_removed_session(con, sample_data, load_yahoo_zl_bridge):
    load_yahoo_zl_bridge(con)
    build_continuous(con, ["ZL"])
    zl = _by(coverage(con, roots=["ZL"], schemas=(), include_fred=False), "futures_continuous_1d", "ZL")
    trade_dates = calendars.session_dates("ZL", zl.first, zl.last)
    rows = con.execute("SELECT COUNT(*) FROM market_data.futures_continuous_1d WHERE root = 'ZL'").fetchall()[0][0]
    assert (zl.expected, zl.present) == (len(trade_dates), rows)
    assert sum(g["count"] for g in zl.gaps) == len(trade_dates) - rows  # Yahoo's own missing days, reported
    assert date(2008, 7, 4).isoformat() not in {g["start"] for g in zl.gaps}  # a CBOT holiday is not expected
    # Remove one real session from the bridge: it appears as its own one-session gap.
    assert con.execute("SELECT COUNT(*) FROM market_data.futures_continuous_1d WHERE root = 'ZL' AND date = DATE '2008-06-16'").fetchall()[0][0] == 1
    con.execute("DELETE FROM market_data.futures_continuous_1d WHERE root = 'ZL' AND date = DATE '2008-06-16'")
    after = _by(coverage(con, roots=["ZL"], schemas=(), include_fred=False), "futures_continuous_1d", "ZL")
    assert after.present == zl.present - 1 and after.expected == zl.expected
    assert {"kind": "sessions", "start": "2008-06-16", "end": "2008-06-16", "count": 1} in after.gaps
    june = next(m for m in after.months if m["month"] == "2008-06")
    assert june["sessions_present"] == june["sessions_expected"] - 1


def test_cbi_coverage_cli(home, sample_data):
    with warehouse.open_warehouse(home / "warehouse.duckdb") as c:
        assert pipeline.ingest_paths(c, [sample_data / "databento" / "GLBX.MDP3", sample_data / "fred"])["ok"]
    runner = CliRunner()
    out = runner.invoke(app, ["coverage", "--home", str(home), "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    names = {(s["table"], s["series"]) for s in payload["series"]}
    assert ("market_data.databento_futures_ohlcv_1h", "ES") in names and ("raw_intelligence.fred_economic", "DGS10") in names
    es = next(s for s in payload["series"] if s["table"].endswith("ohlcv_1h"))
    assert (es["present"], es["expected"], es["missing"], es["gap_count"]) == (4, 23, 19, 2)
    text = runner.invoke(app, ["coverage", "--home", str(home), "--root", "ES", "--series", "DGS10"])
    assert text.exit_code == 0, text.output
    assert "2020-12-28 04:00:00..2020-12-28 21:00:00 (18 hours)" in text.output
