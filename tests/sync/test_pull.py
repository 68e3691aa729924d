"""Pull and diff: per-partition fingerprints decide; only differing partitions move.

Weather and CFTC are written in BigQuery by cloud jobs (sync='pull'). Here BigQuery is seeded
once with the warehouse's rows (the real legacy exports, as in production), then changed out of
band the way a cloud job's correction would change it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import data_contracts as dc
from cbi_local import warehouse
from cbi_local.features import build_features
from cbi_local.training import TrainOptions, train
from data_contracts import to_bigquery
from data_contracts.to_duckdb import table_ref
from sync.bigquery.client import make_client
from sync.bigquery.layout import ensure_layout
from sync.pull import diff, pull

from .conftest import copy_home, count, jobs_of, local_count, run_cli

WEATHER = "raw_intelligence.weather_daily"
CFTC = "raw_intelligence.cftc_cot"


def seed(s, client, fqn: str, tmp_path) -> None:
    """BigQuery gets the warehouse's rows of `fqn` (one load job)."""
    from google.cloud import bigquery

    ensure_layout(client, s.bq_project, s.bq_location)
    c = dc.get(fqn)
    path = tmp_path / f"{fqn}.parquet"
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        con.execute(f"COPY (SELECT * FROM {table_ref(c)}) TO '{path}' (FORMAT parquet)")
    config = bigquery.LoadJobConfig(source_format="PARQUET", schema=to_bigquery.schema(c), write_disposition="WRITE_TRUNCATE")
    with open(path, "rb") as fh:
        client.load_table_from_file(fh, f"{s.bq_project}.{fqn}", job_config=config).result()


def _diff(s, tables):
    with warehouse.open_warehouse(s.warehouse_path) as con:
        return {d.table: d for d in diff(con, make_client(s), s, tables)}


def _pull(s, tables=None, prune=False):
    with warehouse.open_warehouse(s.warehouse_path) as con:
        return {t.table: t for t in pull(con, make_client(s), s, tables, prune=prune).tables}, None


@pytest.fixture
def seeded(sample_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(sample_template, tmp_path / "home"))
    seed(s, client, WEATHER, tmp_path)
    seed(s, client, CFTC, tmp_path)
    return s


def _one_weather_row(s):
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        return con.execute(
            f"SELECT station_id, date, temp_max FROM {WEATHER} WHERE temp_max IS NOT NULL ORDER BY date DESC, station_id LIMIT 1"
        ).fetchall()[0]


def test_pull_after_an_out_of_band_change_fetches_only_that_partition(seeded, client):
    s = seeded
    diffs = _diff(s, [WEATHER, CFTC])
    assert all(d.ok for d in diffs.values()) and diffs[WEATHER].count("equal") > 1
    first, _ = _pull(s)
    assert first[WEATHER].downloaded_partitions == [] and first[CFTC].downloaded_partitions == []

    station, day, temp = _one_weather_row(s)
    client.query(
        f"UPDATE `{s.bq_project}.{WEATHER}` SET temp_max = temp_max + 1.5 WHERE station_id = '{station}' AND date = '{day}'"
    ).result()
    d = _diff(s, [WEATHER])[WEATHER]
    assert [(p.partition, p.status) for p in d.partitions if p.status != "equal"] == [(str(day.year), "differ")]

    before = local_count(s.home, WEATHER)
    with warehouse.open_warehouse(s.warehouse_path) as con:
        report = pull(con, make_client(s), s, [WEATHER])
    (t,) = report.tables
    assert t.downloaded_partitions == [str(day.year)]
    year_rows = local_count(s.home, f"{WEATHER} WHERE year(date) = {day.year}")
    assert t.rows_downloaded == year_rows  # only that year's rows crossed the network
    downloads = [j for j in jobs_of(client, report.run_id) if j.labels.get("cbi_step") == "download"]
    assert len(downloads) == 1 and f"DATE '{day.year}-01-01'" in downloads[0].query and f"DATE '{day.year + 1}-01-01'" in downloads[0].query
    assert local_count(s.home, WEATHER) == before == count(client, WEATHER)
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        (new,) = con.execute(f"SELECT temp_max FROM {WEATHER} WHERE station_id = ? AND date = ?", [station, day]).fetchall()[0]
    assert new == pytest.approx(temp + 1.5)
    assert _diff(s, [WEATHER])[WEATHER].ok


