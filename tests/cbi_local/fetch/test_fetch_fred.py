"""`cbi fetch fred` against a REPLAY SERVER, not the FRED service: a local HTTP server on 127.0.0.1
that answers FRED's documented endpoints (`fred/series/observations`, `fred/series`) with the real
observations of the sample CSVs in ../shared/data/fred (and their frequency from its metadata.csv).
It checks the api_key parameter as FRED does, and can be told to fail a number of requests first.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from typer.testing import CliRunner

from cbi_local import warehouse
from cbi_local.cli import app

KEY = "replay-key-0123456789abcdef0123456789ab"  # a key as FRED issues them: 32 lower-case alphanumerics
runner = CliRunner()


class Replay(ThreadingHTTPServer):
    def __init__(self, fred: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fred = fred
        self.fail_next = 0  # answer this many requests with HTTP 500 first
        self.requests: list[str] = []
        with (fred / "metadata.csv").open(newline="") as fh:
            self.freq = {r["series_id"]: r["freq"] for r in csv.DictReader(fh)}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        srv: Replay = self.server  # type: ignore[assignment]
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        srv.requests.append(url.path)
        if srv.fail_next:
            srv.fail_next -= 1
            return self._send(500, {"error_code": 500, "error_message": "Internal Server Error (replayed)"})
        if q.get("api_key") != KEY:
            return self._send(400, {"error_code": 400, "error_message": "Bad Request.  The value for variable api_key is not registered."})
        sid = q.get("series_id", "")
        path = srv.fred / f"{sid}.csv"
        if not path.is_file():
            return self._send(400, {"error_code": 400, "error_message": "Bad Request.  The series does not exist."})
        if url.path == "/fred/series":
            return self._send(200, {"seriess": [{"id": sid, "frequency_short": srv.freq.get(sid, "")}]})
        with path.open(newline="") as fh:
            obs = [{"date": r["date"], "value": r["value"] if r["value"].strip() else "."} for r in csv.DictReader(fh)]
        return self._send(200, {"count": len(obs), "observations": obs})


@pytest.fixture
def replay(sample_data: Path):
    srv = Replay(sample_data / "fred")
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()


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
