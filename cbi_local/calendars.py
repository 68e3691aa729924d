"""CME session calendars per product root: which CME trade date a UTC timestamp belongs to.

Hours, breaks, holidays and early closes come from `pandas_market_calendars` (it builds on
`exchange_calendars`, whose only CME calendar, CMES, is one 17:00-17:00 CT day for every
product: no grain hours, no grain break, CBOT/NYMEX are mere aliases of it). Trade dates come
from its `CME_TradeDate` calendar (the business days CME clears and settles).

Rules per product group (all times America/Chicago; the library handles DST and converts to UTC):

* equity_index (ES, MES; calendar ``CME_Equity``, XCME): Globex opens 17:00 on the previous
  evening and closes 16:00. Until trade date 2021-06-25 a 15:15-15:30 pause was part of
  each day (the real ES `status` sample shows it: PRE_OPEN 21:15 UTC, trading 21:30 UTC on
  2020-12-28); 2005-09-12 .. 2012-11-16 used the legacy 15:30 -> 15:15 day. The 16:00-17:00
  daily maintenance halt separates sessions.
* grains (ZL, ZS, ZM, ZC, ZW; ``CME_Agriculture``, XCBT): opens 19:00 on the previous evening,
  break 07:45-08:30, closes 13:20. Grain Globex is fully closed on US exchange holidays
  (incl. MLK, Presidents, Juneteenth from 2022). The library applies today's hours to all
  history (pre-2013 CBOT hours differed); session *dates* are unaffected (see assignment).
* energy (CL, NG, RB, HO; ``CMEGlobex_Energy``, XNYM) and metals (GC, SI, HG;
  ``CMEGlobex_Metals``, XCEC): opens 17:00 on the previous evening, closes 16:00, no break.

Holiday sessions: on US holidays CME Globex often trades an abbreviated session (ES on MLK
day: Sunday 17:00 to Monday 12:00) but CME clears no trade date that day; CME's notices say
the Sunday open is "for trade date of Tuesday" (CME press release 2006-01-10, MLK schedule).
So a library session whose date is not a CME trade date is merged into the next trade date:
that trade date's session opens at the holiday session's open and contains a halt (see
`trading_intervals`). Unverified edge: Good Friday sessions in NFP years (2010, 2012, 2015,
2021) are treated the same way (dated to Monday).

Assignment of a bar (or any event) to a trade date: the first session whose
``assign_until_utc`` is after the bar's start, where ``assign_until_utc`` = close + min(30 min,
half the gap to the next open). Bars starting in the short grace window after a close stay
with the closing session (the library's early-close times can be up to 15 min early, e.g.
12:00 vs ES's 12:15 on Black Friday); anything later belongs to the next session, which is
CME's rule (trades after a close are for the next trade date). ``in_session`` flags bars that
start inside [open, close). Example (real ES data): the 1h bar at 2020-12-28 00:00 UTC
(Sunday 18:00 CT) belongs to trade date 2020-12-28 (Monday), not 2020-12-27.

In DuckDB: ``ASOF LEFT JOIN sessions s ON b.root = s.root AND b.ts_event < s.assign_until_utc``
(`assign_session_dates` does it). In Polars: ``bars.join_asof(pl.from_arrow(tbl),
left_on="ts_event", right_on="assign_until_utc", by="root", strategy="forward",
allow_exact_matches=False)`` on inputs sorted by time.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

TRADE_DATE_CALENDAR = "CME_TradeDate"
# Bars starting this long after a scheduled close still belong to the closing session
# (capped at half the gap to the next open).
CLOSE_GRACE = pd.Timedelta(minutes=30)
_PAD = pd.Timedelta(days=10)  # holiday merging looks this far beyond the requested range


@dataclass(frozen=True)
class ProductGroup:
    name: str
    calendar: str  # pandas_market_calendars name
    exchange: str  # MIC
    roots: tuple[str, ...]
    rule: str


GROUPS: tuple[ProductGroup, ...] = (
    ProductGroup("equity_index", "CME_Equity", "XCME", ("ES", "MES"),
                 "17:00 (prev day) - 16:00 CT; 15:15-15:30 pause until 2021-06-25"),
    ProductGroup("grains", "CME_Agriculture", "XCBT", ("ZL", "ZS", "ZM", "ZC", "ZW"),
                 "19:00 (prev day) - 13:20 CT; break 07:45-08:30"),
    ProductGroup("energy", "CMEGlobex_Energy", "XNYM", ("CL", "NG", "RB", "HO"),
                 "17:00 (prev day) - 16:00 CT; no break"),
    ProductGroup("metals", "CMEGlobex_Metals", "XCEC", ("GC", "SI", "HG"),
                 "17:00 (prev day) - 16:00 CT; no break"),
)
_BY_ROOT = {root: g for g in GROUPS for root in g.roots}

SESSION_SCHEMA = pa.schema([
    ("root", pa.string()),
    ("product_group", pa.string()),
    ("session_date", pa.date32()),
    ("open_utc", pa.timestamp("us", tz="UTC")),
    ("close_utc", pa.timestamp("us", tz="UTC")),
    ("break_start_utc", pa.timestamp("us", tz="UTC")),
    ("break_end_utc", pa.timestamp("us", tz="UTC")),
    ("assign_until_utc", pa.timestamp("us", tz="UTC")),
    ("holiday_merged", pa.bool_()),
])
INTERVAL_SCHEMA = pa.schema([
    ("root", pa.string()),
    ("session_date", pa.date32()),
    ("start_utc", pa.timestamp("us", tz="UTC")),
    ("end_utc", pa.timestamp("us", tz="UTC")),
])


class UnknownRoot(KeyError):
    pass


def roots() -> list[str]:
    """Every root with a calendar."""
    return sorted(_BY_ROOT)


def product_group(root: str) -> ProductGroup:
    try:
        return _BY_ROOT[root]
    except KeyError:
        raise UnknownRoot(f"no CME session calendar for root {root!r}; known: {', '.join(roots())}") from None


@functools.cache
def _calendar(name: str):
    try:
        import pandas_market_calendars as mcal
    except ImportError as exc:  # pragma: no cover - an install problem, not a code path
        raise ImportError("cbi_local.calendars needs pandas_market_calendars (pip install pandas_market_calendars)") from exc
    return mcal.get_calendar(name)


def calendar_for(root: str):
    """The pandas_market_calendars calendar of a root (hours, breaks, holidays)."""
    return _calendar(product_group(root).calendar)


def _day(value: dt.date | str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.normalize()


@functools.lru_cache(maxsize=64)
def _group_frames(group_name: str, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sessions and trading intervals of one product group, trade dates in [start, end]."""
    group = next(g for g in GROUPS if g.name == group_name)
    sched = _calendar(group.calendar).schedule(start - _PAD, end + _PAD)
    trade_days = _calendar(TRADE_DATE_CALENDAR).schedule(start - _PAD, end + 3 * _PAD).index
    own = pd.DatetimeIndex(sched.index).normalize()
    pos = trade_days.searchsorted(own, side="left")
    keep = pos < len(trade_days)
    sched, own, pos = sched[keep], own[keep], pos[keep]

    def utc(col: str) -> pd.Series:
        if col not in sched:
            return pd.Series(pd.NaT, index=sched.index, dtype="datetime64[ns, UTC]")
        return pd.to_datetime(sched[col], utc=True)

    opens, closes = utc("market_open"), utc("market_close")
    bstart, bend = utc("break_start").clip(lower=opens), utc("break_end").clip(upper=closes)
    has_break = bstart.notna() & bend.notna() & (bstart < bend)
    bstart, bend = bstart.where(has_break), bend.where(has_break)
    piece = pd.DataFrame({
        "trade_date": trade_days[pos].values,
        "own": own == trade_days[pos],
        "open": opens.array, "close": closes.array,
        "bstart": bstart.array, "bend": bend.array,
    })

    # Trading intervals: each library session minus its break.
    first = pd.DataFrame({"session_date": piece.trade_date,
                          "start_utc": piece.open, "end_utc": piece.bstart.fillna(piece.close)})
    second = pd.DataFrame({"session_date": piece.trade_date, "start_utc": piece.bend, "end_utc": piece.close})[has_break.values]
    intervals = pd.concat([first, second]).sort_values("start_utc", kind="stable").reset_index(drop=True)

    grouped = piece.groupby("trade_date", sort=True)
    sessions = pd.DataFrame({
        "open_utc": grouped.open.min(),
        "close_utc": grouped.close.max(),
        "holiday_merged": ~grouped.own.all(),
    })
    own_rows = piece[piece.own].set_index("trade_date")
    sessions["break_start_utc"] = own_rows.bstart.reindex(sessions.index)
    sessions["break_end_utc"] = own_rows.bend.reindex(sessions.index)
    gap = sessions.open_utc.shift(-1) - sessions.close_utc
    grace = (gap / 2).clip(upper=CLOSE_GRACE).fillna(CLOSE_GRACE)
    sessions["assign_until_utc"] = sessions.close_utc + grace
    sessions.index.name = "session_date"
    sessions = sessions.reset_index()
    in_range = (sessions.session_date >= start) & (sessions.session_date <= end)
    sessions = sessions[in_range].reset_index(drop=True)
    intervals = intervals[(intervals.session_date >= start) & (intervals.session_date <= end)].reset_index(drop=True)
    return sessions, intervals


