"""Pulls through the BigQuery Storage Read API (the emulator serves it on its gRPC port), and the
fallback to a REST query when that API cannot be reached. Same rows either way; the journal
says which path each download took."""

from __future__ import annotations

import json
import socket

import pytest

from cbi_local import warehouse
from sync.bigquery.client import make_client
from sync.bigquery.storage import STORAGE_ENDPOINT_ENV
from sync.pull import diff, pull

from .conftest import copy_home, count, jobs_of, local_count
from .test_pull import CFTC, WEATHER, seed


@pytest.fixture
def seeded(sample_template, tmp_path, make_settings, client):
    s = make_settings(copy_home(sample_template, tmp_path / "home"))
    seed(s, client, WEATHER, tmp_path)
    seed(s, client, CFTC, tmp_path)
    return s


def _change_one_day(s, client):
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        station, day = con.execute(
            f"SELECT station_id, date FROM {WEATHER} WHERE temp_max IS NOT NULL ORDER BY date DESC, station_id LIMIT 1"
        ).fetchall()[0]
    client.query(
        f"UPDATE `{s.bq_project}.{WEATHER}` SET temp_max = temp_max + 1.5 WHERE station_id = '{station}' AND date = '{day}'"
    ).result()
    return station, day


def _pull_weather(s):
    with warehouse.open_warehouse(s.warehouse_path) as con:
        report = pull(con, make_client(s), s, [WEATHER])
    (t,) = report.tables
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        (detail,) = con.execute(
            "SELECT detail FROM ops.sync_log WHERE sync_run_id = ? AND step = 'download'", [report.run_id]
        ).fetchall()[0]
    return report, t, json.loads(detail)


def _assert_equal(s, client):
    assert local_count(s.home, WEATHER) == count(client, WEATHER)
    with warehouse.open_warehouse(s.warehouse_path) as con:
        (d,) = diff(con, make_client(s), s, [WEATHER])
    assert d.ok, d.as_dict()["counts"]


def test_pull_reads_changed_partitions_through_the_storage_read_api(seeded, client, sync_bq, monkeypatch):
    s = seeded
    monkeypatch.setenv(STORAGE_ENDPOINT_ENV, f"127.0.0.1:{sync_bq.grpc_port}")
    _station, day = _change_one_day(s, client)
    report, t, detail = _pull_weather(s)
    assert detail["read_api"] == "storage", detail
    assert t.downloaded_partitions == [str(day.year)]
    assert t.rows_downloaded == local_count(s.home, f"{WEATHER} WHERE year(date) = {day.year}")  # only that year
    # No query job downloaded anything: the rows came from a read session.
    assert [j for j in jobs_of(client, report.run_id) if (j.labels or {}).get("cbi_step") == "download"] == []
    _assert_equal(s, client)


def test_pull_falls_back_to_rest_when_the_storage_read_api_is_unreachable(seeded, client, monkeypatch):
    s = seeded
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    monkeypatch.setenv(STORAGE_ENDPOINT_ENV, f"127.0.0.1:{port}")
    monkeypatch.setenv("CBI_SYNC_CALL_DEADLINE", "3")
    _station, day = _change_one_day(s, client)
    report, t, detail = _pull_weather(s)
    assert detail["read_api"] == "rest" and detail["storage_unavailable"], detail
    assert t.downloaded_partitions == [str(day.year)]
    downloads = [j for j in jobs_of(client, report.run_id) if (j.labels or {}).get("cbi_step") == "download"]
    assert len(downloads) == 1
    _assert_equal(s, client)
