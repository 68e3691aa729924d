"""Build market_data.futures_continuous_1d: one front-month daily bar per (root, CME trade date).

Daily bar per outright contract and trade date (`date` is the CME trade date from
`cbi_local.calendars`, never the UTC date):

* Databento's ``ohlcv-1d`` bars are UTC-day bars: "daily interval based on the UTC date"
  (databento_dbn `Schema.OHLCV_1D`; the session-based bar is a separate schema, ``ohlcv-eod``).
  For grains (19:00-13:20 CT) 00:00 UTC (18:00 CST / 19:00 CDT) falls in the no-trade gap, so
  a UTC-day bar *is* the session (with today's 19:00 open; CBOT's earlier pre-2013 evening
  opens could put a session's first summer hour in the previous UTC day). For ES/MES/CL
  (17:00-16:00 CT) 00:00 UTC is 18:00/19:00 CT, inside the next session: a UTC-day bar misses
  the session's first 1-2 evening hours and carries the next session's first 1-2 hours (its
  close is the last trade before 00:00 UTC, not the 16:00 close).
* So the preferred bar is the aggregate of ``ohlcv-1h`` bars by trade date (open = first,
  high = max, low = min, close = last, volume = sum; exact, because every CME open/close is on
  an hour boundary or inside the hour bar that ends the session), used only when the 1h bars
  are complete: for every UTC date the session touches and that has a 1d bar, the 1h volume
  of that UTC date equals the 1d volume ('1h_verified'). With no 1d bar to check against the
  1h aggregate is used as is ('1h_unverified'); otherwise the 1d bars mapped to the trade date
  (same as-of rule as 1h bars; several UTC-day bars, e.g. Sunday's and Monday's, are
  aggregated the same way) are used ('1d'). Counts per basis are in the report.

Front month (volume roll): per (root, date) the outright with the highest volume (ties: the
nearer expiry). The series never rolls back: a contract expiring before the latest contract
that was ever the volume leader is not chosen while a later one traded that day. Expiry
order comes from the symbol (root + CME month code + 1- or 2-digit year; a 1-digit year is
the first such year on or after the trade date's year). `roll_from_symbol` is set on each
roll date to the previous row's symbol.

Beside the front, from the same per-contract daily bars (set-based, no extra read):
* ``next_symbol`` / ``next_close``: the outright with the nearest expiry after the row's contract
  that has a daily bar that date, and its close (the term structure's second contract; features
  ``term_structure``). Closes are compared only within one kind of bar: a UTC-day bar ('1d') and a
  session aggregate ('1h_*') end at different instants on ES/CL, so next_close is NULL when the
  second's bar is of the other kind.
* ``contract_prior_close``: the row contract's close on the previous row's session: the previous
  close, except on a roll date, where it is the new contract's close the session before it became
  the front (a bar of the previous row's kind; NULL without one, and at a Yahoo/Databento stitch).
  ``close / contract_prior_close`` is then a return within one contract on every row, and
  ``contract_prior_close / previous close`` the new/old ratio a ratio back-adjustment uses.

Yahoo stitch: rows of market_data.yahoo_historical whose symbol is a requested root and that
satisfy the contract's YAHOO_ZL_BRIDGE `only_where` (root = 'ZL' AND date < 2010-06-06,
Databento GLBX starts 2010-06-06) enter with source='yahoo' and symbol 'ZL', only on dates
without a Databento row and only on CME trade dates of the root's calendar (real Yahoo ZL has
rows on Thanksgiving 2005/2006 and the 2004-06-11 day of mourning: not stitched, listed in the
report). Yahoo ZL's close behaves like the settlement while O/H/L come from trades: on thin
days (651 of the 2,348 real rows before 2010-06-06) the close lies outside [low, high]. Such
rows would break the table's blocking ohlc_sane rule, so their open/high/low are written NULL
(the close, the series' value, is kept) and counted in the report. The first Databento row
after the stitch carries roll_from_symbol = 'ZL' (logged as kind 'stitch').

Lineage: source 'databento' or 'yahoo'; batch_id as given (NULL if none); ingested_at = time
of the build that first wrote the row's current content. source_file/file_sha256: the one
input file all contributing bars came from (always true for a Yahoo row; for a 1d-based row
from one download file), NULL when several files contributed (1h aggregates spanning per-day
files).

Rebuild: the requested roots' rows are recomputed set-based in DuckDB and applied in one
transaction as a diff on (root, date): rows whose content is unchanged are left untouched
(batch_id/ingested_at kept), changed or vanished rows are deleted, new ones inserted. A
second build with the same inputs changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field

import duckdb

import data_contracts as dc
from data_contracts import to_duckdb

from . import calendars
from .warehouse import transaction

BARS_1H = dc.get("market_data.databento_futures_ohlcv_1h")
BARS_1D = dc.get("market_data.databento_futures_ohlcv_1d")
CONTINUOUS = dc.get("market_data.futures_continuous_1d")
YAHOO = dc.get("market_data.yahoo_historical")
_BRIDGE = next(s for s in CONTINUOUS.sources if s.name == "yahoo" and s.only_where)
_LINEAGE_REFRESH = ("batch_id", "ingested_at")  # not part of a row's content
_SESSIONS = "_cbi_cont_sessions"
_TEMPS = ("_cbi_cont_y", "_cbi_cont_h", "_cbi_cont_d", "_cbi_cont_daily", "_cbi_cont_front", "_cbi_cont_next",
          "_cbi_cont_new", _SESSIONS)


@dataclass(frozen=True)
class RollEvent:
    root: str
    date: dt.date
    from_symbol: str
    to_symbol: str
    kind: str  # 'roll' (contract change) or 'stitch' (source change, Yahoo <-> Databento)


@dataclass(frozen=True)
class Stitch:
    root: str
    first_date: dt.date
    last_date: dt.date
    rows: int
    ohlc_withheld: int  # rows whose open/high/low were written NULL (close outside [low, high])
    off_calendar_dates: list[dt.date]  # Yahoo rows on a date that is no CME trade date: not stitched
    sessions_without_row: int  # trade dates inside [first_date, last_date] Yahoo has no row for


@dataclass
class ContinuousReport:
    roots: list[str]
    batch_id: str | None
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # root -> source -> rows
    basis: dict[str, dict[str, int]] = field(default_factory=dict)  # root -> 1h_verified/1h_unverified/1d -> rows
    rolls: list[RollEvent] = field(default_factory=list)
    stitches: list[Stitch] = field(default_factory=list)
    inserted: int = 0
    deleted: int = 0
    unchanged: int = 0
    bars_outside_session: dict[str, int] = field(default_factory=dict)  # 1h bars starting outside [open, close)
    bars_unassigned: dict[str, int] = field(default_factory=dict)  # bars after the last known session
    skipped_roots: list[str] = field(default_factory=list)  # roots in the data without a calendar

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.deleted)

    def as_dict(self) -> dict:
        d = asdict(self)
        for key in ("rolls", "stitches"):
            for item in d[key]:
                for k, v in item.items():
                    if isinstance(v, dt.date):
                        item[k] = v.isoformat()
                    elif isinstance(v, list):
                        item[k] = [x.isoformat() for x in v]
        return d

    def roll_log(self) -> list[str]:
        return [f"{r.root} {r.date.isoformat()} {r.kind}: {r.from_symbol} -> {r.to_symbol}" for r in self.rolls]

    def summary(self) -> str:
        lines = [f"futures_continuous_1d: +{self.inserted} -{self.deleted} ={self.unchanged} (batch {self.batch_id})"]
        for root in self.roots:
            by_source = ", ".join(f"{s} {n}" for s, n in sorted(self.rows.get(root, {}).items())) or "no rows"
            basis = ", ".join(f"{b} {n}" for b, n in sorted(self.basis.get(root, {}).items()))
            lines.append(f"  {root}: {by_source}" + (f" (daily bars from {basis})" if basis else ""))
        for s in self.stitches:
            lines.append(f"  {s.root}: yahoo stitch {s.first_date} .. {s.last_date}, {s.rows} rows, "
                         f"{s.ohlc_withheld} with open/high/low withheld, {s.sessions_without_row} trade dates "
                         f"without a row, {len(s.off_calendar_dates)} off-calendar rows not stitched "
                         f"({', '.join(d.isoformat() for d in s.off_calendar_dates)})")
        lines += ["  " + line for line in self.roll_log()]
        if self.skipped_roots:
            lines.append(f"  skipped (no calendar): {', '.join(self.skipped_roots)}")
        return "\n".join(lines)


def _ref(contract: dc.Contract) -> str:
    return to_duckdb.table_ref(contract)


def _resolve_roots(con: duckdb.DuckDBPyConnection, roots: list[str] | None) -> tuple[list[str], list[str]]:
    if roots is not None:
        for r in roots:
            calendars.product_group(r)  # raises UnknownRoot
        return sorted(set(roots)), []
    found = {
        r[0]
        for r in con.execute(
            f"SELECT DISTINCT root FROM {_ref(BARS_1H)} UNION SELECT DISTINCT root FROM {_ref(BARS_1D)} "
            f"UNION SELECT DISTINCT root FROM (SELECT symbol AS root, date FROM {_ref(YAHOO)}) "
            f"WHERE {_BRIDGE.only_where}"
        ).fetchall()
    }
    known = set(calendars.roots())
    return sorted(found & known), sorted(found - known)


def _register_sessions(con: duckdb.DuckDBPyConnection, roots: list[str]) -> None:
    """Sessions covering every bar and every Yahoo bridge candidate of `roots`."""
    lo, hi = con.execute(
        f"SELECT MIN(t), MAX(t) FROM ("
        f"SELECT timezone('UTC', ts_event) AS t FROM {_ref(BARS_1H)} WHERE list_contains($1, root) "
        f"UNION ALL SELECT timezone('UTC', ts_event) FROM {_ref(BARS_1D)} WHERE list_contains($1, root) "
        f"UNION ALL SELECT CAST(date AS TIMESTAMP) FROM _cbi_cont_y)",
        [roots],
    ).fetchall()[0]
    if lo is None:
        con.register("_cbi_cont_empty", calendars.SESSION_SCHEMA.empty_table())
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_SESSIONS} AS SELECT * FROM _cbi_cont_empty")
        con.unregister("_cbi_cont_empty")
        return
    calendars.register_sessions(con, roots, lo - dt.timedelta(days=1), hi + dt.timedelta(days=10), _SESSIONS)


def _yahoo_candidates_sql() -> str:
    """Yahoo rows the contract's bridge admits (before the calendar and Databento checks)."""
    consistent = ("(y.open IS NOT NULL AND y.high IS NOT NULL AND y.low IS NOT NULL AND y.low > 0 "
                  "AND y.low <= LEAST(y.open, y.close) AND y.high >= GREATEST(y.open, y.close))")
    return f"""
CREATE OR REPLACE TEMP TABLE _cbi_cont_y AS
SELECT * FROM (
  SELECT y.date, y.symbol AS root, y.symbol,
         CASE WHEN {consistent} THEN y.open END AS open,
         CASE WHEN {consistent} THEN y.high END AS high,
         CASE WHEN {consistent} THEN y.low END AS low,
         y.close, y.volume, '{_BRIDGE.name}' AS source, y.source_file, y.file_sha256,
         NOT {consistent} AS ohlc_withheld
  FROM {_ref(YAHOO)} AS y
  WHERE list_contains($roots, y.symbol) AND y.close > 0
  QUALIFY row_number() OVER (PARTITION BY y.symbol, y.date
                             ORDER BY y.ingested_at DESC NULLS LAST, y.source_file NULLS LAST) = 1
) WHERE {_BRIDGE.only_where}
"""


