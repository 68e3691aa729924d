"""Cost guardrails: the bytes-billed cap on every query job, bytes billed/processed journaled
and shown by `cbi sync status`, dry-run estimates from BigQuery dry-run queries.

The emulator keeps a job's maximumBytesBilled but does not enforce it and reports 0 bytes for
every job, so these tests check what the code controls: that every query job carries the cap
(BigQuery itself refuses a query above it), that the journal holds BigQuery's own statistics
for each job (compared with client.get_job), and that the dry run's estimates are what
BigQuery's dry-run queries answer.
"""

from __future__ import annotations

import json

from cbi_local import warehouse
from sync import push as push_mod
from sync.bigquery.layout import ensure_layout

from .conftest import CALENDAR_DAYS, copy_home, jobs_of, run_cli

CAP = 123_456_789


def test_bytes_billed_recorded_per_job_and_shown_by_status(registry_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    pushed = run_cli(s, "sync", "push", "--json", CBI_BQ_MAX_BYTES_BILLED=str(CAP))
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    run_id = json.loads(pushed.stdout)["run_id"]

    queries = [j for j in jobs_of(client, run_id) if j.job_type == "query"]
    assert queries and all(j.maximum_bytes_billed == CAP for j in queries), {j.job_id: j.maximum_bytes_billed for j in queries}

    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        rows = con.execute(
            "SELECT step, job_id, bytes_billed, bytes_processed FROM ops.sync_log "
            "WHERE sync_run_id = ? AND step IN ('plan', 'merge', 'verify') AND job_id IS NOT NULL",
            [run_id],
        ).fetchall()
    assert {r[0] for r in rows} == {"plan", "merge", "verify"}
    for step, job_id, billed, processed in rows:
        job = client.get_job(job_id)
        assert (billed, processed) == (job.total_bytes_billed, job.total_bytes_processed), (step, job_id)
        assert billed is not None and processed is not None

    status = run_cli(s, "sync", "status", "--json")
    assert status.returncode == 0, status.stderr
    by = json.loads(status.stdout)["bigquery_bytes"]
    (last,) = [r for r in by["runs"] if r["run_id"] == run_id]
    assert last["steps"] == len(rows) and last["billed"] == sum(r[2] for r in rows)
    assert by["last_30_days"]["steps"] >= len(rows)
    text = run_cli(s, "sync", "status")
    assert "BigQuery bytes, last 30 days:" in text.stdout and f"last run {run_id}" in text.stdout


def test_bytes_journaled_before_the_columns_existed_still_count(registry_template, tmp_path, make_settings, client):
    """A warehouse journaled by an earlier version kept the bytes in the entry's detail JSON; `cbi
    init` adds the columns (NULL on old rows) and `cbi sync status` still counts those entries."""
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    pushed = run_cli(s, "sync", "push", "--json")
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    run_id = json.loads(pushed.stdout)["run_id"]
    with warehouse.open_warehouse(s.warehouse_path) as con:
        (billed,) = con.execute("SELECT sum(bytes_billed) FROM ops.sync_log WHERE sync_run_id = ?", [run_id]).fetchone()
        # As the earlier version wrote them: in detail, the columns absent (here: NULL).
        con.execute(
            "UPDATE ops.sync_log SET detail = json_object('bytes_billed', bytes_billed, 'bytes_processed', bytes_processed), "
            "bytes_billed = NULL, bytes_processed = NULL WHERE sync_run_id = ? AND bytes_processed IS NOT NULL", [run_id])
    assert billed is not None
    by = json.loads(run_cli(s, "sync", "status", "--json").stdout)["bigquery_bytes"]
    (last,) = [r for r in by["runs"] if r["run_id"] == run_id]
    assert last["billed"] == billed


def test_the_cap_defaults_on_and_zero_turns_it_off(registry_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    assert s.bq_max_bytes_billed > 0  # on by default
    with warehouse.open_warehouse(s.warehouse_path) as con:
        from sync.bigquery.client import make_client

        report = push_mod.push(con, make_client(s.model_copy(update={"bq_max_bytes_billed": 0})), s.model_copy(update={"bq_max_bytes_billed": 0}))
    assert report.ok, report.error
    queries = [j for j in jobs_of(client, report.run_id) if j.job_type == "query"]
    assert queries and all(j.maximum_bytes_billed is None for j in queries)


def test_dry_run_estimates_come_from_bigquery_dry_run_queries(registry_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    ensure_layout(client, s.bq_project, s.bq_location)  # the tables exist (empty): the plan compares and estimates
    before = {j.job_id for j in client.list_jobs()}
    # 100 partitions a job, so the monthly calendar (349) is estimated chunk by chunk, as a big batch is.
    result = run_cli(s, "sync", "push", "--dry-run", "--json", CBI_BQ_MAX_PARTITIONS_PER_JOB="100")
    assert result.returncode == 0, result.stderr[-2000:]
    (batch,) = json.loads(result.stdout)["batches"]
    cal = next(t for t in batch["targets"] if t["table"] == "regimes.regime_calendar")
    assert [c["partition_count"] for c in cal["chunks"]] == [100, 100, 100, 49] and cal["rows"] == CALENDAR_DAYS

    for chunk in cal["chunks"]:
        assert isinstance(chunk["estimated_bytes_processed"], int)
    assert cal["estimated_bytes_processed"] == sum(c["estimated_bytes_processed"] for c in cal["chunks"])
    assert isinstance(cal["plan_bytes_processed"], int)
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM ops.sync_log WHERE step = 'plan'").fetchall()[0][0] == 0  # nothing journaled
    # The only jobs that ran are the plan's comparison queries; the estimates were dry runs.
    added = [j for j in client.list_jobs() if j.job_id not in before]
    assert added and {(j.labels or {}).get("cbi_step") for j in added} == {"plan"}
    assert not [d for d in client.list_datasets() if d.dataset_id == push_mod.STAGING_DATASET]


def test_dry_run_estimates_are_what_bigquery_dry_runs_answer(registry_template, tmp_path, make_settings, sync_bq, client):
    """Through a recording proxy: one BigQuery dry-run query per chunk, and the plan's estimates
    are exactly the totalBytesProcessed those dry runs answered."""
    import re

    from sync.bigquery.client import make_client

    from .proxy import JOBS_INSERT, Proxy

    home = copy_home(registry_template, tmp_path / "home")
    s = make_settings(home)
    ensure_layout(client, s.bq_project, s.bq_location)
    with Proxy(sync_bq.endpoint) as proxy:
        sp = make_settings(home, endpoint=proxy.endpoint)
        with warehouse.open_warehouse(sp.warehouse_path) as con:
            report = push_mod.push(con, make_client(sp), sp, dry_run=True)
    assert report.ok, report.error
    inserts = [r for r in proxy.seen if r.method == "POST" and re.search(JOBS_INSERT, r.path)]
    dry = [r for r in inserts if r.json().get("configuration", {}).get("dryRun")]
    chunks = [c for b in report.batches for t in b.targets for c in t.chunks]
    assert len(dry) == len(chunks) > 0
    answered = sum(int(r.response_json()["statistics"]["totalBytesProcessed"]) for r in dry)
    assert answered == sum(c.estimated_bytes_processed for c in chunks)
    # Every query job, the dry runs included, carries the bytes-billed cap.
    assert all(int(r.json()["configuration"]["query"]["maximumBytesBilled"]) == s.bq_max_bytes_billed for r in inserts)


def test_parity_in_cbi_run_reads_only_the_partitions_the_push_wrote(sample_data, tmp_path, make_settings, client):
    """`cbi run`'s parity step after a push of one changed day compares (and bills) only the partitions
    that push wrote, not every pushed table in full."""
    from cbi_local import job, pipeline
    from sync.bigquery.client import make_client

    from .conftest import ingest_registry

    home = tmp_path / "home"
    reg = ingest_registry(home, sample_data / "registry")
    s = make_settings(home)
    with warehouse.open_warehouse(s.warehouse_path) as con:
        assert push_mod.push(con, make_client(s), s).ok
    # The user moves one day (2017-12-31) from one regime to the next: one weights row, one calendar month.
    yaml_path = reg / "regime_weights.yaml"
    text = yaml_path.read_text()
    yaml_path.write_text(text.replace("end_date: '2017-12-31'", "end_date: '2017-12-30'").replace("start_date: '2018-01-01'", "start_date: '2017-12-31'"))
    with warehouse.open_warehouse(s.warehouse_path) as con:
        assert pipeline.ingest_paths(con, [reg])["ok"]
        report = push_mod.push(con, make_client(s), s)
        assert report.ok, report.error
        ctx = job.JobContext(settings=s, con=con, bq_client=make_client(s))
        ctx.results["push"] = {"pushed_ids": [b.batch_id for b in report.batches]}
        before = {j.job_id for j in client.list_jobs()}
        out = job.parity_step(ctx, only_pushed_now=True)
    assert out["ok"] and out["differ"] == 0, out
    # One partition per table the push wrote: regime_weights (unpartitioned), the calendar's 2017-12 and
    # this month's monitoring.health_checks (the batch's gate results).
    assert out["tables"] == out["partitions"] == 3
    prints = [j for j in client.list_jobs() if j.job_id not in before and j.labels.get("cbi_step") == "fingerprint"]
    calendar = [j for j in prints if "regime_calendar`" in j.query]
    assert len(prints) == 3 and len(calendar) == 1
    assert sorted(j.query.split("FROM `")[1].split("`")[0].split(".", 1)[1] for j in prints) == [
        "monitoring.health_checks", "regimes.regime_calendar", "regimes.regime_weights"]
    assert "DATE '2017-12-01'" in calendar[0].query and "DATE '2018-01-01'" in calendar[0].query
