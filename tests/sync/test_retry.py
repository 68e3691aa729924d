"""Retries: google.api_core's retry with BigQuery's predicates, rate limits included, bounded.

The exceptions are the real google.api_core instances the client raises: API errors built by
`exceptions.from_http_response` from a BigQuery error body, job errors by the client's own
`_error_result_to_exception` from a job's errorResult. `cbi sync views` against an endpoint
that accepts connections and never answers gives up within the configured bound.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests
from google.api_core import exceptions as gexc
from google.cloud.bigquery.job.base import _error_result_to_exception

from sync import retry
from sync.retry import Offline, is_transient, with_retries

from .conftest import run_cli


def api_error(status: int, reason: str | None, message: str = "boom") -> gexc.GoogleAPICallError:
    """The exception the client raises for a BigQuery REST error response (real body shape)."""
    body = {"error": {"code": status, "message": message, "status": "X"}}
    if reason:
        body["error"]["errors"] = [{"message": message, "domain": "global", "reason": reason}]
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode()
    resp.headers["Content-Type"] = "application/json"
    resp.request = requests.Request("POST", "https://bigquery.googleapis.com/bigquery/v2/projects/p/jobs").prepare()
    return gexc.from_http_response(resp)


def job_error(reason: str) -> gexc.GoogleAPICallError:
    """The exception QueryJob.result() raises for a job that failed with this errorResult."""
    return _error_result_to_exception({"reason": reason, "message": f"job failed: {reason}"})


TRANSIENT = {
    "403 rateLimitExceeded": lambda: api_error(403, "rateLimitExceeded", "Exceeded rate limits: too many table update operations"),
    "429 rateLimitExceeded": lambda: api_error(429, "rateLimitExceeded"),
    "429 without reason": lambda: api_error(429, None),
    "500 backendError": lambda: api_error(500, "backendError"),
    "503 backendError": lambda: api_error(503, "backendError"),
    "502 without reason": lambda: api_error(502, None),
    "job rateLimitExceeded": lambda: job_error("rateLimitExceeded"),
    "job jobRateLimitExceeded": lambda: job_error("jobRateLimitExceeded"),
    "job backendError": lambda: job_error("backendError"),
    "job jobBackendError": lambda: job_error("jobBackendError"),
    "job jobInternalError": lambda: job_error("jobInternalError"),
    "connection refused": lambda: requests.exceptions.ConnectionError("Connection refused"),
    "read timeout": lambda: requests.exceptions.ReadTimeout("read timed out"),
    "client retry gave up": lambda: gexc.RetryError("Timeout of 5.0s exceeded", requests.exceptions.ConnectionError("refused")),
}
PERMANENT = {
    "400 invalidQuery": lambda: api_error(400, "invalidQuery", "Syntax error"),
    "400 invalid (no such column)": lambda: api_error(400, "invalid", 'Table t does not have a column named "reason"'),
    "404 notFound": lambda: api_error(404, "notFound", "Not found: Table p:d.t"),
    "403 accessDenied": lambda: api_error(403, "accessDenied"),
    "403 quotaExceeded": lambda: api_error(403, "quotaExceeded", "Quota exceeded: daily limit"),
    "job invalidQuery": lambda: job_error("invalidQuery"),
    "job bytes billed limit": lambda: job_error("bytesBilledLimitExceeded"),
    "ssl error": lambda: requests.exceptions.SSLError("certificate verify failed"),
}


@pytest.mark.parametrize("case", sorted(TRANSIENT))
def test_rate_limit_and_backend_errors_are_transient(case):
    exc = TRANSIENT[case]()
    assert isinstance(exc, Exception)
    assert is_transient(exc), (case, type(exc), getattr(exc, "errors", None))


@pytest.mark.parametrize("case", sorted(PERMANENT))
def test_permanent_errors_are_not_retried(case):
    exc = PERMANENT[case]()
    assert not is_transient(exc), (case, type(exc), getattr(exc, "errors", None))


def test_the_real_types_are_what_the_client_raises():
    assert isinstance(TRANSIENT["403 rateLimitExceeded"](), gexc.Forbidden)
    assert isinstance(TRANSIENT["job jobRateLimitExceeded"](), gexc.InternalServerError)
    assert isinstance(PERMANENT["403 quotaExceeded"](), gexc.Forbidden)


def test_rate_limit_is_retried_then_succeeds(monkeypatch):
    monkeypatch.setenv(retry.BASE_ENV, "0.01")
    monkeypatch.setenv(retry.CAP_ENV, "0.05")
    monkeypatch.setenv(retry.ATTEMPTS_ENV, "4")
    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise api_error(403, "rateLimitExceeded", "Exceeded rate limits")
        return "ok"

    assert with_retries("merge", flaky) == "ok"
    assert len(calls) == 3


def test_rate_limit_past_the_bound_is_offline_and_says_so(monkeypatch):
    monkeypatch.setenv(retry.BASE_ENV, "0.01")
    monkeypatch.setenv(retry.CAP_ENV, "0.02")
    monkeypatch.setenv(retry.ATTEMPTS_ENV, "3")
    calls = []

    def limited():
        calls.append(1)
        raise job_error("jobRateLimitExceeded")

    with pytest.raises(Offline, match=r"rate-limited \(rateLimitExceeded\) after 3 attempts"):
        with_retries("merge", limited)
    assert len(calls) == 3


def test_a_permanent_error_is_raised_at_once(monkeypatch):
    monkeypatch.setenv(retry.BASE_ENV, "0.01")
    calls = []

    def bad():
        calls.append(1)
        raise api_error(400, "invalidQuery", "Syntax error")

    with pytest.raises(gexc.BadRequest):
        with_retries("query", bad)
    assert calls == [1]


def test_the_overall_deadline_bounds_the_retries(monkeypatch):
    monkeypatch.setenv(retry.BASE_ENV, "0.2")
    monkeypatch.setenv(retry.CAP_ENV, "0.2")
    monkeypatch.setenv(retry.ATTEMPTS_ENV, "1000")
    monkeypatch.setenv(retry.DEADLINE_ENV, "0.001")  # 1,000 attempts x 1 ms: about one second in all
    started = time.monotonic()
    with pytest.raises(Offline, match="unreachable"):
        with_retries("get table", lambda: (_ for _ in ()).throw(requests.exceptions.ConnectionError("refused")))
    assert time.monotonic() - started < 3


def test_client_retry_uses_the_same_predicate_and_the_call_deadline(monkeypatch):
    monkeypatch.setenv(retry.DEADLINE_ENV, "7")
    r = retry.client_retry()
    assert r._timeout == 7
    assert r._predicate(api_error(403, "rateLimitExceeded")) and not r._predicate(api_error(403, "quotaExceeded"))


@pytest.fixture
def blackhole():
    """An endpoint that accepts connections and never answers (a hung proxy or token endpoint)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                held.append(conn)
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    t.join(2)
    for c in held:
        c.close()
    srv.close()


