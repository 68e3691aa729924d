"""Location check before push: BigQuery cannot MERGE across locations, the emulator does not care.

The emulator keeps a dataset's location but runs jobs across locations, so the push checks
every existing target dataset itself: one in another location than CBI_BQ_LOCATION stops the
push before anything is written (exit 2, the datasets and their locations named).
"""

from __future__ import annotations

from google.cloud import bigquery

from cbi_local import warehouse

from .conftest import copy_home, run_cli


def test_a_target_dataset_in_another_location_stops_the_push_before_anything_is_written(registry_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    legacy = bigquery.Dataset(f"{s.bq_project}.regimes")
    legacy.location = "US"  # a legacy dataset next to the configured us-central1
    client.create_dataset(legacy)
    assert s.bq_location == "us-central1"
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        journal_before = con.execute("SELECT count(*) FROM ops.sync_log").fetchall()[0][0]

    for args in (("sync", "push"), ("sync", "push", "--dry-run")):
        result = run_cli(s, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr[-2000:])
        assert "regimes is in US" in result.stderr and "CBI_BQ_LOCATION=us-central1" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr

    assert [d.dataset_id for d in client.list_datasets()] == ["regimes"]  # no staging, no other dataset
    assert list(client.list_tables(f"{s.bq_project}.regimes")) == []
    assert list(client.list_jobs()) == []
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        assert {r[0] for r in con.execute("SELECT status FROM ops.batches").fetchall()} == {"validated"}
        assert con.execute("SELECT count(*) FROM ops.sync_log").fetchall()[0][0] == journal_before

    # The same dataset in the configured location (case as BigQuery spells it) is accepted.
    result = run_cli(s, "sync", "push", "--dry-run", CBI_BQ_LOCATION="us")
    assert result.returncode == 0, result.stderr[-2000:]


def test_cbi_run_with_a_target_dataset_in_another_location_names_it_and_writes_nothing(registry_template, tmp_path, make_settings, client):
    """The same check under `cbi run`: its push step fails with the datasets named (exit 1, a problem
    found; the local steps ran), nothing is written to BigQuery, and parity is not attempted."""
    s = make_settings(copy_home(registry_template, tmp_path / "home"))
    legacy = bigquery.Dataset(f"{s.bq_project}.regimes")
    legacy.location = "US"
    client.create_dataset(legacy)
    empty_inbox = tmp_path / "inbox"
    empty_inbox.mkdir()
    result = run_cli(s, "run", "--inbox", str(empty_inbox), "--no-train")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-3000:]
    assert "Traceback" not in out
    assert "regimes is in US" in out and "CBI_BQ_LOCATION=us-central1" in out, out[-3000:]
    assert [d.dataset_id for d in client.list_datasets()] == ["regimes"]
    assert list(client.list_tables(f"{s.bq_project}.regimes")) == []
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        assert {r[0] for r in con.execute("SELECT status FROM ops.batches").fetchall()} == {"validated"}