def _assigned_bars_sql(contract: dc.Contract) -> str:
    bars = f"(SELECT * FROM {_ref(contract)} WHERE list_contains($roots, root))"
    return (
        "SELECT b.root, b.symbol, b.ts_event, b.open, b.high, b.low, b.close, b.volume, b.source_file, b.file_sha256, "
        "s.session_date, (b.ts_event >= s.open_utc AND b.ts_event < s.close_utc) AS in_session, "
        "CAST(timezone('UTC', b.ts_event) AS DATE) AS utc_date "
        f"FROM {bars} AS b ASOF LEFT JOIN {_SESSIONS} AS s ON b.root = s.root AND b.ts_event < s.assign_until_utc"
    )


def _agg(table: str) -> str:
    one_file = "CASE WHEN COUNT(DISTINCT {c}) = 1 AND COUNT({c}) = COUNT(*) THEN MIN({c}) END AS {c}"
    return (
        "SELECT root, symbol, session_date, arg_min(open, ts_event) AS open, MAX(high) AS high, MIN(low) AS low, "
        "arg_max(close, ts_event) AS close, SUM(volume)::BIGINT AS volume, "
        f"{one_file.format(c='source_file')}, {one_file.format(c='file_sha256')} "
        f"FROM {table} WHERE session_date IS NOT NULL GROUP BY root, symbol, session_date"
    )