def test_sync_views_gives_up_within_the_bound(tmp_path, make_settings, blackhole):
    s = make_settings(tmp_path / "home", endpoint=blackhole)
    started = time.monotonic()
    result = run_cli(s, "sync", "views", timeout=120, CBI_SYNC_ATTEMPTS="2", CBI_SYNC_CALL_DEADLINE="2")
    elapsed = time.monotonic() - started
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr[-2000:])
    assert "unreachable" in result.stderr and "Traceback" not in result.stderr
    # 2 attempts x 2 s, plus back-off and process start-up; the client's default was 10 minutes.
    assert elapsed < 30, elapsed


def test_rate_limit_from_bigquery_is_retried_and_the_push_completes(registry_template, tmp_path, make_settings, sync_bq, client, monkeypatch):
    """A proxy in front of the emulator answers the first three jobs.insert with BigQuery's
    403 rateLimitExceeded; the push backs off, retries and ends equal to the warehouse."""
    from cbi_local import warehouse
    from sync import push as push_mod
    from sync.bigquery.client import make_client

    from .conftest import CALENDAR_DAYS, copy_home, count
    from .proxy import JOBS_INSERT, Proxy, rate_limit_body

    monkeypatch.setenv(retry.BASE_ENV, "0.1")
    monkeypatch.setenv(retry.CAP_ENV, "0.5")
    monkeypatch.setenv(retry.DEADLINE_ENV, "20")
    with Proxy(sync_bq.endpoint) as proxy:
        injected = proxy.inject("POST", JOBS_INSERT, 403, rate_limit_body(), times=3)
        s = make_settings(copy_home(registry_template, tmp_path / "home"), endpoint=proxy.endpoint)
        with warehouse.open_warehouse(s.warehouse_path) as con:
            report = push_mod.push(con, make_client(s), s)
    assert report.ok, report.error
    assert injected.used == 3
    assert len([r for r in proxy.seen if r.injected]) == 3
    assert count(client, "regimes.regime_calendar") == CALENDAR_DAYS


def test_rate_limit_past_the_bound_keeps_the_batch_pending_and_says_rate_limited(registry_template, tmp_path, make_settings, sync_bq, monkeypatch):
    from cbi_local import warehouse
    from sync import push as push_mod
    from sync.bigquery.client import make_client

    from .conftest import copy_home
    from .proxy import JOBS_INSERT, Proxy, rate_limit_body

    monkeypatch.setenv(retry.BASE_ENV, "0.1")
    monkeypatch.setenv(retry.CAP_ENV, "0.2")
    monkeypatch.setenv(retry.ATTEMPTS_ENV, "2")
    monkeypatch.setenv(retry.DEADLINE_ENV, "1")
    with Proxy(sync_bq.endpoint) as proxy:
        proxy.inject("POST", JOBS_INSERT, 403, rate_limit_body(), times=10_000)
        s = make_settings(copy_home(registry_template, tmp_path / "home"), endpoint=proxy.endpoint)
        started = time.monotonic()
        with warehouse.open_warehouse(s.warehouse_path) as con:
            report = push_mod.push(con, make_client(s), s)
        elapsed = time.monotonic() - started
    assert not report.ok and report.offline
    assert "rate-limited" in report.error, report.error
    assert elapsed < 30, elapsed
    with warehouse.open_warehouse(s.warehouse_path, read_only=True) as con:
        assert {r[0] for r in con.execute("SELECT status FROM ops.batches").fetchall()} == {"validated"}
