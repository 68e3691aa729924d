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

Cache: building 25 years of schedules from the library's holiday rules takes about a second, so
each product group's calendar is computed for whole years and kept in memory and on disk
(``CBI_CALENDAR_CACHE``: a folder, default ``~/.cache/cbi/calendars``; ``off`` disables the disk
copy). A cached answer is exactly the library's for the requested range (see `_group_tables`).
Each version of this module and of the calendar libraries caches into its own sub-folder; a new
version's first write removes other versions' folders unused for a week.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import shutil
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from .config import current

TRADE_DATE_CALENDAR = "CME_TradeDate"
# Bars starting this long after a scheduled close still belong to the closing session
# (capped at half the gap to the next open).
CLOSE_GRACE = dt.timedelta(minutes=30)
_PAD = dt.timedelta(days=10)  # holiday merging looks this far beyond the requested range
CACHE_ENV = "CBI_CALENDAR_CACHE"  # a directory, or "off"

from .config import current


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
# What one product group's calendar holds (a root adds its own name; see `sessions`).
_GROUP_SESSIONS = pa.schema([f for f in SESSION_SCHEMA if f.name not in ("root", "product_group")])
_GROUP_INTERVALS = pa.schema([f for f in INTERVAL_SCHEMA if f.name != "root"])


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