_DAILY_SQL = f"""
CREATE TEMP TABLE _cbi_cont_daily AS
WITH h AS ({_agg('_cbi_cont_h')}),
d AS ({_agg('_cbi_cont_d')}),
h_utc AS (SELECT symbol, utc_date, SUM(volume) AS v FROM _cbi_cont_h GROUP BY ALL),
d_utc AS (SELECT symbol, utc_date, SUM(volume) AS v FROM _cbi_cont_d GROUP BY ALL),
touch AS (
  SELECT DISTINCT root, symbol, session_date, utc_date FROM _cbi_cont_h WHERE session_date IS NOT NULL
  UNION
  SELECT DISTINCT root, symbol, session_date, utc_date FROM _cbi_cont_d WHERE session_date IS NOT NULL
),
verdict AS (
  SELECT t.root, t.symbol, t.session_date,
         COUNT(d_utc.v) AS n_checked,
         COUNT(*) FILTER (WHERE d_utc.v IS NOT NULL AND h_utc.v IS DISTINCT FROM d_utc.v) AS n_mismatch
  FROM touch AS t
  LEFT JOIN d_utc ON d_utc.symbol = t.symbol AND d_utc.utc_date = t.utc_date
  LEFT JOIN h_utc ON h_utc.symbol = t.symbol AND h_utc.utc_date = t.utc_date
  GROUP BY ALL
),
both_ AS (
  SELECT COALESCE(h.root, d.root) AS root, COALESCE(h.symbol, d.symbol) AS symbol,
         COALESCE(h.session_date, d.session_date) AS session_date,
         CASE WHEN h.symbol IS NOT NULL AND (d.symbol IS NULL OR v.n_mismatch = 0)
              THEN CASE WHEN v.n_checked > 0 THEN '1h_verified' ELSE '1h_unverified' END
              ELSE '1d' END AS basis,
         h.open AS h_open, h.high AS h_high, h.low AS h_low, h.close AS h_close, h.volume AS h_volume,
         h.source_file AS h_source_file, h.file_sha256 AS h_file_sha256,
         d.open AS d_open, d.high AS d_high, d.low AS d_low, d.close AS d_close, d.volume AS d_volume,
         d.source_file AS d_source_file, d.file_sha256 AS d_file_sha256
  FROM h FULL JOIN d ON h.root = d.root AND h.symbol = d.symbol AND h.session_date = d.session_date
  LEFT JOIN verdict AS v
    ON v.root = COALESCE(h.root, d.root) AND v.symbol = COALESCE(h.symbol, d.symbol)
   AND v.session_date = COALESCE(h.session_date, d.session_date)
)
SELECT root, symbol, session_date, basis,
       {', '.join(f"CASE WHEN basis = '1d' THEN d_{c} ELSE h_{c} END AS {c}"
                  for c in ('open', 'high', 'low', 'close', 'volume', 'source_file', 'file_sha256'))},
       CASE WHEN regexp_full_match(symbol, root || '[FGHJKMNQUVXZ][0-9]{{1,2}}') THEN
            (CASE WHEN length(symbol) - length(root) = 3 THEN 2000 + CAST(right(symbol, 2) AS INTEGER)
                  ELSE year(session_date) + ((CAST(right(symbol, 1) AS INTEGER) - year(session_date) % 10) + 10) % 10
             END) * 12 + instr('FGHJKMNQUVXZ', substr(symbol, length(root) + 1, 1))
       END AS expiry_key
FROM both_
"""

