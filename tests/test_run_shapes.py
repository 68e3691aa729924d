"""`cbi run --no-push` on many warehouse shapes, built from the real samples by hypothesis.

A shape is a subset of the real inputs: Databento schemas (1h bars with or without daily bars,
definitions, statistics, none), FRED series, the regime registry, legacy BigQuery exports (the
research rows). Whatever the mix, every step of the job ends reported — done, skipped with its
reason, or a problem found — and none raises; a second run changes nothing.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from cbi_local import pipeline, warehouse
from cbi_local.config import Settings
from cbi_local.run import run_job, steps

SAMPLE = Settings().sample_data
DBN = sorted(p.name for p in (SAMPLE / "databento" / "GLBX.MDP3").glob("*.dbn.zst"))
FRED = sorted(p.name for p in (SAMPLE / "fred").glob("*.csv") if p.name != "metadata.csv")
LEGACY = sorted(p.name for p in (SAMPLE / "legacy_bq").glob("*.parquet"))

shapes = st.fixed_dictionaries({
    "dbn": st.sets(st.sampled_from(DBN), max_size=4),
    "fred": st.sets(st.sampled_from(FRED), max_size=3),
    "registry": st.booleans(),
    "legacy": st.sets(st.sampled_from(LEGACY), max_size=3),
    "train": st.booleans(),
})


def _inputs(base: Path, shape: dict) -> tuple[list[Path], Path | None]:
    """Copies of the chosen real files laid out as the user's drive holds them."""
    paths: list[Path] = []
    if shape["dbn"]:
        folder = base / "inbox" / "GLBX-20201228-SAMPLE"
        folder.mkdir(parents=True)
        for name in shape["dbn"]:
            shutil.copy(SAMPLE / "databento" / "GLBX.MDP3" / name, folder / name)
        paths.append(folder)
    if shape["fred"]:
        folder = base / "inbox" / "fred"
        folder.mkdir(parents=True)
        for name in [*shape["fred"], "metadata.csv"]:
            shutil.copy(SAMPLE / "fred" / name, folder / name)
        paths.append(folder)
    if shape["registry"]:
        shutil.copytree(SAMPLE / "registry", base / "inbox" / "registry")
        paths.append(base / "inbox" / "registry")
    legacy = None
    if shape["legacy"]:
        legacy = base / "legacy"
        legacy.mkdir()
        for name in shape["legacy"]:
            shutil.copy(SAMPLE / "legacy_bq" / name, legacy / name)
    return paths, legacy


def _shape(dbn=(), fred=(), registry=False, legacy=(), train=False) -> dict:
    return {"dbn": set(dbn), "fred": set(fred), "registry": registry, "legacy": set(legacy), "train": train}


# The shapes the issue names, always tried, before hypothesis's own.
@example(shape=_shape())  # an empty warehouse
@example(shape=_shape(fred=["DGS10.csv", "VIXCLS.csv"]))  # FRED only
@example(shape=_shape(legacy=["forecasting_data_warehouse.soybean_oil_prices.parquet"], train=True))  # research rows only
# One root (ES) with 1h bars, another (ZL, from the legacy rows) with none: the demo's warehouse.
@example(shape=_shape(dbn=["test_data.ohlcv-1h.dbn.zst", "test_data.ohlcv-1d.dbn.zst", "test_data.definition.dbn.zst"],
                      fred=["DGS10.csv"], registry=True, train=True,
                      legacy=["forecasting_data_warehouse.soybean_oil_prices.parquet"]))
@example(shape=_shape(dbn=["test_data.ohlcv-1d.dbn.zst"]))  # a root with one day, no 1h bars
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(shape=shapes)
def test_every_shape_runs_to_the_end_with_every_step_reported(shape):
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        paths, legacy = _inputs(base, shape)
        s = Settings(home=base / "home")
        if legacy is not None:  # the research rows arrive by `cbi migrate-legacy` first
            warehouse.init(s.warehouse_path)
            with warehouse.open_warehouse(s.warehouse_path) as con:
                pipeline.migrate_legacy_dir(con, legacy)
        for attempt in ("first", "second"):
            summary, error = run_job(s, Console(file=io.StringIO()), paths, push=False, train=shape["train"])
            assert error is None, (attempt, shape, {k: v.get("error") for k, v in summary["steps"].items()})
            expected = [name for name, _ in steps(push=False, train=shape["train"])]
            assert list(summary["steps"]) == expected, (attempt, shape)
            for name, result in summary["steps"].items():
                assert "error" not in result, (attempt, name, shape, result)
        assert not summary["changed"], (shape, summary["changes"])
