"""Push: the real samples into the emulator, in chunks of <= 4,000 partitions, exactly once.

Every assertion is about BigQuery's answer (COUNT(*), fingerprints computed by the emulator)
or about the jobs the push issued (client.list_jobs, filtered by the run's job-id prefix).
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from google.api_core.exceptions import NotFound

import data_contracts as dc
from cbi_local import pipeline, warehouse
from sync import push as push_mod
from sync.bigquery.client import make_client
from sync.journal import SyncBusy, sync_lock
from sync.pull import diff

from .conftest import CALENDAR_DAYS, CALENDAR_MONTHS, copy_home, count, ingest_registry, jobs_of, local_count, merge_days, run_cli

PUSHED = [c.fqn for c in dc.CONTRACTS if c.sync == "push"]


def _push(s, **kw):
    with warehouse.open_warehouse(s.warehouse_path) as con:
        return push_mod.push(con, make_client(s), s, **kw)


def _diff(s, tables=None):
    with warehouse.open_warehouse(s.warehouse_path) as con:
        return {d.table: d for d in diff(con, make_client(s), s, tables)}


def _batches(s) -> dict[str, str]:
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        return dict(con.execute("SELECT batch_id, status FROM ops.batches").fetchall())


CHUNK = 100  # partitions per job in the chunking test: the monthly calendar (349) then needs four


def test_push_samples_in_chunks_then_repush_is_free(sample_template, tmp_path, make_settings, client):
    # BigQuery's 4,000 partitions per job is far above any sample table's partitions now that the
    # calendar is monthly, so the chunking is shown with a smaller limit (CBI_BQ_MAX_PARTITIONS_PER_JOB).
    s = make_settings(copy_home(sample_template, tmp_path / "home")).model_copy(update={"bq_max_partitions_per_job": CHUNK})
    report = _push(s)
    assert report.ok, report.error
    assert set(_batches(s).values()) == {"pushed"}

    jobs = jobs_of(client, report.run_id)
    merges = [j for j in jobs if j.job_type == "query" and j.query.lstrip().startswith("MERGE")]
    loads = [j for j in jobs if j.job_type == "load"]
    # The monthly calendar (349 partitions) needs four MERGEs of at most 100 months; their literal
    # filters cover 2000-01-01 to 2029-02-01 exactly once (parsed from the SQL, not from our plan).
    calendar = [j for j in merges if "regimes.regime_calendar`" in j.query]
    assert sorted(int(j.labels["cbi_partitions"]) for j in calendar) == [49, CHUNK, CHUNK, CHUNK]
    assert sum(merge_days(j.query) for j in calendar) == (dt.date(2029, 2, 1) - dt.date(2000, 1, 1)).days
    for j in merges:
        assert int(j.labels["cbi_partitions"]) <= CHUNK
    assert len(loads) == len(merges)  # one staging load per MERGE
    assert all(j.destination.dataset_id == push_mod.STAGING_DATASET for j in loads)

    # BigQuery equals the warehouse: counts, no duplicate keys, per-partition fingerprints.
    for fqn in PUSHED:
        contract = dc.get(fqn)
        local = local_count(s.home, fqn if not contract.push_only_where else f"{fqn} WHERE {contract.push_only_where}")
        assert count(client, fqn) == local, fqn
        if not local:
            continue
        keys = ", ".join(contract.primary_key)
        distinct = list(client.query(f"SELECT COUNT(*) FROM (SELECT DISTINCT {keys} FROM `{client.project}.{fqn}`)").result())[0][0]
        assert distinct == local, fqn
    assert count(client, "regimes.regime_calendar") == CALENDAR_DAYS
    diffs = _diff(s, PUSHED)
    assert all(d.ok for d in diffs.values()), {t: d.as_dict() for t, d in diffs.items() if not d.ok}
    # Local-only and pull tables were not pushed; no MES rows in the samples, so no private twin exists.
    assert count(client, "market_data.yahoo_quote_snapshots") == 0
    assert count(client, "raw_intelligence.weather_daily") == 0
    with pytest.raises(NotFound):
        client.get_table(f"{client.project}.market_data.databento_futures_ohlcv_1h_private")
    # Staging is gone, in BigQuery and on disk.
    assert list(client.list_tables(f"{client.project}.{push_mod.STAGING_DATASET}")) == []
    assert list((s.home / "sync" / "staging").glob("*")) == []

    again = _push(s)
    assert again.ok and again.batches == []
    assert jobs_of(client, again.run_id) == []


def test_changing_one_day_pushes_one_partition(sample_data, tmp_path, make_settings, client):
    home = tmp_path / "home"
    reg = ingest_registry(home, sample_data / "registry")
    s = make_settings(home)
    assert _push(s).ok
    # The user moves one day (2017-12-31) from pre_tradewar_2017 to tradewar_escalation_2018_2019.
    yaml_path = reg / "regime_weights.yaml"
    text = yaml_path.read_text()
    assert text.count("end_date: '2017-12-31'") == 1 and text.count("start_date: '2018-01-01'") == 1
    yaml_path.write_text(text.replace("end_date: '2017-12-31'", "end_date: '2017-12-30'").replace("start_date: '2018-01-01'", "start_date: '2017-12-31'"))
    with warehouse.open_warehouse(s.warehouse_path) as con:
        assert pipeline.ingest_paths(con, [reg])["ok"]

    report = _push(s)
    assert report.ok, report.error
    jobs = jobs_of(client, report.run_id)
    cal_loads = [j for j in jobs if j.job_type == "load" and j.labels.get("cbi_table") == "regimes__regime_calendar"]
    cal_merges = [j for j in jobs if j.job_type == "query" and j.query.lstrip().startswith("MERGE") and "regime_calendar`" in j.query]
    assert len(cal_loads) == 1 and len(cal_merges) == 1
    assert merge_days(cal_merges[0].query) == 31  # the day's month: the calendar is partitioned by month
    assert "DATE '2017-12-01' AND T.`date` < DATE '2018-01-01'" in cal_merges[0].query
    row = list(client.query(f"SELECT regime_name FROM `{client.project}.regimes.regime_calendar` WHERE date = '2017-12-31'").result())
    assert [r[0] for r in row] == ["tradewar_escalation_2018_2019"]
    assert count(client, "regimes.regime_calendar") == CALENDAR_DAYS
    assert all(d.ok for d in _diff(s, ["regimes.regime_calendar", "regimes.regime_weights"]).values())


def test_dry_run_plans_without_writing(registry_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    result = run_cli(s, "sync", "push", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    (batch,) = plan["batches"]
    cal = next(t for t in batch["targets"] if t["table"] == "regimes.regime_calendar")
    assert cal["batch_partitions"] == CALENDAR_MONTHS and cal["rows"] == CALENDAR_DAYS and cal["bytes"] > 0
    assert [c["partition_count"] for c in cal["chunks"]] == [CALENDAR_MONTHS]
    assert list(client.list_datasets()) == []  # nothing created
    assert set(_batches(s).values()) == {"validated"}
    text = run_cli(s, "sync", "push", "--dry-run")
    assert text.returncode == 0 and "regimes.regime_calendar" in text.stdout and f"{CALENDAR_DAYS:,}" in text.stdout


def test_a_held_lock_refuses_a_second_push(registry_template, tmp_path, make_settings):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    with sync_lock(s.home):
        with pytest.raises(SyncBusy):
            _push(s)
        result = run_cli(s, "sync", "push")
        assert result.returncode == 2 and "another" in result.stderr
    assert set(_batches(s).values()) == {"validated"}


def _assert_pushed_exactly(s, client) -> None:
    assert count(client, "regimes.regime_calendar") == CALENDAR_DAYS
    distinct = list(client.query(f"SELECT COUNT(DISTINCT date) FROM `{client.project}.regimes.regime_calendar`").result())[0][0]
    assert distinct == CALENDAR_DAYS
    assert count(client, "regimes.regime_weights") == local_count(s.home, "regimes.regime_weights")
    assert all(d.ok for d in _diff(s, ["regimes.regime_calendar", "regimes.regime_weights"]).values())
    assert set(_batches(s).values()) == {"pushed"}
    assert list(client.list_tables(f"{client.project}.{push_mod.STAGING_DATASET}")) == []


FAULTS = ["plan", "stage", "load", "merge", "merge:2", "verify", "drop_staging", "drop_staging:3", "mark_pushed"]


@pytest.mark.parametrize("fault", FAULTS)
def test_killed_after_each_step_then_rerun_is_exact(fault, registry_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    three = {"CBI_BQ_MAX_PARTITIONS_PER_JOB": "150"}  # the monthly calendar's 349 partitions in 3 chunks
    killed = run_cli(s, "sync", "push", CBI_SYNC_FAULT=f"after:{fault}", **three)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        last = con.execute("SELECT step FROM ops.sync_log ORDER BY finished_at DESC LIMIT 1").fetchall()[0][0]
    assert last == fault.split(":")[0]
    rerun = run_cli(s, "sync", "push", "--json", **three)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    _assert_pushed_exactly(s, client)
    # No step was repeated: over both processes, each chunk was loaded and MERGEd exactly once.
    everything = list(client.list_jobs(max_results=100000))
    loads = [j for j in everything if j.job_type == "load"]
    merges = [j for j in everything if j.job_type == "query" and j.query.lstrip().startswith("MERGE")]
    staged = [j.destination.table_id for j in loads]
    merged = [re.search(r"USING `[^`]+\.([^`.]+)` AS S", j.query).group(1) for j in merges]
    assert len(staged) == len(set(staged)) and sorted(merged) == sorted(staged)
    assert len([t for t in staged if "__regime_calendar__" in t]) == 3
    assert sum(merge_days(j.query) for j in merges if "regime_calendar`" in j.query) == (dt.date(2029, 2, 1) - dt.date(2000, 1, 1)).days


def test_bigquery_down_mid_push_keeps_the_batch_pending(registry_template, tmp_path, sample_data, make_settings):
    from sync.emulator import BigQueryEmulator

    home = copy_home(registry_template, tmp_path / "home")
    gate = tmp_path / "gate"
    with BigQueryEmulator() as emu:
        s = make_settings(home, endpoint=emu.endpoint)
        client = emu.client(project=s.bq_project)
        import subprocess
        import sys
        import time

        from .conftest import REPO, cli_env

        proc = subprocess.Popen(
            [sys.executable, "-c", "from cbi_local.cli import main; main()", "sync", "push", "--json", "--home", str(home)],
            cwd=REPO, env=cli_env(s, CBI_SYNC_FAULT="wait:merge", CBI_SYNC_FAULT_GATE=str(gate)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while not gate.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else "timeout"
            time.sleep(0.1)
        emu.stop()  # BigQuery goes away after the first MERGE
        started = time.monotonic()
        gate.unlink()
        out, errtext = proc.communicate(timeout=300)
        elapsed = time.monotonic() - started
        assert proc.returncode == 1, errtext[-2000:]
        report = json.loads(out)
        assert report["offline"] and "unreachable" in report["error"]
        assert elapsed < 90  # bounded retries, not the client's default 10 minutes
        assert set(_batches(s).values()) == {"validated"}  # still pending, error recorded
        with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
            (err,) = con.execute("SELECT error FROM ops.batches").fetchall()[0]
        assert "unreachable" in err
        status = json.loads(run_cli(s, "sync", "status", "--json").stdout)
        assert status["batches"]["pending"] == 1 and status["last_error"]["error"]

        emu.start()  # same port, same data
        rerun = run_cli(s, "sync", "push", "--json")
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        _assert_pushed_exactly(s, client)
        client.close()


def test_status_reports_batches_and_last_push(registry_template, tmp_path, make_settings):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    before = json.loads(run_cli(s, "sync", "status", "--json").stdout)
    assert before["batches"]["pending"] == 1 and before["last_push"] == [] and before["daemon"] is None
    assert _push(s).ok
    after = json.loads(run_cli(s, "sync", "status", "--json").stdout)
    assert after["batches"] == {**after["batches"], "pending": 0, "pushed": 1}
    # The batch's tables and the health gate's results for it.
    assert {r["table"] for r in after["last_push"]} == {"regimes.regime_calendar", "regimes.regime_weights", "monitoring.health_checks"}
    text = run_cli(s, "sync", "status")
    assert text.returncode == 0 and "1 pushed" in text.stdout


def test_errors_never_carry_credentials():
    from sync.journal import redact

    leaked = 'request failed: Authorization: Bearer ya29.a0AfH6SMBx-secret {"refresh_token": "1//0gabc", "private_key": "-----BEGIN"}'
    clean = redact(leaked)
    assert "ya29" not in clean and "1//0gabc" not in clean and "BEGIN" not in clean


def test_on_demand_health_history_reaches_bigquery(registry_template, tmp_path, make_settings, client):
    """`cbi health` over whole tables records its results under a batch of its own, so the push takes
    the history to BigQuery (the batch gate's results ride with the batch they checked)."""
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    out = run_cli(s, "health", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    health_batch = report["recorded_as"]
    assert health_batch.startswith("health-") and _batches(s)[health_batch] == "validated"
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        mine = con.execute("SELECT count(*) FROM monitoring.health_checks WHERE batch_id = ?", [health_batch]).fetchall()[0][0]
    assert mine == report["checks"] > 0
    assert _push(s).ok
    assert _batches(s)[health_batch] == "pushed"
    remote = list(client.query(
        f"SELECT COUNT(*) FROM `{client.project}.monitoring.health_checks` WHERE batch_id = '{health_batch}'").result())
    assert remote[0][0] == mine
