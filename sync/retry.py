"""Bounded retries for BigQuery/GCS calls: google.api_core's retry with BigQuery's own predicates.

Protocol: `with_retries(what, fn)` runs `fn` under `google.api_core.retry.retry_target` with
truncated exponential back-off (jittered; first delay CBI_SYNC_BACKOFF s, at most
CBI_SYNC_BACKOFF_CAP s). It stops at whichever comes first: CBI_SYNC_ATTEMPTS attempts or the
overall deadline (CBI_SYNC_ATTEMPTS x CBI_SYNC_CALL_DEADLINE s). A transient failure that
outlasts the bound raises `Offline` (nothing was lost; the journal lets a rerun resume); any
other failure (a bad query, a schema error, a refused credential) is raised at once.

Transient (`is_transient`) is what google-cloud-bigquery itself retries, for API calls
(`_should_retry`: reasons rateLimitExceeded, backendError, internalError, badGateway; connection
errors, 429/500/502/503, auth transport errors) and for jobs (`_job_should_retry`: also
jobRateLimitExceeded, jobBackendError, jobInternalError), extended to: a 403 whose reason is a
rate limit (BigQuery answers rate limits with 403 as well as 429), a 504, timeouts, and a
`RetryError` (the client's own bounded retry gave up on a transient error).

The google client's internal retry (`client_retry`) uses the same predicate and is bounded by
CBI_SYNC_CALL_DEADLINE seconds, so nothing waits for its default 10 minutes.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, RetryFailureReason, exponential_sleep_generator, retry_target
from google.auth import exceptions as auth_exc
from google.cloud.bigquery import retry as bq_retry

from cbi_local.config import current

T = TypeVar("T")

ATTEMPTS_ENV = "CBI_SYNC_ATTEMPTS"
BASE_ENV = "CBI_SYNC_BACKOFF"
CAP_ENV = "CBI_SYNC_BACKOFF_CAP"
DEADLINE_ENV = "CBI_SYNC_CALL_DEADLINE"

# Reasons BigQuery uses for "slow down / try again" (API errors and job errors alike).
TRANSIENT_REASONS = frozenset(
    {
        "rateLimitExceeded",
        "jobRateLimitExceeded",
        "backendError",
        "jobBackendError",
        "internalError",
        "jobInternalError",
        "badGateway",
    }
)
_TRANSIENT_TYPES = (
    gexc.TooManyRequests,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.ServiceUnavailable,
    gexc.GatewayTimeout,
    gexc.DeadlineExceeded,
    gexc.RetryError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    auth_exc.TransportError,
    ConnectionError,
    TimeoutError,
    concurrent.futures.TimeoutError,
)


class Offline(RuntimeError):
    """BigQuery (or GCS) stayed unreachable or rate-limited past the bounded retries; nothing was lost."""


def _reasons(exc: BaseException) -> list[str]:
    errors = getattr(exc, "errors", None) or []
    out = []
    for e in errors:
        if isinstance(e, dict) and isinstance(e.get("reason"), str):
            out.append(e["reason"])
    return out


def is_transient(exc: BaseException) -> bool:
    """True when retrying can help: BigQuery's own API and job predicates, extended (module doc)."""
    if isinstance(exc, requests.exceptions.SSLError):
        return False  # a configuration problem, as BigQuery's predicate says
    if isinstance(exc, Exception) and (bq_retry._should_retry(exc) or bq_retry._job_should_retry(exc)):
        return True
    if any(r in TRANSIENT_REASONS for r in _reasons(exc)):
        return True
    if _reasons(exc):
        return False  # a structured error with another reason (invalid, notFound, quotaExceeded...)
    return isinstance(exc, _TRANSIENT_TYPES)


def call_deadline() -> float:
    return current().sync_call_deadline


def attempts() -> int:
    return current().sync_attempts


def overall_deadline() -> float:
    """Seconds a with_retries call may keep retrying: attempts x the per-call deadline."""
    return attempts() * call_deadline()


def client_retry() -> Retry:
    """The google client's internal retry: the same predicate, bounded by CBI_SYNC_CALL_DEADLINE seconds."""
    deadline = call_deadline()
    return bq_retry.DEFAULT_RETRY.with_predicate(is_transient).with_timeout(deadline)


def with_retries(what: str, fn: Callable[[], T], max_attempts: int | None = None) -> T:
    """Run fn under google.api_core's retry_target; Offline when a transient failure outlasts the bound."""
    n = max_attempts if max_attempts is not None else attempts()
    tries = 0

    def retryable(exc: Exception) -> bool:
        nonlocal tries
        tries += 1
        return is_transient(exc) and tries < n

    def give_up(errors: list[Exception], reason: RetryFailureReason, timeout: float | None) -> tuple[Exception, Exception | None]:
        last = errors[-1] if errors else None
        if last is not None and (reason == RetryFailureReason.TIMEOUT or is_transient(last)):
            from .journal import redact

            root = last.cause if isinstance(last, gexc.RetryError) and last.cause is not None else last
            limited = any("ratelimit" in r.lower() for r in _reasons(root))
            why = "BigQuery rate-limited (rateLimitExceeded)" if limited else "BigQuery unreachable"
            return (
                Offline(
                    f"{what}: {why} after {len(errors)} attempts within {timeout:.0f} s "
                    f"({type(last).__name__}: {redact(str(last))[:300]})"
                ),
                None,
            )
        assert last is not None
        return last, getattr(last, "__cause__", None)

    base, cap = current().sync_backoff, current().sync_backoff_cap
    return retry_target(
        fn,
        retryable,
        exponential_sleep_generator(base, max(base, cap), 2.0),
        timeout=n * call_deadline(),
        exception_factory=give_up,
    )