def _roots_list(root_or_roots: str | list[str] | tuple[str, ...]) -> list[str]:
    rs = [root_or_roots] if isinstance(root_or_roots, str) else list(root_or_roots)
    for r in rs:
        product_group(r)
    return rs


def sessions(root_or_roots: str | list[str], start, end) -> pa.Table:
    """One row per (root, CME trade date) with session_date in [start, end]: open/close in UTC,
    the scheduled daily break (NULL when none), `assign_until_utc` (see module doc) and
    `holiday_merged` (the trade date absorbed a holiday session). Arrow, for DuckDB/Polars joins."""
    start, end = _day(start), _day(end)
    frames = []
    for root in _roots_list(root_or_roots):
        group = product_group(root)
        sess, _ = _group_frames(group.name, start, end)
        frames.append(sess.assign(root=root, product_group=group.name))
    if not frames:
        return SESSION_SCHEMA.empty_table()
    df = pd.concat(frames, ignore_index=True)
    df["session_date"] = df.session_date.dt.date
    return pa.Table.from_pandas(df[SESSION_SCHEMA.names], schema=SESSION_SCHEMA, preserve_index=False)


def trading_intervals(root_or_roots: str | list[str], start, end) -> pa.Table:
    """The actual trading periods [start_utc, end_utc) of each trade date: the session minus
    its daily break, plus any merged holiday session (so a halt shows as a gap). For coverage:
    expected bars are those overlapping an interval."""
    start, end = _day(start), _day(end)
    frames = []
    for root in _roots_list(root_or_roots):
        _, iv = _group_frames(product_group(root).name, start, end)
        frames.append(iv.assign(root=root))
    if not frames:
        return INTERVAL_SCHEMA.empty_table()
    df = pd.concat(frames, ignore_index=True)
    df["session_date"] = df.session_date.dt.date
    return pa.Table.from_pandas(df[INTERVAL_SCHEMA.names], schema=INTERVAL_SCHEMA, preserve_index=False)