def test_diff_exit_codes_and_missing_partitions(seeded, client):
    s = seeded
    ok = run_cli(s, "sync", "diff", WEATHER, CFTC, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] is True
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        (year,) = con.execute(f"SELECT min(year(report_date)) FROM {CFTC}").fetchall()[0]
    client.query(f"DELETE FROM `{s.bq_project}.{CFTC}` WHERE EXTRACT(YEAR FROM report_date) = {year}").result()
    bad = run_cli(s, "sync", "diff", CFTC, "--json")
    assert bad.returncode == 1
    (table,) = json.loads(bad.stdout)["tables"]
    assert [(p["partition"], p["status"]) for p in table["partitions"]] == [(str(year), "missing_bigquery")]
    # BigQuery lost a year: pull reports it and keeps the local rows unless told to prune.
    kept, _ = _pull(s, [CFTC])
    assert kept[CFTC].kept_local_only == [str(year)] and kept[CFTC].rows_deleted == 0
    pruned, _ = _pull(s, [CFTC], prune=True)
    assert pruned[CFTC].rows_deleted > 0
    assert _diff(s, [CFTC])[CFTC].ok and local_count(s.home, CFTC) == count(client, CFTC)


def test_pull_of_a_table_missing_in_bigquery_keeps_local_data(sample_template, tmp_path, make_settings):
    s = make_settings(copy_home(sample_template, tmp_path / "home"))
    before = local_count(s.home, WEATHER)
    report, _ = _pull(s, [WEATHER])
    assert report[WEATHER].bigquery_table_exists is False
    assert local_count(s.home, WEATHER) == before


@pytest.mark.parametrize("fault", ["pull_plan", "download", "replace"])
def test_pull_killed_after_each_step_then_rerun_is_exact(fault, seeded, client):
    s = seeded
    station, day, _ = _one_weather_row(s)
    client.query(
        f"UPDATE `{s.bq_project}.{WEATHER}` SET precip_mm = COALESCE(precip_mm, 0) + 2 WHERE station_id = '{station}' AND date = '{day}'"
    ).result()
    killed = run_cli(s, "sync", "pull", WEATHER, CBI_SYNC_FAULT=f"after:{fault}")
    assert killed.returncode == -9, killed.stderr[-2000:]
    rerun = run_cli(s, "sync", "pull", WEATHER, "--json")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert _diff(s, [WEATHER])[WEATHER].ok
    assert local_count(s.home, WEATHER) == count(client, WEATHER)
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        dupes = con.execute(f"SELECT count(*) - count(DISTINCT (station_id, date)) FROM {WEATHER}").fetchall()[0][0]
    assert dupes == 0


def test_after_a_push_local_equals_bigquery(registry_template, tmp_path, make_settings):
    from sync.push import push

    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    with warehouse.open_warehouse(s.warehouse_path) as con:
        assert push(con, make_client(s), s).ok
    result = run_cli(s, "sync", "diff", "regimes.regime_calendar", "regimes.regime_weights")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "regimes.regime_calendar" in result.stdout


RUNS = "training.model_runs"


@pytest.fixture(scope="module")
def trained_template(sample_template, tmp_path_factory) -> Path:
    """The sample warehouse plus real model runs: the research ZL matrix, trained at one horizon."""
    home = copy_home(sample_template, tmp_path_factory.mktemp("sync-trained"))
    with warehouse.open_warehouse(home / "warehouse.duckdb") as con:
        assert build_features(con, ["ZL"], "yahoo_historical").ok
        report = train(con, home, TrainOptions(horizons=["1w"], matrix_source="yahoo_historical"))
    assert report["horizons"], report
    return home / "warehouse.duckdb"


def test_model_runs_are_compared_by_value_arrays_included(trained_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(trained_template, tmp_path / "home"))
    seed(s, client, RUNS, tmp_path)
    # Both engines build the same canonical text of the REPEATED columns (feature names, per-fold
    # metrics, feature importance), so the runs compare equal by value, not by key alone.
    d = _diff(s, [RUNS])[RUNS]
    assert d.comparable and d.ok and d.count("equal") == 1, d.as_dict()
    with warehouse.open_warehouse(s.warehouse_path) as con:
        # Same run, same keys, same counts: only the order of one array changes.
        con.execute(f"UPDATE {RUNS} SET feature_importance = list_reverse(feature_importance)")
    d = _diff(s, [RUNS])[RUNS]
    assert d.count("differ") == 1 and d.partitions[0].local_rows == d.partitions[0].bigquery_rows, d.as_dict()
