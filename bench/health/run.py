"""Benchmark: health over a 10-million-row bar table vs a bare scan of the same table.

    .venv/bin/python bench/health/run.py [--rows 10000000] [--repeat 3] [--keep]

Scale data is GENERATED inside this benchmark into a fresh temporary directory (a new warehouse there,
never a user's): the four real ES ohlcv-1m bars of the shared sample are replicated into
market_data.databento_futures_ohlcv_1m with shifted timestamps (one per minute) across made-up
instrument symbols. The replicated rows are NOT real market data.

Timed on the same table, best of --repeat runs:
  (a) health     cbi_local.health.check_table: every rule of the contract in ONE aggregate query
                 (the queries are counted: 1 when every rule passes; samples only for failures)
  (b) count      baseline: SELECT COUNT(*)
  (c) scan       baseline: a full scan of every column the rules read (min/max/count/sum per column)
  (+) parts      the rules other than unique_key in one query; the unique_key measure alone, portable
                 key text vs DuckDB's struct_pack (what the BigQuery-compatible text costs)
  (d) coverage   cbi_local.coverage over the same table (hour buckets vs the CME equity calendar)
Ratios are printed against (c), the named baseline; (b) is shown for scale. Timings on a shared
machine are noisy: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench._common import release, scratch_dir  # noqa: E402

import databento as db  # noqa: E402

import data_contracts as dc  # noqa: E402
from cbi_local import health, warehouse  # noqa: E402

CONTRACT = dc.get("market_data.databento_futures_ohlcv_1m")


def sample_file() -> Path:
    base = Path(os.environ.get("CBI_SAMPLE_DATA") or REPO.parent / "shared" / "data").resolve()
    return base / "databento" / "GLBX.MDP3" / "test_data.ohlcv-1m.dbn.zst"


def generate(con, rows: int, instruments: int = 20) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        real = db.DBNStore.from_file(sample_file()).to_df().reset_index()
    real = real[["open", "high", "low", "close", "volume"]].astype({"volume": "int64"})
    con.register("real_bars", real)
    per = rows // instruments
    con.execute(
        f"""
        INSERT INTO market_data.databento_futures_ohlcv_1m
            (ts_event, symbol, root, instrument_id, publisher_id, open, high, low, close, volume, source, batch_id, ingested_at)
        SELECT TIMESTAMPTZ '2010-06-06 22:00:00+00' + to_minutes(CAST(i % {per} AS BIGINT)),
               'ES' || chr(65 + CAST(i // {per} AS INTEGER)) || 'BENCH', 'ES', CAST(i // {per} AS INTEGER), 1,
               r.open, r.high, r.low, r.close, r.volume, 'databento', 'bench-generated', now()
        FROM range({per * instruments}) t(i)
        JOIN (SELECT *, row_number() OVER () - 1 AS k FROM real_bars) r ON r.k = i % 4
        """
    )
    con.unregister("real_bars")


class Counting:
    """A connection proxy counting the queries check_table sends."""

    def __init__(self, con) -> None:
        self.con, self.queries = con, 0

    def execute(self, *a, **kw):
        self.queries += 1
        return self.con.execute(*a, **kw)


def best(fn, repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temp warehouse")
    args = ap.parse_args()
    tmp = scratch_dir("health")
    print(f"GENERATED data (not real market data): the 4 real ES 1m bars replicated to {args.rows:,} rows "
          f"in a temp warehouse {tmp} (deleted after the run unless --keep)")
    try:
        warehouse.init(tmp / "warehouse.duckdb")
        con = warehouse.connect(tmp / "warehouse.duckdb")
        t0 = time.perf_counter()
        generate(con, args.rows)
        n = con.execute(f"SELECT COUNT(*) FROM {CONTRACT.fqn}").fetchall()[0][0]
        print(f"generated {n:,} rows in {time.perf_counter() - t0:.1f}s; DuckDB threads: "
              f"{con.execute('SELECT current_setting(' + repr('threads') + ')').fetchall()[0][0]}")
        ref = CONTRACT.fqn
        cols = ["ts_event", "symbol", "root", "open", "high", "low", "close", "volume", "source", "batch_id"]
        scan_sql = "SELECT " + ", ".join(
            f"count({c}), min({c}), max({c})" for c in cols
        ) + f" FROM {ref}"
        today = con.execute(f"SELECT CAST(max(ts_event) AS DATE) FROM {ref}").fetchall()[0][0]  # freshness passes
        counting = Counting(con)
        results = health.check_table(counting, CONTRACT, today=today)  # warm-up + query count
        bad = [(r.rule, r.columns, r.status) for r in results if r.status != "pass"]
        print(f"health: {len(results)} checks in {counting.queries} quer{'y' if counting.queries == 1 else 'ies'}; "
              f"not passing: {bad or 'none'}")
        t_health, hs = best(lambda: health.check_table(con, CONTRACT, today=today), args.repeat)
        t_count, _ = best(lambda: con.execute(f"SELECT COUNT(*) FROM {ref}").fetchall(), args.repeat)
        t_scan, _ = best(lambda: con.execute(scan_sql).fetchall(), args.repeat)
        key = health.key_text(CONTRACT)
        t_key, _ = best(lambda: con.execute(f"SELECT COUNT(*) - COUNT(DISTINCT {key}) FROM {ref}").fetchall(), args.repeat)
        others = ", ".join(m.expr for m in health.measures(CONTRACT) if m.rule != "unique_key")
        t_others, _ = best(lambda: con.execute(f"SELECT COUNT(*), {others} FROM {ref}").fetchall(), args.repeat)
        t_struct, _ = best(lambda: con.execute(
            f"SELECT COUNT(*) - COUNT(DISTINCT struct_pack(symbol, ts_event)) FROM {ref}").fetchall(), args.repeat)
        from cbi_local.coverage import coverage

        cov_items: list = []
        t_cov, _ = best(lambda: cov_items.__setitem__(slice(None), coverage(
            con, roots=["ES"], schemas=("1m",), include_continuous=False, include_fred=False)), args.repeat)
        print(f"\nbest of {args.repeat} runs over {n:,} rows:")
        print(f"  (c) baseline full-column scan   {t_scan:8.3f}s   1.00x")
        print(f"  (b) SELECT COUNT(*)             {t_count:8.3f}s   {t_count / t_scan:5.2f}x of (c)")
        print(f"  (a) health, all {len(results)} rules        {t_health:8.3f}s   {t_health / t_scan:5.2f}x of (c)  "
              f"({n / t_health / 1e6:.1f} M rows/s; runs: {', '.join(f'{t:.2f}' for t in hs)}s, median {statistics.median(hs):.2f}s)")
        print(f"  (+) the other {len(results) - 1} rules alone     {t_others:8.3f}s   {t_others / t_scan:5.2f}x of (c)")
        print(f"  (+) unique_key, portable text   {t_key:8.3f}s   {t_key / t_scan:5.2f}x of (c)")
        print(f"  (+) unique_key, struct_pack     {t_struct:8.3f}s   {t_struct / t_scan:5.2f}x of (c)")
        c = cov_items[0]
        print(f"  (d) coverage of the table (ES)  {t_cov:8.3f}s   {t_cov / t_scan:5.2f}x of (c)  "
              f"({c.hours_present:,}/{c.hours_expected:,} hours, {c.outside:,} hour buckets outside sessions: "
              "the generated minutes run through weekends)")
        con.close()
    finally:
        release(tmp, args.keep)


if __name__ == "__main__":
    main()
