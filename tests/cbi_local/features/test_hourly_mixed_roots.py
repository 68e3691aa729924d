"""Regression (issue 17): one root with 1h bars (ES, the real ESH1 sample) beside a root whose
front contracts have none (ZL) must give ES its hourly sessions and ZL none, not a crash."""

from __future__ import annotations

from pathlib import Path

import databento as db
import polars as pl

from cbi_local.features.build import hourly_sessions


def test_hourly_sessions_with_a_root_without_1h_bars(sample_data: Path) -> None:
    store = db.DBNStore.from_file(sample_data / "databento/GLBX.MDP3/test_data.ohlcv-1h.dbn.zst")
    df = pl.from_pandas(store.to_df(price_type="float", pretty_ts=True).reset_index())
    pairs = pl.DataFrame({"pair": [0, 1], "root": ["ES", "ZL"], "contract": ["ESH1", "ZLF1"]},
                         schema={"pair": pl.UInt32, "root": pl.String, "contract": pl.String})
    bars = df.select(pl.lit(0, pl.UInt32).alias("pair"), pl.col("ts_event").dt.replace_time_zone(None).dt.cast_time_unit("us"),
                     "open", "high", "low", "close", pl.col("volume").cast(pl.Int64))
    out = hourly_sessions(bars, pairs)
    assert out["root"].to_list() == ["ES"]  # ZL has no 1h bars: no hourly session, and no error
    assert out["_vol_1h"].to_list() == [int(df["volume"].sum())]