_FRONT_SQL = """
CREATE TEMP TABLE _cbi_cont_front AS
WITH ranked AS (
  SELECT *, row_number() OVER (PARTITION BY root, session_date
                               ORDER BY volume DESC NULLS LAST, expiry_key NULLS LAST, symbol) AS rn
  FROM _cbi_cont_daily
),
floor_ AS (
  SELECT root, session_date,
         MAX(expiry_key) OVER (PARTITION BY root ORDER BY session_date
                               ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS floor_key
  FROM ranked WHERE rn = 1
)
SELECT d.* FROM _cbi_cont_daily AS d JOIN floor_ AS f USING (root, session_date)
QUALIFY row_number() OVER (PARTITION BY d.root, d.session_date
                           ORDER BY COALESCE(d.expiry_key >= f.floor_key, FALSE) DESC,
                                    d.volume DESC NULLS LAST, d.expiry_key NULLS LAST, d.symbol) = 1
"""


# A bar's kind: a UTC-day bar ('1d') and a session aggregate ('1h_*') close at different instants for
# roots whose session crosses 00:00 UTC (ES, CL), so two contracts' closes are compared only within a kind.
_KIND = "CASE WHEN {b} = '1d' THEN 'utc_day' WHEN {b} LIKE '1h%' THEN 'session' ELSE {b} END"

