"""`cbi fetch fred` against a REPLAY SERVER, not the FRED service (tests/fred_replay.py: a local HTTP
server on 127.0.0.1 answering FRED's documented endpoints with the real sample observations)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cbi_local import warehouse
from cbi_local.cli import app

from ...fred_replay import KEY, Replay, serving

runner = CliRunner()


@pytest.fixture
def replay(sample_data: Path):
    with serving(sample_data / "fred") as srv:
        yield srv


@pytest.fixture
def home(tmp_path: Path) -> Path:
    assert runner.invoke(app, ["init", "--home", str(tmp_path / "home")]).exit_code == 0
    return tmp_path / "home"


def _fetch(home: Path, inbox: Path, replay: Replay, *args: str, key: str = KEY):
    env = {"FRED_API_KEY": key, "CBI_FRED_ENDPOINT": replay.url}
    return runner.invoke(app, ["fetch", "fred", *args, "--home", str(home), "--inbox", str(inbox), "--json"], env=env)


def test_fetch_fred_lands_the_same_rows_as_the_sample_files(home, tmp_path, replay, sample_data, caplog):
    caplog.set_level(logging.DEBUG)
    inbox = tmp_path / "inbox"
    res = _fetch(home, inbox, replay, "DGS10", "FEDFUNDS")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["fetched"]["written"] == ["DGS10", "FEDFUNDS"] and report["batch"]["balanced"]
    for sid in ("DGS10", "FEDFUNDS"):  # the same date,value lines as the real sample
        assert (inbox / "fred" / f"{sid}.csv").read_text().splitlines() == (sample_data / "fred" / f"{sid}.csv").read_text().splitlines()
    meta = {r["series_id"]: r["freq"] for r in csv.DictReader((inbox / "fred" / "metadata.csv").open())}
    assert meta == {sid: replay.freq[sid] for sid in ("DGS10", "FEDFUNDS") if replay.freq.get(sid)} and meta["FEDFUNDS"] == "M"
    # The same rows as ingesting the sample files themselves.
    ref = tmp_path / "ref"
    runner.invoke(app, ["init", "--home", str(ref)])
    (tmp_path / "src").mkdir()
    for sid in ("DGS10", "FEDFUNDS"):
        (tmp_path / "src" / f"{sid}.csv").write_text((sample_data / "fred" / f"{sid}.csv").read_text())
    (tmp_path / "src" / "metadata.csv").write_text((inbox / "fred" / "metadata.csv").read_text())
    assert runner.invoke(app, ["ingest", str(tmp_path / "src"), "--home", str(ref)]).exit_code == 0
    sql = "SELECT series_id, date, value, frequency FROM raw_intelligence.fred_economic ORDER BY ALL"
    with warehouse.open_warehouse(home / "warehouse.duckdb", read_only=True) as a, \
            warehouse.open_warehouse(ref / "warehouse.duckdb", read_only=True) as b:
        assert a.execute(sql).fetchall() == b.execute(sql).fetchall()
    # A second fetch with nothing new rewrites nothing, so nothing is ingested again.
    again = json.loads(_fetch(home, inbox, replay).stdout)  # default: the series the warehouse holds
    assert again["fetched"]["written"] == [] and again["fetched"]["unchanged"] == ["DGS10", "FEDFUNDS"]
    assert "batch" not in again
    # The key is never in the output or the logs.
    assert KEY not in res.output + json.dumps(again) + caplog.text


def test_fetch_fred_retries_a_failing_server_then_gives_up_with_a_message(home, tmp_path, replay):
    replay.fail_next = 2  # two HTTP 500s, then the real answer: retried with back-off, no error
    ok = _fetch(home, tmp_path / "inbox", replay, "T10YIE", "--no-ingest")
    assert ok.exit_code == 0, ok.output and json.loads(ok.stdout)["fetched"]["written"] == ["T10YIE"]
    replay.fail_next = 100
    bad = _fetch(home, tmp_path / "inbox", replay, "DGS2")
    assert bad.exit_code == 2 and "FRED answered HTTP 500" in bad.output and KEY not in bad.output
    assert not (tmp_path / "inbox" / "fred" / "DGS2.csv").exists()


def test_fetch_fred_with_a_wrong_or_missing_key_says_so_and_writes_nothing(home, tmp_path, replay):
    wrong = _fetch(home, tmp_path / "inbox", replay, "DGS10", key="not-the-key-" + "x" * 20)
    assert wrong.exit_code == 2 and "FRED refused the API key" in wrong.output and "not-the-key" not in wrong.output
    missing = _fetch(home, tmp_path / "inbox", replay, "DGS10", key="")
    assert missing.exit_code == 2 and "set FRED_API_KEY" in missing.output
    assert not (tmp_path / "inbox" / "fred" / "DGS10.csv").exists()
