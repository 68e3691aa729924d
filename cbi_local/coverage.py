"""Coverage: what the warehouse holds against what the calendar says should exist.

Two families, each computed set-based in DuckDB (joins against calendar tables; Python only loops over
tables and over result rows to shape the report):

Bars (market_data.databento_futures_ohlcv_{1m,1h,1d}, per root; and the continuous series
market_data.futures_continuous_1d, per root). The unit is the root, not the outright symbol: a session is
present when any contract of the root has a bar in it (back months legitimately skip sessions).

* Expected sessions: `cbi_local.calendars.sessions(root, ...)` (the product's CME trade dates) between
  the series' first and last present session (a series is judged within its own span).
* Present sessions: bars assigned to trade dates with the calendars' as-of rule (a bar belongs to the
  first session whose `assign_until_utc` is after its start); the continuous series' `date` already is
  the trade date.
* 1h/1m: expected hours are the UTC hour buckets overlapping the session's trading intervals
  (`calendars.trading_intervals`: session minus its break, plus merged holiday sessions); an hour is
  present when at least one bar of the schema starts in it. Missing hours are reported only inside
  present sessions (a missing session is one gap, not 23 missing hours). Databento writes no bar for an
  interval without trades, so on thin markets an hour gap can be "no trade" rather than lost data.
* `outside`: present hour buckets (1h/1m) or bars (1d) that fall in no expected hour/session (e.g. a
  bar on a day the calendar says is closed) - reported, never silently ignored.
* Completeness: hours present / expected for 1h/1m, sessions present / expected for 1d and continuous;
  per month as well (`months`: the month-by-year heat map).

FRED (raw_intelligence.fred_economic, per series). Frequency: `frequency` from metadata.csv when the
series is listed, otherwise inferred from the median spacing of its observations (`frequency_source`
says which). Expected observations:

* D (daily): every weekday (Mon-Fri) between the first and last observation. This is FRED's own daily
  calendar: FRED publishes a row for every weekday and marks holidays with a blank value (e.g. DGS10
  1980-01-01), so a missing weekday ROW is a gap while a NULL value is FRED's "no observation" (counted
  in `null_values`, not a gap). An exchange calendar would be wrong here: H.15 rates follow the bond
  market, oil prices EIA, VIX CBOE.
* W: every 7 days from the first observation; M / Q / A: every month / quarter / year start.
A row on a weekend of a daily series counts in `outside`.

Gaps are runs of consecutive missing expected units: {"kind": "sessions", "start", "end", "count"} or
{"kind": "hours", "session_date", "start", "end", "count"} (bars), {"kind": "observations", ...} (FRED).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

import data_contracts as dc
from data_contracts.to_duckdb import literal, table_ref

from . import calendars

BAR_SCHEMAS = ("1m", "1h", "1d")
CONTINUOUS = dc.get("market_data.futures_continuous_1d")
FRED = dc.get("raw_intelligence.fred_economic")
_TEMPS = ("_cov_present", "_cov_sessions", "_cov_intervals", "_cov_span", "_cov_exp_sessions", "_cov_exp_hours",
          "_cov_fred", "_cov_fred_exp", "_cov_fred_present")


@dataclass
class SeriesCoverage:
    kind: str  # bars | continuous | fred
    table: str
    series: str  # root or FRED series_id
    schema: str  # 1m, 1h, 1d, continuous_1d, or the FRED frequency
    calendar: str
    first: str | None
    last: str | None
    unit: str  # what completeness counts: hours, sessions, observations
    expected: int
    present: int
    completeness: float | None
    sessions_expected: int | None = None
    sessions_present: int | None = None
    hours_expected: int | None = None
    hours_present: int | None = None
    outside: int = 0
    null_values: int | None = None
    frequency_source: str | None = None
    gaps: list[dict[str, Any]] = field(default_factory=list)
    months: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None

    @property
    def missing(self) -> int:
        return self.expected - self.present

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["missing"] = self.missing
        d["gap_count"] = len(self.gaps)
        return d


def _iso(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    return v.isoformat() if hasattr(v, "isoformat") else str(v)


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 6) if b else None


def _drop(con: duckdb.DuckDBPyConnection) -> None:
    for t in _TEMPS:
        con.execute(f"DROP TABLE IF EXISTS {t}")


def _register(con: duckdb.DuckDBPyConnection, name: str, arrow) -> None:
    con.register("_cov_arrow", arrow)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _cov_arrow")
    finally:
        con.unregister("_cov_arrow")


# --- bars ------------------------------------------------------------------------------------------


def _bar_coverage(con: duckdb.DuckDBPyConnection, fqn: str, schema: str, roots: list[str] | None) -> list[SeriesCoverage]:
    contract = dc.get(fqn)
    ref = table_ref(contract)
    continuous = contract is CONTINUOUS
    intraday = schema in ("1m", "1h")
    root_filter = ""
    if roots:
        root_filter = "WHERE root IN (" + ", ".join(map(literal, roots)) + ")"
    # 1. Present units: distinct hour buckets (1h/1m), bars (1d) or trade dates (continuous), one scan.
    if continuous:
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _cov_present AS
            SELECT root, CAST(date AS TIMESTAMP) AS bucket, CAST(date AS TIMESTAMP) AS first_ts, date AS session_date,
                   min(date) AS first_seen, max(date) AS last_seen
            FROM {ref} {root_filter} GROUP BY root, date""")
    else:
        bucket = "date_trunc('hour', timezone('UTC', ts_event))" if intraday else "timezone('UTC', ts_event)"
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _cov_present AS
            SELECT root, {bucket} AS bucket, min(timezone('UTC', ts_event)) AS first_ts,
                   CAST(NULL AS DATE) AS session_date,
                   min(timezone('UTC', ts_event)) AS first_seen, max(timezone('UTC', ts_event)) AS last_seen
            FROM {ref} {root_filter} GROUP BY root, {bucket}""")
    spans = con.execute(
        "SELECT root, min(first_ts), max(first_ts), min(first_seen), max(last_seen) FROM _cov_present GROUP BY root ORDER BY root"
    ).fetchall()
    out: list[SeriesCoverage] = []
    known = []
    for root, lo, hi, first, last in spans:
        try:
            calendars.product_group(root)
            known.append((root, lo, hi))
        except calendars.UnknownRoot as exc:
            n = con.execute("SELECT count(*) FROM _cov_present WHERE root = ?", [root]).fetchall()[0][0]
            out.append(SeriesCoverage("continuous" if continuous else "bars", fqn, root, schema, "none", _iso(first), _iso(last),
                                      "sessions", 0, 0, None, outside=n, problem=str(exc)))
    if not known:
        return out
    # 2. The calendar of every root over the span (one call per root, not per row).
    lo = min(k[1] for k in known) - dt.timedelta(days=1)
    hi = max(k[2] for k in known) + dt.timedelta(days=10)
    names = [k[0] for k in known]
    _register(con, "_cov_sessions", calendars.sessions(names, lo.date(), hi.date()))
    _register(con, "_cov_intervals", calendars.trading_intervals(names, lo.date(), hi.date()))
    con.execute("""CREATE OR REPLACE TEMP TABLE _cov_sessions AS
        SELECT root, session_date, timezone('UTC', open_utc) AS open_utc, timezone('UTC', close_utc) AS close_utc,
               timezone('UTC', assign_until_utc) AS assign_until FROM _cov_sessions""")
    # 3. Present units -> trade dates (as-of rule), then each root's span of sessions.
    if not continuous:
        con.execute("""CREATE OR REPLACE TEMP TABLE _cov_present AS
            SELECT p.root, p.bucket, p.first_ts, s.session_date, p.first_seen, p.last_seen
            FROM _cov_present p ASOF LEFT JOIN _cov_sessions s ON p.root = s.root AND p.first_ts < s.assign_until""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _cov_span AS
        SELECT p.root, min(p.session_date) AS first_session, max(p.session_date) AS last_session,
               min(p.first_seen) AS first_seen, max(p.last_seen) AS last_seen
        FROM _cov_present p JOIN _cov_sessions s USING (root, session_date) GROUP BY p.root""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _cov_exp_sessions AS
        SELECT s.root, s.session_date,
               row_number() OVER (PARTITION BY s.root ORDER BY s.session_date) AS rn,
               EXISTS (SELECT 1 FROM _cov_present p WHERE p.root = s.root AND p.session_date = s.session_date) AS present
        FROM _cov_sessions s JOIN _cov_span x ON s.root = x.root AND s.session_date BETWEEN x.first_session AND x.last_session""")
    if intraday:
        con.execute("""CREATE OR REPLACE TEMP TABLE _cov_exp_hours AS
            WITH h AS (
                SELECT DISTINCT i.root, i.session_date,
                       unnest(generate_series(date_trunc('hour', timezone('UTC', i.start_utc)),
                                              timezone('UTC', i.end_utc) - INTERVAL 1 MICROSECOND, INTERVAL 1 HOUR)) AS bucket
                FROM _cov_intervals i JOIN _cov_exp_sessions e USING (root, session_date)
            )
            SELECT h.root, h.session_date, h.bucket, e.present AS session_present,
                   p.bucket IS NOT NULL AS present,
                   row_number() OVER (PARTITION BY h.root, h.session_date ORDER BY h.bucket) AS rn
            FROM h JOIN _cov_exp_sessions e USING (root, session_date)
            LEFT JOIN (SELECT DISTINCT root, bucket FROM _cov_present) p ON p.root = h.root AND p.bucket = h.bucket""")
    # 4. Totals per root.
    if intraday:
        totals = con.execute("""
            SELECT x.root, x.first_seen, x.last_seen,
                   (SELECT count(*) FROM _cov_exp_sessions e WHERE e.root = x.root),
                   (SELECT count(*) FILTER (WHERE present) FROM _cov_exp_sessions e WHERE e.root = x.root),
                   (SELECT count(*) FROM _cov_exp_hours h WHERE h.root = x.root),
                   (SELECT count(*) FILTER (WHERE present) FROM _cov_exp_hours h WHERE h.root = x.root),
                   (SELECT count(*) FROM _cov_present p WHERE p.root = x.root
                      AND NOT EXISTS (SELECT 1 FROM _cov_exp_hours h WHERE h.root = p.root AND h.bucket = p.bucket))
            FROM _cov_span x ORDER BY x.root""").fetchall()
    else:
        totals = con.execute("""
            SELECT x.root, x.first_seen, x.last_seen,
                   (SELECT count(*) FROM _cov_exp_sessions e WHERE e.root = x.root),
                   (SELECT count(*) FILTER (WHERE present) FROM _cov_exp_sessions e WHERE e.root = x.root),
                   NULL, NULL,
                   (SELECT count(*) FROM _cov_present p WHERE p.root = x.root AND NOT EXISTS
                      (SELECT 1 FROM _cov_exp_sessions e WHERE e.root = p.root AND e.session_date = p.session_date))
            FROM _cov_span x ORDER BY x.root""").fetchall()
    # 5. Gaps: runs of consecutive missing sessions; runs of missing hours inside present sessions.
    gaps: dict[str, list[dict[str, Any]]] = {}
    for root, start, end, n in con.execute("""
            SELECT root, min(session_date), max(session_date), count(*) FROM (
                SELECT root, session_date, rn - row_number() OVER (PARTITION BY root ORDER BY session_date) AS grp
                FROM _cov_exp_sessions WHERE NOT present)
            GROUP BY root, grp ORDER BY root, 2""").fetchall():
        gaps.setdefault(root, []).append({"kind": "sessions", "start": _iso(start), "end": _iso(end), "count": n})
    if intraday:
        for root, day, start, end, n in con.execute("""
                SELECT root, session_date, min(bucket), max(bucket), count(*) FROM (
                    SELECT root, session_date, bucket,
                           rn - row_number() OVER (PARTITION BY root, session_date ORDER BY bucket) AS grp
                    FROM _cov_exp_hours WHERE session_present AND NOT present)
                GROUP BY root, session_date, grp ORDER BY root, 3""").fetchall():
            gaps.setdefault(root, []).append({"kind": "hours", "session_date": _iso(day), "start": _iso(start),
                                              "end": _iso(end), "count": n})
    # 6. Per month (the heat map).
    months: dict[str, list[dict[str, Any]]] = {}
    if intraday:
        month_rows = con.execute("""
            SELECT e.root, strftime(e.session_date, '%Y-%m') AS month, count(*) AS se, count(*) FILTER (WHERE e.present) AS sp,
                   coalesce(sum(h.he), 0), coalesce(sum(h.hp), 0)
            FROM _cov_exp_sessions e LEFT JOIN (
                SELECT root, session_date, count(*) AS he, count(*) FILTER (WHERE present) AS hp
                FROM _cov_exp_hours GROUP BY root, session_date) h USING (root, session_date)
            GROUP BY e.root, month ORDER BY e.root, month""").fetchall()
    else:
        month_rows = con.execute("""
            SELECT root, strftime(session_date, '%Y-%m') AS month, count(*), count(*) FILTER (WHERE present), NULL, NULL
            FROM _cov_exp_sessions GROUP BY root, month ORDER BY root, month""").fetchall()
    for root, month, se, sp, he, hp in month_rows:
        m: dict[str, Any] = {"month": month, "sessions_expected": se, "sessions_present": sp}
        if intraday:
            m.update(hours_expected=int(he), hours_present=int(hp), completeness=_ratio(int(hp), int(he)))
        else:
            m["completeness"] = _ratio(sp, se)
        months.setdefault(root, []).append(m)
    for root, first, last, se, sp, he, hp, outside in totals:
        group = calendars.product_group(root)
        expected, present = (he, hp) if intraday else (se, sp)
        out.append(SeriesCoverage(
            "continuous" if continuous else "bars", fqn, root, schema,
            f"{group.calendar} ({group.name}: {group.rule})", _iso(first), _iso(last),
            "hours" if intraday else "sessions", int(expected), int(present), _ratio(int(present), int(expected)),
            sessions_expected=se, sessions_present=sp, hours_expected=he, hours_present=hp, outside=int(outside),
            gaps=gaps.get(root, []), months=months.get(root, []),
        ))
    return sorted(out, key=lambda c: c.series)


# --- FRED ------------------------------------------------------------------------------------------

_STEP = {"D": "INTERVAL 1 DAY", "W": "INTERVAL 7 DAY", "M": "INTERVAL 1 MONTH", "Q": "INTERVAL 3 MONTH", "A": "INTERVAL 1 YEAR"}
_TRUNC = {"D": "day", "W": "day", "M": "month", "Q": "quarter", "A": "year"}
_CALENDAR = {
    "D": "weekdays Mon-Fri (FRED's daily calendar: holidays are rows with a blank value)",
    "W": "every 7 days from the first observation",
    "M": "month starts", "Q": "quarter starts", "A": "year starts",
}


def _fred_coverage(con: duckdb.DuckDBPyConnection, series: list[str] | None) -> list[SeriesCoverage]:
    ref = table_ref(FRED)
    where = ""
    if series:
        where = "WHERE series_id IN (" + ", ".join(map(literal, series)) + ")"
    # Frequency per series: declared (metadata.csv) or inferred from the median spacing.
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _cov_fred AS
        WITH d AS (
            SELECT series_id, date, value, frequency,
                   date - lag(date) OVER (PARTITION BY series_id ORDER BY date) AS step
            FROM {ref} {where}
        ), s AS (
            SELECT series_id, min(date) AS first, max(date) AS last, count(*) AS n, count(*) - count(value) AS nulls,
                   upper(left(any_value(frequency) FILTER (WHERE frequency IS NOT NULL), 1)) AS declared,
                   median(step) AS med
            FROM d GROUP BY series_id
        )
        SELECT *, coalesce(declared, CASE WHEN med IS NULL OR med <= 4 THEN 'D' WHEN med <= 10 THEN 'W'
                                           WHEN med <= 45 THEN 'M' WHEN med <= 120 THEN 'Q' ELSE 'A' END) AS freq,
               CASE WHEN declared IS NULL THEN 'inferred' ELSE 'metadata' END AS freq_source
        FROM s""")
    unknown = con.execute("SELECT series_id, freq FROM _cov_fred WHERE freq NOT IN ('D','W','M','Q','A')").fetchall()
    # Expected observation keys per series (generated, one row per expected unit).
    parts_exp, parts_present = [], []
    for f, step in _STEP.items():
        weekday = " AND isodow(k) <= 5" if f == "D" else ""
        parts_exp.append(f"""SELECT series_id, CAST(k AS DATE) AS k FROM (
                SELECT series_id, unnest(generate_series(CAST(date_trunc('{_TRUNC[f]}', first) AS TIMESTAMP),
                                                         CAST(last AS TIMESTAMP), {step})) AS k
                FROM _cov_fred WHERE freq = '{f}') WHERE true{weekday}""")
        parts_present.append(f"""SELECT f.series_id, CAST(date_trunc('{_TRUNC[f]}', d.date) AS DATE) AS k
                FROM {ref} d JOIN _cov_fred f ON d.series_id = f.series_id AND f.freq = '{f}'""")
    con.execute("CREATE OR REPLACE TEMP TABLE _cov_fred_present AS SELECT DISTINCT * FROM (" + " UNION ALL ".join(parts_present) + ")")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _cov_fred_exp AS
        SELECT e.series_id, e.k, p.k IS NOT NULL AS present,
               row_number() OVER (PARTITION BY e.series_id ORDER BY e.k) AS rn
        FROM ({" UNION ALL ".join(parts_exp)}) e LEFT JOIN _cov_fred_present p USING (series_id, k)""")
    totals = con.execute("""
        SELECT f.series_id, f.freq, f.freq_source, f.first, f.last, f.nulls,
               (SELECT count(*) FROM _cov_fred_exp e WHERE e.series_id = f.series_id),
               (SELECT count(*) FILTER (WHERE present) FROM _cov_fred_exp e WHERE e.series_id = f.series_id),
               (SELECT count(*) FROM _cov_fred_present p WHERE p.series_id = f.series_id AND NOT EXISTS
                   (SELECT 1 FROM _cov_fred_exp e WHERE e.series_id = p.series_id AND e.k = p.k))
        FROM _cov_fred f ORDER BY f.series_id""").fetchall()
    gaps: dict[str, list[dict[str, Any]]] = {}
    for sid, start, end, n in con.execute("""
            SELECT series_id, min(k), max(k), count(*) FROM (
                SELECT series_id, k, rn - row_number() OVER (PARTITION BY series_id ORDER BY k) AS grp
                FROM _cov_fred_exp WHERE NOT present)
            GROUP BY series_id, grp ORDER BY series_id, 2""").fetchall():
        gaps.setdefault(sid, []).append({"kind": "observations", "start": _iso(start), "end": _iso(end), "count": n})
    months: dict[str, list[dict[str, Any]]] = {}
    for sid, month, e, p in con.execute("""
            SELECT series_id, strftime(k, '%Y-%m') AS month, count(*), count(*) FILTER (WHERE present)
            FROM _cov_fred_exp GROUP BY series_id, month ORDER BY series_id, month""").fetchall():
        months.setdefault(sid, []).append({"month": month, "expected": e, "present": p, "completeness": _ratio(p, e)})
    out = []
    bad = dict(unknown)
    for sid, freq, src, first, last, nulls, expected, present, outside in totals:
        out.append(SeriesCoverage(
            "fred", FRED.fqn, sid, freq, _CALENDAR.get(freq, "unknown frequency"), _iso(first), _iso(last),
            "observations", int(expected), int(present), _ratio(int(present), int(expected)),
            outside=int(outside), null_values=int(nulls), frequency_source=src,
            gaps=gaps.get(sid, []), months=months.get(sid, []),
            problem=f"unknown frequency {bad[sid]!r}" if sid in bad else None,
        ))
    return out


# --- entry point -----------------------------------------------------------------------------------


def coverage(
    con: duckdb.DuckDBPyConnection, roots: list[str] | None = None, series: list[str] | None = None,
    schemas: tuple[str, ...] = BAR_SCHEMAS, include_continuous: bool = True, include_fred: bool = True,
) -> list[SeriesCoverage]:
    """Coverage of every root x bar schema (1m/1h/1d), the continuous series and every FRED series.
    `roots` / `series` restrict what is measured. Uses TEMP tables only (works on a read-only connection)."""
    out: list[SeriesCoverage] = []
    try:
        for schema in schemas:
            out += _bar_coverage(con, f"market_data.databento_futures_ohlcv_{schema}", schema, roots)
        if include_continuous:
            out += _bar_coverage(con, CONTINUOUS.fqn, "continuous_1d", roots)
        if include_fred:
            out += _fred_coverage(con, series)
    finally:
        _drop(con)
    return out


def report(items: list[SeriesCoverage]) -> dict[str, Any]:
    """JSON payload of `cbi coverage --json`."""
    return {
        "series": [c.as_dict() for c in items],
        "summary": {
            "series": len(items),
            "with_gaps": sum(bool(c.gaps) for c in items),
            "missing_units": sum(c.missing for c in items),
            "outside": sum(c.outside for c in items),
            "problems": [f"{c.table} {c.series}: {c.problem}" for c in items if c.problem],
        },
    }