# The next expiry after each front contract among that session's outrights (the term structure's second
# contract); its close only when its bar is of the front's kind.
_NEXT_SQL = f"""
CREATE TEMP TABLE _cbi_cont_next AS
SELECT f.root, f.session_date, d.symbol AS next_symbol,
       CASE WHEN {_KIND.format(b='d.basis')} = {_KIND.format(b='f.basis')} THEN d.close END AS next_close
FROM _cbi_cont_front AS f
JOIN _cbi_cont_daily AS d ON d.root = f.root AND d.session_date = f.session_date AND d.expiry_key > f.expiry_key
QUALIFY row_number() OVER (PARTITION BY f.root, f.session_date ORDER BY d.expiry_key, d.symbol) = 1
"""

_NEW_ROWS_SQL = """
CREATE TEMP TABLE _cbi_cont_new AS
WITH db AS (
  SELECT f.session_date AS date, f.root, f.symbol, f.open, f.high, f.low, f.close, f.volume,
         'databento' AS source, f.source_file, f.file_sha256, FALSE AS ohlc_withheld, f.basis,
         n.next_symbol, n.next_close
  FROM _cbi_cont_front AS f LEFT JOIN _cbi_cont_next AS n USING (root, session_date)
),
yahoo AS (
  SELECT y.*, 'yahoo' AS basis,
         CAST(NULL AS VARCHAR) AS next_symbol, CAST(NULL AS DOUBLE) AS next_close
  FROM _cbi_cont_y AS y
  WHERE EXISTS (SELECT 1 FROM {sessions} AS s WHERE s.root = y.root AND s.session_date = y.date)
    AND NOT EXISTS (SELECT 1 FROM db WHERE db.root = y.root AND db.date = y.date)
),
all_rows AS (
  SELECT *, lag(date) OVER w AS prev_date, lag(symbol) OVER w AS prev_symbol, lag(close) OVER w AS prev_close,
         lag(basis) OVER w AS prev_basis, lag(source) OVER w AS prev_source
  FROM (SELECT * FROM db UNION ALL BY NAME SELECT * FROM yahoo)
  WINDOW w AS (PARTITION BY root ORDER BY date)
)
SELECT a.date, a.root, a.symbol, a.open, a.high, a.low, a.close, a.volume,
       CASE WHEN a.prev_symbol <> a.symbol THEN a.prev_symbol END AS roll_from_symbol,
       -- the row's contract on the previous row's session: that row itself, or (a roll) the new contract's
       -- bar of the previous row's kind that session; NULL without one (always at a Yahoo/Databento stitch)
       CASE WHEN a.prev_symbol = a.symbol THEN a.prev_close ELSE b.close END AS contract_prior_close,
       a.next_symbol, a.next_close,
       a.source, a.source_file, a.file_sha256, $batch_id::VARCHAR AS batch_id, now() AS ingested_at,
       a.prev_source, a.ohlc_withheld
FROM all_rows AS a
LEFT JOIN _cbi_cont_daily AS b
  ON a.prev_symbol <> a.symbol AND b.root = a.root AND b.symbol = a.symbol AND b.session_date = a.prev_date
 AND {kind_b} = {kind_prev}
""".format(sessions=_SESSIONS, kind_b=_KIND.format(b="b.basis"), kind_prev=_KIND.format(b="a.prev_basis"))


def _same_content(a: str, b: str) -> str:
    cols = [c for c in CONTINUOUS.column_names if c not in _LINEAGE_REFRESH]
    return " AND ".join(f"{a}.{to_duckdb.quote(c)} IS NOT DISTINCT FROM {b}.{to_duckdb.quote(c)}" for c in cols)