def _day(value) -> dt.date:
    """A date from a date, a datetime (an aware one in UTC) or ISO text."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    import pandas as pd  # anything else pandas can read as a time

    return _day(pd.Timestamp(value).to_pydatetime())


def _compute(group_name: str, start: dt.date, end: dt.date) -> tuple[pa.Table, pa.Table]:
    """Sessions and trading intervals of one product group, trade dates in [start, end], from the
    library. The slow part of this module (holiday rules, schedules): see `_group_tables`."""
    import pandas as pd

    group = next(g for g in GROUPS if g.name == group_name)
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    pad = pd.Timedelta(_PAD)
    sched = _calendar(group.calendar).schedule(lo - pad, hi + pad)
    trade_days = _calendar(TRADE_DATE_CALENDAR).schedule(lo - pad, hi + 3 * pad).index
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
    grace = (gap / 2).clip(upper=pd.Timedelta(CLOSE_GRACE)).fillna(pd.Timedelta(CLOSE_GRACE))
    sessions["assign_until_utc"] = sessions.close_utc + grace
    sessions.index.name = "session_date"
    sessions = sessions.reset_index()
    sessions = sessions[(sessions.session_date >= lo) & (sessions.session_date <= hi)]
    intervals = intervals[(intervals.session_date >= lo) & (intervals.session_date <= hi)]
    sessions["session_date"] = sessions.session_date.dt.date
    intervals["session_date"] = intervals.session_date.dt.date
    return (pa.Table.from_pandas(sessions[_GROUP_SESSIONS.names], schema=_GROUP_SESSIONS, preserve_index=False),
            pa.Table.from_pandas(intervals[_GROUP_INTERVALS.names], schema=_GROUP_INTERVALS, preserve_index=False))


# --- the cache --------------------------------------------------------------------------
# A group's calendar is computed for whole calendar years and kept: in memory for the process,
# and on disk (CBI_CALENDAR_CACHE, default ~/.cache/cbi/calendars; "off" disables) for the next
# one, so `cbi features build` does not rebuild 25 years of holiday rules (~1 s) on every run.
# Whole years give the same rows as any narrower range: each trade date only looks _PAD days
# around itself. Disk entries are keyed by this module's source and the calendar libraries'
# versions, so a change of rules or of a library's holidays never reads a stale entry.


@dataclass(frozen=True)
class _Years:
    years: frozenset[int]
    sessions: pa.Table
    intervals: pa.Table


_MEMO: dict[str, _Years] = {}
_LOCK = threading.Lock()


def clear_cache(disk: bool = False) -> None:
    """Forget the computed calendars (the in-process copy; with `disk`, this version's files too)."""
    with _LOCK:
        _MEMO.clear()
    folder = _cache_dir()
    if disk and folder is not None and folder.is_dir():
        for f in folder.glob("*.arrow"):
            f.unlink(missing_ok=True)


_FINGERPRINT_LEN = 16  # hex digits: the name of this version's cache folder


@functools.cache
def _fingerprint() -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    for dist in ("pandas_market_calendars", "exchange_calendars", "pandas"):
        try:
            h.update(f"{dist}={metadata.version(dist)};".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist}=none;".encode())
    return h.hexdigest()[:_FINGERPRINT_LEN]


def _cache_dir() -> Path | None:
    env = (current().calendar_cache or "").strip()
    if env.lower() == "off":
        return None
    if env:
        base = Path(env).expanduser()
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cbi" / "calendars"
    return base / _fingerprint()


def _year_of(tbl: pa.Table) -> pa.Array:
    return pc.year(tbl.column("session_date"))


def _disk_read(group: str) -> _Years | None:
    folder = _cache_dir()
    if folder is None:
        return None
    try:
        with pa.memory_map(str(folder / f"{group}.sessions.arrow")) as f:
            sess = pa.ipc.open_file(f).read_all()
        with pa.memory_map(str(folder / f"{group}.intervals.arrow")) as f:
            iv = pa.ipc.open_file(f).read_all()
        years = frozenset(int(y) for y in (sess.schema.metadata or {}).get(b"years", b"").decode().split(",") if y)
    except (OSError, pa.ArrowInvalid):
        return None  # absent, unreadable or half-written by a crash: recompute
    sess = sess.replace_schema_metadata(None)
    if sess.schema != _GROUP_SESSIONS or iv.schema != _GROUP_INTERVALS:
        return None
    return _Years(years, sess, iv)


STALE_AFTER_DAYS = 7


def _prune_other_versions(folder: Path) -> None:
    """Each code/library version caches into its own folder (named by `_fingerprint`); the first
    write of a new version removes the folders of other versions untouched for STALE_AFTER_DAYS,
    so upgrades do not pile up caches. A recently used one may belong to a process still running
    the old version (e.g. the daemon), so it stays."""
    cutoff = time.time() - STALE_AFTER_DAYS * 86_400
    try:
        siblings = [p for p in folder.parent.iterdir() if p.is_dir() and p != folder and _is_version_dir(p)]
    except OSError:
        return
    for old in siblings:
        try:
            if max((f.stat().st_mtime for f in old.iterdir()), default=old.stat().st_mtime) < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


def _is_version_dir(p: Path) -> bool:
    return len(p.name) == _FINGERPRINT_LEN and all(c in "0123456789abcdef" for c in p.name)


def _disk_write(group: str, entry: _Years) -> None:
    folder = _cache_dir()
    if folder is None:
        return
    meta = {"years": ",".join(str(y) for y in sorted(entry.years))}
    try:
        if not folder.is_dir():
            _prune_other_versions(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for kind, tbl in (("sessions", entry.sessions.replace_schema_metadata(meta)), ("intervals", entry.intervals)):
            final = folder / f"{group}.{kind}.arrow"
            tmp = final.with_name(f"{final.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            with pa.OSFile(str(tmp), "wb") as f, pa.ipc.new_file(f, tbl.schema) as w:
                w.write_table(tbl)
            os.replace(tmp, final)  # atomic: readers see the old file or the new one
    except OSError:
        pass  # a read-only or full disk only costs the next process the computation


def _merge(old: _Years | None, new: _Years) -> _Years:
    """`new` wins for its years; rows sorted by time."""
    if old is None:
        return new
    keep_years = pa.array(sorted(old.years - new.years), pa.int64())
    sess = old.sessions.filter(pc.is_in(_year_of(old.sessions), keep_years))
    iv = old.intervals.filter(pc.is_in(_year_of(old.intervals), keep_years))
    return _Years(
        old.years | new.years,
        pa.concat_tables([sess, new.sessions]).sort_by("session_date"),
        pa.concat_tables([iv, new.intervals]).sort_by("start_utc"),
    )


def _runs(years: list[int]) -> list[tuple[int, int]]:
    """Sorted years -> (first, last) of each run of consecutive years."""
    out: list[tuple[int, int]] = []
    for y in years:
        if out and out[-1][1] == y - 1:
            out[-1] = (out[-1][0], y)
        else:
            out.append((y, y))
    return out


def _group_tables(group_name: str, start: dt.date, end: dt.date) -> tuple[pa.Table, pa.Table]:
    """Sessions and trading intervals of one product group, trade dates in [start, end]."""
    want = set(range(start.year, end.year + 1))
    with _LOCK:
        entry = _MEMO.get(group_name)
        if entry is None or not want <= entry.years:
            disk = _disk_read(group_name)
            if disk is not None:
                entry = _merge(disk, entry) if entry is not None else disk
            missing = sorted(want - (entry.years if entry else frozenset()))
            for y0, y1 in _runs(missing):  # one library call per run of consecutive missing years
                sess, iv = _compute(group_name, dt.date(y0, 1, 1), dt.date(y1, 12, 31))
                entry = _merge(entry, _Years(frozenset(range(y0, y1 + 1)), sess, iv))
            if missing:
                _disk_write(group_name, entry)
            _MEMO[group_name] = entry
    lo, hi = pa.scalar(start, pa.date32()), pa.scalar(end, pa.date32())

    def window(tbl: pa.Table) -> pa.Table:
        d = tbl.column("session_date")
        return tbl.filter(pc.and_(pc.greater_equal(d, lo), pc.less_equal(d, hi)))

    return window(entry.sessions), window(entry.intervals)


def _roots_list(root_or_roots: str | list[str] | tuple[str, ...]) -> list[str]:
    rs = [root_or_roots] if isinstance(root_or_roots, str) else list(root_or_roots)
    for r in rs:
        product_group(r)
    return rs


def _labelled(tbl: pa.Table, schema: pa.Schema, **labels: str) -> pa.Table:
    cols = {name: pa.repeat(pa.scalar(value, pa.string()), tbl.num_rows) for name, value in labels.items()}
    return pa.table([cols[f.name] if f.name in cols else tbl.column(f.name) for f in schema], schema=schema)


def sessions(root_or_roots: str | list[str], start, end) -> pa.Table:
    """One row per (root, CME trade date) with session_date in [start, end]: open/close in UTC,
    the scheduled daily break (NULL when none), `assign_until_utc` (see module doc) and
    `holiday_merged` (the trade date absorbed a holiday session). Arrow, for DuckDB/Polars joins."""
    start, end = _day(start), _day(end)
    frames = []
    for root in _roots_list(root_or_roots):
        group = product_group(root)
        sess, _ = _group_tables(group.name, start, end)
        frames.append(_labelled(sess, SESSION_SCHEMA, root=root, product_group=group.name))
    if not frames:
        return SESSION_SCHEMA.empty_table()
    return pa.concat_tables(frames)


def trading_intervals(root_or_roots: str | list[str], start, end) -> pa.Table:
    """The actual trading periods [start_utc, end_utc) of each trade date: the session minus
    its daily break, plus any merged holiday session (so a halt shows as a gap). For coverage:
    expected bars are those overlapping an interval."""
    start, end = _day(start), _day(end)
    frames = []
    for root in _roots_list(root_or_roots):
        _, iv = _group_tables(product_group(root).name, start, end)
        frames.append(_labelled(iv, INTERVAL_SCHEMA, root=root))
    if not frames:
        return INTERVAL_SCHEMA.empty_table()
    return pa.concat_tables(frames)


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
