"""Large batches staged through GCS: single-object gs:// loads, checksum verified, objects removed."""

from __future__ import annotations

from cbi_local import warehouse
from sync import push as push_mod
from sync.bigquery.client import make_client
from sync.gcs import make_storage_client

from .conftest import CALENDAR_DAYS, copy_home, count, jobs_of, run_cli

BUCKET = "cbi-sync-staging"


def test_push_through_gcs_loads_from_single_objects_and_cleans_up(registry_template, tmp_path, make_settings, client, gcs_emulator, monkeypatch):
    s = make_settings(copy_home(registry_template, tmp_path / "home")).model_copy(update={"gcs_bucket": BUCKET})
    monkeypatch.setenv(push_mod.GCS_THRESHOLD_ENV, "1")  # every chunk counts as large here
    storage = make_storage_client(s)
    with warehouse.open_warehouse(s.warehouse_path) as con:
        report = push_mod.push(con, make_client(s), s, gcs_client=storage)
    assert report.ok, report.error
    loads = [j for j in jobs_of(client, report.run_id) if j.job_type == "load"]
    assert loads and all(len(j.source_uris) == 1 and j.source_uris[0].startswith(f"gs://{BUCKET}/cbi-staging/") for j in loads)
    assert all("*" not in j.source_uris[0] for j in loads)
    assert count(client, "regimes.regime_calendar") == CALENDAR_DAYS
    assert list(storage.list_blobs(BUCKET)) == []  # cleaned up after the MERGEs


def test_gcs_push_killed_after_load_leaves_nothing_behind(registry_template, tmp_path, make_settings, client, gcs_emulator):
    s = make_settings(copy_home(registry_template, tmp_path / "home")).model_copy(update={"gcs_bucket": BUCKET + "-2"})
    env = {"CBI_GCS_BUCKET": s.gcs_bucket, push_mod.GCS_THRESHOLD_ENV: "1", "STORAGE_EMULATOR_HOST": gcs_emulator.endpoint}
    killed = run_cli(s, "sync", "push", CBI_SYNC_FAULT="after:load:2", **env)
    assert killed.returncode == -9, killed.stderr[-2000:]
    storage = make_storage_client(s)
    assert list(storage.list_blobs(s.gcs_bucket))  # the killed run left its staged object
    rerun = run_cli(s, "sync", "push", **env)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert count(client, "regimes.regime_calendar") == CALENDAR_DAYS
    assert list(storage.list_blobs(s.gcs_bucket)) == []