def build_continuous(
    con: duckdb.DuckDBPyConnection, roots: list[str] | None = None, batch_id: str | None = None
) -> ContinuousReport:
    """Rebuild market_data.futures_continuous_1d for `roots` (default: every root with bars or a
    Yahoo bridge row and a calendar). Idempotent; one transaction; see the module doc."""
    roots, skipped = _resolve_roots(con, roots)
    report = ContinuousReport(roots=roots, batch_id=batch_id, skipped_roots=skipped)
    target = _ref(CONTINUOUS)
    cols = ", ".join(to_duckdb.quote(c) for c in CONTINUOUS.column_names)
    params = {"roots": roots}
    try:
        with transaction(con):
            con.execute(_yahoo_candidates_sql(), params)
            _register_sessions(con, roots)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _cbi_cont_h AS {_assigned_bars_sql(BARS_1H)}", params)
            con.execute(f"CREATE OR REPLACE TEMP TABLE _cbi_cont_d AS {_assigned_bars_sql(BARS_1D)}", params)
            con.execute(_DAILY_SQL)
            con.execute(_FRONT_SQL)
            con.execute(_NEXT_SQL)
            con.execute(_NEW_ROWS_SQL, {"batch_id": batch_id})
            scope = "list_contains($roots, t.root)"
            report.deleted = con.execute(
                f"DELETE FROM {target} AS t WHERE {scope} AND NOT EXISTS "
                f"(SELECT 1 FROM _cbi_cont_new AS n WHERE {_same_content('n', 't')})",
                params,
            ).fetchall()[0][0]
            report.inserted = con.execute(
                f"INSERT INTO {target} ({cols}) SELECT {', '.join('n.' + to_duckdb.quote(c) for c in CONTINUOUS.column_names)} "
                f"FROM _cbi_cont_new AS n WHERE NOT EXISTS (SELECT 1 FROM {target} AS t WHERE {_same_content('n', 't')})"
            ).fetchall()[0][0]
            _fill_report(con, report)
    finally:
        for t in _TEMPS:
            con.execute(f"DROP TABLE IF EXISTS temp.{t}")
    return report


def _fill_report(con: duckdb.DuckDBPyConnection, report: ContinuousReport) -> None:
    total = con.execute("SELECT COUNT(*) FROM _cbi_cont_new").fetchall()[0][0]
    report.unchanged = total - report.inserted
    for root, source, n in con.execute("SELECT root, source, COUNT(*) FROM _cbi_cont_new GROUP BY ALL ORDER BY ALL").fetchall():
        report.rows.setdefault(root, {})[source] = n
    for root, basis, n in con.execute("SELECT root, basis, COUNT(*) FROM _cbi_cont_front GROUP BY ALL ORDER BY ALL").fetchall():
        report.basis.setdefault(root, {})[basis] = n
    report.rolls = [
        RollEvent(root, date, frm, to, "stitch" if prev_source != source else "roll")
        for root, date, frm, to, prev_source, source in con.execute(
            "SELECT root, date, roll_from_symbol, symbol, prev_source, source FROM _cbi_cont_new "
            "WHERE roll_from_symbol IS NOT NULL ORDER BY root, date"
        ).fetchall()
    ]
    stitched = {
        root: (first, last, n, withheld)
        for root, first, last, n, withheld in con.execute(
            "SELECT root, MIN(date), MAX(date), COUNT(*), COUNT(*) FILTER (WHERE ohlc_withheld) FROM _cbi_cont_new "
            f"WHERE source = '{_BRIDGE.name}' GROUP BY root"
        ).fetchall()
    }
    off: dict[str, list[dt.date]] = {}
    for root, date in con.execute(
        f"SELECT root, date FROM _cbi_cont_y AS y WHERE NOT EXISTS "
        f"(SELECT 1 FROM {_SESSIONS} AS s WHERE s.root = y.root AND s.session_date = y.date) ORDER BY root, date"
    ).fetchall():
        off.setdefault(root, []).append(date)
    for root in sorted(set(stitched) | set(off)):
        first, last, n, withheld = stitched.get(root, (None, None, 0, 0))
        missing = 0
        if first is not None:
            missing = con.execute(
                f"SELECT COUNT(*) FROM {_SESSIONS} AS s WHERE s.root = $1 AND s.session_date BETWEEN $2 AND $3 "
                f"AND NOT EXISTS (SELECT 1 FROM _cbi_cont_new AS n WHERE n.root = s.root AND n.date = s.session_date)",
                [root, first, last],
            ).fetchall()[0][0]
        report.stitches.append(Stitch(root, first, last, n, withheld, off.get(root, []), missing))
    for root, outside, unassigned in con.execute(
        "SELECT root, COUNT(*) FILTER (WHERE session_date IS NOT NULL AND NOT in_session), "
        "COUNT(*) FILTER (WHERE session_date IS NULL) "
        "FROM (SELECT root, session_date, in_session FROM _cbi_cont_h UNION ALL "
        "SELECT root, session_date, TRUE FROM _cbi_cont_d) GROUP BY root ORDER BY root"
    ).fetchall():
        if outside:
            report.bars_outside_session[root] = outside
        if unassigned:
            report.bars_unassigned[root] = unassigned