def session_dates(root: str, start, end) -> list[dt.date]:
    """The CME trade dates on which `root` has a session, start <= date <= end."""
    return sessions(root, start, end).column("session_date").to_pylist()


# --- DuckDB helpers --------------------------------------------------------------------


def register_sessions(con: duckdb.DuckDBPyConnection, root_or_roots: str | list[str], start, end,
                      name: str = "cbi_sessions") -> str:
    """Create (or replace) TEMP TABLE `name` holding `sessions(...)`; returns the name."""
    tbl = sessions(root_or_roots, start, end)
    con.register("_cbi_sessions_arrow", tbl)
    try:
        con.execute(f'CREATE OR REPLACE TEMP TABLE "{name}" AS SELECT * FROM _cbi_sessions_arrow')
    finally:
        con.unregister("_cbi_sessions_arrow")
    return name


def session_asof_sql(bars: str, sessions_table: str = "cbi_sessions", ts_col: str = "ts_event") -> str:
    """SQL that adds session_date and in_session to every row of `bars` (a table name or a
    parenthesised subquery with `root` and `ts_col`). Rows after the last session get NULL."""
    return (
        f"SELECT b.*, s.session_date, "
        f"(b.{ts_col} >= s.open_utc AND b.{ts_col} < s.close_utc) AS in_session "
        f"FROM {bars} AS b ASOF LEFT JOIN \"{sessions_table}\" AS s "
        f"ON b.root = s.root AND b.{ts_col} < s.assign_until_utc"
    )


def assign_session_dates(con: duckdb.DuckDBPyConnection, bars: str, ts_col: str = "ts_event",
                         sessions_table: str = "cbi_sessions") -> duckdb.DuckDBPyRelation:
    """Relation of `bars` plus session_date / in_session. Registers the sessions its roots and
    time range need (one aggregate over `bars`, then a set-based ASOF join). Raises UnknownRoot
    for a root without a calendar."""
    rows = con.execute(
        f"SELECT root, MIN(timezone('UTC', {ts_col})), MAX(timezone('UTC', {ts_col})) FROM {bars} AS b GROUP BY root"
    ).fetchall()
    rs = sorted(r[0] for r in rows)
    if rs:
        lo = min(r[1] for r in rows) - dt.timedelta(days=1)
        hi = max(r[2] for r in rows) + dt.timedelta(days=10)
        register_sessions(con, rs, lo, hi, sessions_table)
    else:
        con.register("_cbi_sessions_arrow", SESSION_SCHEMA.empty_table())
        con.execute(f'CREATE OR REPLACE TEMP TABLE "{sessions_table}" AS SELECT * FROM _cbi_sessions_arrow')
        con.unregister("_cbi_sessions_arrow")
    return con.sql(session_asof_sql(bars, sessions_table, ts_col))
