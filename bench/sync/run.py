"""Benchmark: sync parity check and re-push cost, against named baselines measured in the same run.

    .venv/bin/python bench/sync/run.py [--keep]

Data: the REAL samples (Databento, FRED, the regime registry, the legacy exports) ingested
into a fresh temporary warehouse, pushed to a local BigQuery emulator started for this run
(its data in the same temp dir). Nothing is generated and no user warehouse is touched.

Measured:
  (1) parity   `sync.pull.diff` over every pushed table (per-partition fingerprints computed
               in DuckDB and in BigQuery, compared; no differences expected)
      baseline SELECT COUNT(*) on both sides for the same tables (DuckDB, then one BigQuery
               query per table)                                        goal: ratio <= 3x
  (2) re-push  BigQuery jobs issued by a second `cbi sync push` with nothing new
      baseline jobs issued by the first push                            goal: 0 jobs
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench._common import release, scratch_dir  # noqa: E402

from cbi_local import pipeline, warehouse  # noqa: E402
from cbi_local.config import settings  # noqa: E402
from sync.bigquery.client import make_client  # noqa: E402
from sync.emulator import BigQueryEmulator  # noqa: E402
from sync.pull import diff  # noqa: E402
from sync.push import job_ids, push  # noqa: E402


def sample_data() -> Path:
    return Path(os.environ.get("CBI_SAMPLE_DATA") or REPO.parent / "shared" / "data").resolve()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions (best of)")
    args = ap.parse_args()
    tmp = scratch_dir("sync")
    print(f"bench/sync: real sample data into a TEMPORARY warehouse and emulator under {tmp} (no user warehouse touched)")
    try:
        src = sample_data()
        home = tmp / "home"
        reg = tmp / "registry"
        shutil.copytree(src / "registry", reg)
        warehouse.init(home / "warehouse.duckdb")
        with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
            pipeline.ingest_paths(con, [src / "databento" / "GLBX.MDP3", src / "fred", reg])
            pipeline.migrate_legacy_dir(con, src / "legacy_bq")
        with BigQueryEmulator(data_dir=tmp / "bq") as emu:
            s = settings(home).model_copy(update={"bq_endpoint": emu.endpoint, "bq_project": "cbi-bench"})
            client = make_client(s)
            with warehouse.open_warehouse(s.warehouse_path) as con:
                t0 = time.perf_counter()
                first = push(con, client, s)
                push_s = time.perf_counter() - t0
                assert first.ok, first.error
                first_jobs = len(job_ids(client, first.run_id))
                second = push(con, client, s)
                second_jobs = len(job_ids(client, second.run_id))

                tables = sorted({t.table for b in first.batches for t in b.targets if t.chunks})
                rows = sum(con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in tables)

                def baseline() -> None:
                    for t in tables:
                        local = con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                        remote = list(client.query(f"SELECT COUNT(*) FROM `{s.bq_project}.{t}`").result())[0][0]
                        assert local == remote, (t, local, remote)

                def parity() -> None:
                    diffs = diff(con, client, s, tables)
                    bad = [d.table for d in diffs if not d.ok]
                    assert not bad, f"differences in {bad}"

                def best(fn) -> float:
                    times = []
                    for _ in range(args.repeat):
                        t = time.perf_counter()
                        fn()
                        times.append(time.perf_counter() - t)
                    return min(times)

                base_s, parity_s = best(baseline), best(parity)
                partitions = sum(d.count("equal") for d in diff(con, client, s, tables))
        print(f"pushed {len(tables)} tables, {rows:,} rows, in {push_s:.1f}s with {first_jobs} BigQuery jobs (emulator)")
        print(f"(1) parity check, {len(tables)} tables / {partitions:,} partitions, no differences: {parity_s:.2f}s")
        print(f"    baseline COUNT(*) on both sides: {base_s:.2f}s")
        print(f"    ratio parity / COUNT(*) = {parity_s / base_s:.2f}x (goal <= 3x)")
        print(f"(2) re-push with nothing new: {second_jobs} jobs; baseline first push: {first_jobs} jobs")
        print(f"    ratio re-push / first push = {second_jobs / first_jobs:.2f} (goal 0)")
        print("note: times are the local emulator's (DuckDB behind the BigQuery API), not BigQuery's")
    finally:
        release(tmp, args.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
