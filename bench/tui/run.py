"""Benchmark: time from launching the TUI to a painted Overview on a warehouse with 50M 1-minute bars.

    .venv/bin/python bench/tui/run.py [--rows 50000000] [--repeat 3] [--keep]

Scale data is GENERATED inside this benchmark into a fresh temporary directory (a new warehouse there,
never a user's) with ONE DuckDB `range()` insert into market_data.databento_futures_ohlcv_1m: one bar
per minute from 1990-01-01 under made-up symbols, synthetic prices. It is NOT real market data.

Timed, best of --repeat:
  (a) tui        in process: CbiApp(home) started headless (App.run_test) until the Overview has painted
                 its first read (row counts of every table, latest checks, batches, sync, heartbeat)
  (b) launch     a new Python process: import Textual + the app, start it, paint the Overview, exit
  (c) read       tui.data.overview(): the Overview's one short read-only read alone
  (d) scan       baseline: SELECT count(close), sum(volume) over the bar table (what painting would
                 cost if counts came from a scan instead of DuckDB's row-group metadata)
Ratios are printed against (d), the named baseline. Goal: (a) and (b) <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench._common import release, scratch_dir  # noqa: E402

import duckdb  # noqa: E402

import data_contracts as dc  # noqa: E402
from cbi_local import warehouse  # noqa: E402
from data_contracts.to_duckdb import quote, table_ref  # noqa: E402

BARS = dc.get("market_data.databento_futures_ohlcv_1m")
# Per-column expressions over i = range(); columns not named here get a generic value by type.
EXPR = {
    "ts_event": "TIMESTAMPTZ '1990-01-01 00:00:00+00' + to_minutes(i)",
    "symbol": "'BENCH' || (i % 8)::VARCHAR",
    "root": "'BENCH'",
    "open": "100 + (i % 997) / 100.0",
    "high": "101 + (i % 997) / 100.0",
    "low": "99 + (i % 997) / 100.0",
    "close": "100.5 + (i % 997) / 100.0",
    "volume": "i % 500",
    "source": "'bench-generated'",
    "batch_id": "'bench'",
}
BY_TYPE = {"STRING": "NULL", "INT64": "i", "FLOAT64": "(i % 1000)::DOUBLE", "TIMESTAMP": "now()", "DATE": "current_date"}


def generate(home: Path, rows: int) -> float:
    path = home / "warehouse.duckdb"
    warehouse.init(path)
    cols = BARS.column_names
    exprs = ", ".join(f"{EXPR.get(c.name, BY_TYPE[c.type])} AS {quote(c.name)}" for c in BARS.columns)
    t0 = time.perf_counter()
    with warehouse.open_warehouse(path) as con:
        con.execute(f"INSERT INTO {table_ref(BARS)} ({', '.join(map(quote, cols))}) SELECT {exprs} FROM range({int(rows)}) t(i)")
        con.execute("CHECKPOINT")
    return time.perf_counter() - t0


async def _tui_once(home: Path) -> float:
    from tui.app import CbiApp

    t0 = time.perf_counter()
    app = CbiApp(home, refresh_every=0)
    async with app.run_test(size=(100, 30)) as pilot:
        while app.last_overview is None:
            await pilot.pause(0.005)
        elapsed = time.perf_counter() - t0
    return elapsed


LAUNCH = """
import asyncio, sys, time
t0 = time.perf_counter()
from pathlib import Path
from tui.app import CbiApp
async def main():
    app = CbiApp(Path(sys.argv[1]), refresh_every=0)
    async with app.run_test(size=(100, 30)) as pilot:
        while app.last_overview is None:
            await pilot.pause(0.005)
        print(time.perf_counter() - t0, sum(s.rows or 0 for s in app.last_overview.tables))
asyncio.run(main())
"""


def best(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=50_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    tmp = scratch_dir("tui")
    home = tmp / "home"
    print(f"GENERATED data (not real market data): {a.rows:,} synthetic 1-minute bars in a new warehouse under {tmp}")
    try:
        gen = generate(home, a.rows)
        path = home / "warehouse.duckdb"
        print(f"generated in {gen:.1f} s; file {path.stat().st_size / 2**30:.2f} GiB")
        from tui import data

        def read() -> float:
            t0 = time.perf_counter()
            ov = data.overview(path)
            assert sum(s.rows or 0 for s in ov.tables) == a.rows
            return time.perf_counter() - t0

        def scan() -> float:
            t0 = time.perf_counter()
            con = duckdb.connect(str(path), read_only=True)
            n = con.execute(f"SELECT count(close), sum(volume) FROM {table_ref(BARS)}").fetchall()[0][0]
            con.close()
            assert n == a.rows
            return time.perf_counter() - t0

        def tui() -> float:
            return asyncio.run(_tui_once(home))

        def launch() -> float:
            out = subprocess.run([sys.executable, "-c", LAUNCH, str(home)], cwd=REPO, capture_output=True, text=True, check=True)
            secs, total = out.stdout.split()
            assert int(total) == a.rows
            return float(secs)

        def launch_wall() -> float:
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", LAUNCH, str(home)], cwd=REPO, capture_output=True, text=True, check=True)
            return time.perf_counter() - t0

        d = best(scan, a.repeat)
        c = best(read, a.repeat)
        t = best(tui, a.repeat)
        b = best(launch, a.repeat)
        w = best(launch_wall, a.repeat)
        print(f"(a) tui      launch -> painted overview, in process        {t:7.3f} s   {t / d:6.2f}x scan   goal <= 1 s: {'OK' if t <= 1 else 'MISSED'}")
        print(f"(b) launch   new process, imports included -> painted    {b:7.3f} s   {b / d:6.2f}x scan   goal <= 1 s: {'OK' if b <= 1 else 'MISSED'}")
        print(f"             (same, wall clock incl. interpreter start+exit {w:.3f} s)")
        print(f"(c) read     the overview's one read-only read             {c:7.3f} s   {c / d:6.2f}x scan")
        print(f"(d) scan     baseline: count(close), sum(volume) full scan {d:7.3f} s   1.00x")
    finally:
        release(tmp, a.keep)


if __name__ == "__main__":
    main()
