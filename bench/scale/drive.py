"""A scratch drive of the user's shape, replicated from the real ES sample: NOT MARKET DATA.

    from bench.scale.drive import Shape, generate, add_new_day
    drive = generate(scratch, Shape.full().scaled(0.1))   # --quick
    new = add_new_day(scratch, drive)                     # the daemon's next day, one file per root

Protocol. Every bar is one of the four real ES ohlcv-1h bars of ../shared/data (decoded with
`databento`), copied with its prices and a volume divided by the instrument's rank; which of
the four lands on a day's first hour rotates with the date (else every day would close at one
price and the matrix's no_placeholders rule would rightly hold the series back); only the
timestamps (shifted onto the roots' real CME session dates, from cbi_local.calendars) and the
instrument ids and symbols are made up. Nothing here is market data: the folders are named
`GLBX-...-NOTREAL-...` and every summary says so. The shape follows the seeds of issue #22:

* ZL (grains): ohlcv-1h, one raw-JSON file per session date (2010-06-06 to 2025-11-18 at full
  size: ~3,900 files, ~450 MB), bars 01:00-18:00 UTC (inside the 19:00-13:20 CT session in
  both CST and CDT); plus ONE range file of ohlcv-1d bars (the UTC-day aggregate of the same
  1h bars, so the continuous build can verify its 1h sessions), in its own batch folder.
* MES (equity index): ohlcv-1h from 2019-04-14, in 209 range files (several session dates
  each, ~550 MB), bars 23:00 UTC of the previous day to 20:00 UTC.
* A parent-symbol request (`ZL.FUT`, `MES.FUT`) returns every outright and every calendar
  spread: per session date the next `outrights` listed contracts and `spreads` of their pairs
  (ZL: 12 + 21, MES: 12 + 66; two thirds and more of the records are spreads, which the loader
  quarantines as no_spreads). Each batch folder has a symbology.json mapping raw symbols to
  instrument ids per date range (a one-digit year symbol names two contracts ten years apart,
  as Databento's raw symbols do) and the other sidecars.

`Shape.scaled(f)` keeps the proportions and the end date and takes the last fraction `f` of
each root's session dates (and of MES's range files).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from pathlib import Path

from bench._common import BAR_JSON, real_bars
from cbi_local import calendars

NS = 10**9
DAY_S = 86_400
MONTH_CODES = "FGHJKMNQUVXZ"
NOT_REAL = "NOTREAL"


@dataclass(frozen=True)
class Root:
    root: str
    months: str  # contract months (CME codes)
    start: dt.date
    hours: tuple[int, ...]  # UTC hour offsets from the session date's midnight (-1 = 23:00 the day before)
    outrights: int  # listed outrights per day
    spreads: int  # calendar spreads per day (pairs of the listed outrights, nearest first)
    files: int | None  # None: one file per session date; else this many range files
    range_1d: bool  # also one ohlcv-1d range file of the whole span


@dataclass(frozen=True)
class Shape:
    roots: tuple[Root, ...]
    end: dt.date
    fraction: float = 1.0

    @staticmethod
    def full() -> Shape:
        return Shape(
            roots=(
                Root("ZL", "FHKNQUVZ", dt.date(2010, 6, 6), tuple(range(1, 19)), 12, 21, None, True),
                Root("MES", "HMUZ", dt.date(2019, 4, 14), (-1, *range(0, 21)), 12, 66, 209, False),
            ),
            end=dt.date(2025, 11, 18),
        )

    def scaled(self, fraction: float) -> Shape:
        return replace(self, fraction=fraction)


@dataclass
class Drive:
    """What generate() wrote: batch folders, data files, row and byte counts."""

    root: Path  # the inbox: one batch folder per request
    folders: list[Path]
    files_1h: list[Path]
    files_1d: list[Path]
    rows: int
    bytes: int
    rows_by_root: dict[str, int]
    last_session: dict[str, dt.date]
    shape: Shape

    def describe(self) -> str:
        parts = ", ".join(f"{r} {n:,} bars" for r, n in self.rows_by_root.items())
        return (f"{len(self.folders)} batch folders, {len(self.files_1h):,} ohlcv-1h files + {len(self.files_1d)} ohlcv-1d "
                f"range file(s), {self.rows:,} records ({self.bytes / 1e6:,.0f} MB): {parts}")


def _contracts(r: Root, day: dt.date, n: int) -> list[tuple[int, int]]:
    """The next `n` listed (year, month) contracts of `r` on `day` (a contract trades until the 14th of its month)."""
    out, y, m = [], day.year, day.month
    if day.day > 14:
        m += 1
    while len(out) < n:
        if m > 12:
            y, m = y + 1, 1
        if MONTH_CODES[m - 1] in r.months:
            out.append((y, m))
        m += 1
    return out


def _symbol(root: str, c: tuple[int, int]) -> str:
    return f"{root}{MONTH_CODES[c[1] - 1]}{c[0] % 10}"


def _pairs(n: int, k: int) -> list[tuple[int, int]]:
    """The first k calendar spreads of n listed contracts, nearest legs and shortest spans first."""
    pairs = sorted(((i, j) for i in range(n) for j in range(i + 1, n)), key=lambda p: (p[1] - p[0], p[0]))
    return pairs[:k]


class _Ids:
    """Instrument ids and the symbology of one batch folder (symbol -> [{d0, d1, s}])."""

    def __init__(self, first: int) -> None:
        self.next, self.ids, self.spans = first, {}, {}

    def get(self, key: tuple, symbol: str, first: dt.date, day: dt.date) -> int:
        """The id of `key`, mapped from `first` (the UTC date of its first bar) to `day`."""
        if key not in self.ids:
            self.ids[key] = self.next
            self.next += 1
        iid = self.ids[key]
        span = self.spans.setdefault((symbol, iid), [first, day])
        span[0], span[1] = min(span[0], first), max(span[1], day)
        return iid

    def write(self, folder: Path, start: dt.date, end: dt.date, request: str) -> None:
        result: dict[str, list] = {}
        for (symbol, iid), (d0, d1) in sorted(self.spans.items(), key=lambda kv: (kv[0][0], kv[1][0])):
            result.setdefault(symbol, []).append({"d0": str(d0), "d1": str(d1 + dt.timedelta(days=1)), "s": str(iid)})
        doc = {
            "result": result, "symbols": [request], "stype_in": "parent", "stype_out": "instrument_id",
            "start_date": str(start), "end_date": str(end + dt.timedelta(days=1)), "partial": [], "not_found": [],
            "message": "OK (generated by bench/scale from the real ES sample: NOT market data)", "status": 0,
        }
        (folder / "symbology.json").write_text(json.dumps(doc))
        for name in ("manifest.json", "metadata.json", "condition.json"):
            (folder / name).write_text("{}")


class _Writer:
    """Formats the records of one root; the price part of each line is formatted once per (hour, rank)."""

    def __init__(self, r: Root, ids: _Ids) -> None:
        self.r, self.ids = r, ids
        bars = real_bars("ohlcv-1h")
        ranks = r.outrights + 1  # outright ranks 0..n-1; spreads share the last
        self.tails, self.daily = {}, {}
        for phase in range(len(bars)):
            for rank in range(ranks):
                div = rank + 1 if rank < r.outrights else 10
                per_hour = []
                for k, h in enumerate(r.hours):
                    b = bars[(k + phase) % len(bars)]
                    per_hour.append({**{f: b[f] for f in ("open", "high", "low", "close")},
                                     "volume": str(max(1, int(b["volume"]) // div))})
                for h, b in zip(r.hours, per_hour):
                    self.tails[(phase, h, rank)] = BAR_JSON.format(ts="%d", rtype=34, iid="%d", **b)
                # The UTC-day aggregate of the same bars (for the 1d range file), per UTC date offset.
                for off in {h // 24 for h in r.hours}:
                    day = [b for h, b in zip(r.hours, per_hour) if h // 24 == off]
                    agg = {"open": day[0]["open"], "close": day[-1]["close"],
                           "high": max(day, key=lambda b: int(b["high"]))["high"],
                           "low": min(day, key=lambda b: int(b["low"]))["low"],
                           "volume": str(sum(int(b["volume"]) for b in day))}
                    self.daily[(phase, off, rank)] = BAR_JSON.format(ts="%d", rtype=35, iid="%d", **agg)
        self.phases = len(bars)

    def instruments(self, day: dt.date) -> list[tuple[int, int]]:
        """(instrument_id, rank) traded on `day`: outrights nearest first, then spreads."""
        r = self.r
        first = day + dt.timedelta(days=min(r.hours) // 24)  # MES: the session opens the UTC day before
        cons = _contracts(r, day, r.outrights)
        out = [(self.ids.get(("o", c), _symbol(r.root, c), first, day), rank) for rank, c in enumerate(cons)]
        for i, j in _pairs(len(cons), r.spreads):
            sym = f"{_symbol(r.root, cons[i])}-{_symbol(r.root, cons[j])}"
            out.append((self.ids.get(("s", cons[i], cons[j]), sym, first, day), r.outrights))
        return out

    def lines_1h(self, day: dt.date) -> list[str]:
        base = (day - dt.date(1970, 1, 1)).days * DAY_S
        inst = self.instruments(day)
        p = day.toordinal() % self.phases
        return [self.tails[(p, h, rank)] % ((base + h * 3600) * NS, iid) for h in self.r.hours for iid, rank in inst]

    def lines_1d(self, day: dt.date) -> list[str]:
        base = (day - dt.date(1970, 1, 1)).days * DAY_S
        inst = self.instruments(day)
        offs = sorted({h // 24 for h in self.r.hours})
        p = day.toordinal() % self.phases
        return [self.daily[(p, off, rank)] % ((base + off * DAY_S) * NS, iid) for off in offs for iid, rank in inst]


def _sessions(r: Root, start: dt.date, end: dt.date) -> list[dt.date]:
    return calendars.session_dates(r.root, start, end)


def _write(path: Path, lines: list[str]) -> int:
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    return len(text)


def generate(scratch: Path, shape: Shape) -> Drive:
    """Write the drive into scratch/drive (see the module doc); returns what it holds."""
    inbox = scratch / "drive"
    inbox.mkdir(parents=True)
    drive = Drive(inbox, [], [], [], 0, 0, {}, {}, shape)
    stamp = f"{shape.end:%Y%m%d}"
    for n, r in enumerate(shape.roots):
        days = _sessions(r, r.start, shape.end)
        days = days[len(days) - max(1, round(len(days) * shape.fraction)):]
        ids = _Ids(100_000 * (n + 1))
        w = _Writer(r, ids)
        folder = inbox / f"GLBX-{stamp}-{NOT_REAL}-{r.root}1H"
        folder.mkdir()
        drive.folders.append(folder)
        if r.files is None:
            groups = [[d] for d in days]
        else:
            k = max(1, round(r.files * shape.fraction))
            size = -(-len(days) // k)
            groups = [days[i:i + size] for i in range(0, len(days), size)]
        rows = 0
        for g in groups:
            name = f"glbx-mdp3-{g[0]:%Y%m%d}" + ("" if len(g) == 1 and r.files is None else f"-{g[-1]:%Y%m%d}")
            lines = [line for d in g for line in w.lines_1h(d)]
            path = folder / f"{name}.ohlcv-1h.json"
            drive.bytes += _write(path, lines)
            drive.files_1h.append(path)
            rows += len(lines)
        first = days[0] + dt.timedelta(days=min(r.hours) // 24)
        ids.write(folder, first, days[-1], f"{r.root}.FUT")
        if r.range_1d:
            f1d = inbox / f"GLBX-{stamp}-{NOT_REAL}-{r.root}1D"
            f1d.mkdir()
            drive.folders.append(f1d)
            lines = [line for d in days for line in w.lines_1d(d)]
            path = f1d / f"glbx-mdp3-{days[0]:%Y%m%d}-{days[-1]:%Y%m%d}.ohlcv-1d.json"
            drive.bytes += _write(path, lines)
            drive.files_1d.append(path)
            rows += len(lines)
            ids.write(f1d, first, days[-1], f"{r.root}.FUT")
        drive.rows += rows
        drive.rows_by_root[r.root] = rows
        drive.last_session[r.root] = days[-1]
    return drive


def add_new_day(drive: Drive) -> tuple[list[Path], int]:
    """The daemon's next day: per root, a new batch folder with one daily ohlcv-1h file of the
    next session date (same instruments, ids and symbols as the drive's folder). Returns the
    new files and their record count."""
    files, rows = [], 0
    for n, r in enumerate(drive.shape.roots):
        last = drive.last_session[r.root]
        day = _sessions(r, last + dt.timedelta(days=1), last + dt.timedelta(days=10))[0]
        ids = _Ids(100_000 * (n + 1))
        old = json.loads((drive.root / f"GLBX-{drive.shape.end:%Y%m%d}-{NOT_REAL}-{r.root}1H" / "symbology.json").read_text())
        # Keep the drive's ids: a symbol's id is the same in every request.
        for symbol, spans in old["result"].items():
            for s in spans:
                ids.spans.setdefault((symbol, int(s["s"])), [dt.date.fromisoformat(s["d0"])] * 2)
        w = _Writer(r, ids)
        known = {}
        for (symbol, iid), _span in ids.spans.items():
            known[symbol] = iid
        w.ids = _KnownIds(known, ids)
        folder = drive.root / f"GLBX-{day:%Y%m%d}-{NOT_REAL}-{r.root}1H-NEWDAY"
        folder.mkdir()
        lines = w.lines_1h(day)
        path = folder / f"glbx-mdp3-{day:%Y%m%d}.ohlcv-1h.json"
        _write(path, lines)
        fresh = _Ids(0)
        for (symbol, iid), (d0, d1) in w.ids.used.items():
            fresh.spans[(symbol, iid)] = [d0, d1]
        fresh.write(folder, day + dt.timedelta(days=min(r.hours) // 24), day, f"{r.root}.FUT")
        files.append(path)
        rows += len(lines)
        drive.last_session[r.root] = day
    return files, rows


class _KnownIds:
    """Ids of symbols the drive already has (new contracts get fresh ids); records the day's spans."""

    def __init__(self, known: dict[str, int], base: _Ids) -> None:
        self.known, self.base, self.used = known, base, {}
        self.next = max([*known.values(), base.next]) + 1

    def get(self, key: tuple, symbol: str, first: dt.date, day: dt.date) -> int:
        iid = self.known.get(symbol)
        if iid is None:
            iid = self.known[symbol] = self.next
            self.next += 1
        self.used[(symbol, iid)] = [first, day]
        return iid
