"""Benchmark: `cbi train` on the real ZL research matrix (yahoo_historical, 2000-2025).

    .venv/bin/python bench/train/run.py [--folds 3] [--repeat 2] [--keep]

Everything is written into a fresh temporary directory (never a user's warehouse); it is
deleted at the end unless --keep. No data is generated: the warehouse is built from the real
sample data (legacy exports, FRED, registry) and `build_features(..., "yahoo_historical")`,
which gives every real ZL session there is (6,227 rows, 2000-11-13 .. 2025-11-05).

Measured: the whole `train` call (load the matrix, plan the folds, per fold the point + P10/
P50/P90 models with regime weights and again without, the final four models per horizon,
forecasts, model files, the run records and the batch's health gate) for all five horizons.
Baseline, measured in the same run on the same rows: "one fit" = a single LightGBM L2 point
model (same params and rounds) on every labelled 1m row. Ratios are train / one fit (medians
of --repeat runs). Goal: the five horizons in under 60 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench._common import release, scratch_dir  # noqa: E402

from cbi_local import pipeline, warehouse  # noqa: E402
from cbi_local.features import build_features  # noqa: E402
from cbi_local.training import TrainOptions, load_frame, train  # noqa: E402
from cbi_local.training.model import DEFAULT_ROUNDS, fit, lgb_params  # noqa: E402


def sample_data() -> Path:
    return Path(os.environ.get("CBI_SAMPLE_DATA") or REPO.parent / "shared" / "data").resolve()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    tmp = scratch_dir("train")
    print(f"temp dir (deleted at the end unless --keep): {tmp}")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start (other processes share them)")
    try:
        data = sample_data()
        warehouse.init(tmp / "warehouse.duckdb")
        with warehouse.open_warehouse(tmp / "warehouse.duckdb") as con:
            t = time.perf_counter()
            assert pipeline.migrate_legacy_dir(con, data / "legacy_bq")["ok"]
            assert pipeline.ingest_paths(con, [data / "fred", data / "registry"])["ok"]
            build_features(con, ["ZL"], "yahoo_historical")
            frame = load_frame(con, "ZL", "yahoo_historical")
            print(f"\n[real data: ZL research matrix built in {time.perf_counter() - t:.1f}s: {frame.rows:,} rows "
                  f"{frame.dates[0]} .. {frame.dates[-1]}, {len(frame.feature_names)} features, "
                  f"{len({r for r in frame.regimes if r})} regimes]")

            lab = frame.labelled("1m")
            params = lgb_params(42)
            fits = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                fit(frame.X[lab], frame.targets["1m"][lab], frame.weights[lab], params, DEFAULT_ROUNDS,
                    frame.feature_names, ("point",))
                fits.append(time.perf_counter() - t)
            one = statistics.median(fits)
            print(f"  one fit (L2 point, {lab.size:,} rows, {DEFAULT_ROUNDS} rounds)   {one:6.2f} s   (baseline)")

            for weights in (True, False):
                times, report = [], None
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    report = train(con, tmp, TrainOptions(matrix_source="yahoo_historical", folds=args.folds,
                                                          weights=weights))
                    times.append(time.perf_counter() - t)
                med = statistics.median(times)
                per_fold = 8 if weights else 4
                n_models = 5 * (args.folds * per_fold + 4)
                label = "weighted + unweighted" if weights else "--no-weights"
                print(f"  train 5 horizons x (point + P10/P50/P90), {args.folds} folds, {label:21s} "
                      f"{med:6.2f} s   {med / one:5.1f}x   ({n_models} models; goal < 60 s: "
                      f"{'met' if med < 60 else 'NOT met'})")
                assert report is not None
                print("    per horizon: " + ", ".join(f"{h} {r['seconds']:.1f}s" for h, r in report["horizons"].items()))
        print(f"  load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        release(tmp, args.keep)


if __name__ == "__main__":
    main()
