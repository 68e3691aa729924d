"""Bounded retries with exponential backoff for BigQuery/GCS calls.

Transient: HTTP 429 and 5xx, timeouts, connection failures (the API unreachable: offline,
or the emulator stopped). Anything else (a bad query, a schema error) fails at once.
The google client's own retry is bounded too (`client_retry`), so nothing waits for
its default 10 minutes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TypeVar

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry

T = TypeVar("T")

ATTEMPTS_ENV = "CBI_SYNC_ATTEMPTS"
BASE_ENV = "CBI_SYNC_BACKOFF"
CAP_ENV = "CBI_SYNC_BACKOFF_CAP"
DEADLINE_ENV = "CBI_SYNC_CALL_DEADLINE"


class Offline(RuntimeError):
    """BigQuery (or GCS) stayed unreachable after the bounded retries; nothing was lost."""


def is_transient(exc: BaseException) -> bool:
    import requests

    if isinstance(exc, (gexc.TooManyRequests, gexc.ServerError, gexc.RetryError, gexc.DeadlineExceeded)):
        return True
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, gexc.GoogleAPICallError) and getattr(exc, "code", None) in (429, 500, 502, 503, 504):
        return True
    import concurrent.futures

    return isinstance(exc, concurrent.futures.TimeoutError)


def backoff(attempt: int, base: float | None = None, cap: float | None = None) -> float:
    base = float(os.environ.get(BASE_ENV, base if base is not None else 1.0))
    cap = float(os.environ.get(CAP_ENV, cap if cap is not None else 60.0))
    return min(cap, base * (2**attempt))


def call_deadline() -> float:
    return float(os.environ.get(DEADLINE_ENV, "60"))


def client_retry() -> Retry:
    """The google client's internal retry, bounded by CBI_SYNC_CALL_DEADLINE seconds."""
    from google.cloud.bigquery.retry import DEFAULT_RETRY

    deadline = call_deadline()
    return DEFAULT_RETRY.with_deadline(deadline).with_timeout(deadline) if hasattr(DEFAULT_RETRY, "with_timeout") else DEFAULT_RETRY.with_deadline(deadline)


def with_retries(what: str, fn: Callable[[], T], attempts: int | None = None) -> T:
    """Run fn; retry transient failures with exponential backoff (capped); raise Offline after."""
    n = int(os.environ.get(ATTEMPTS_ENV, attempts if attempts is not None else 4))
    last: BaseException | None = None
    for attempt in range(n):
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - classified below
            if not is_transient(exc):
                raise
            last = exc
            if attempt < n - 1:
                time.sleep(backoff(attempt))
    from .journal import redact

    raise Offline(f"{what}: BigQuery unreachable after {n} attempts ({type(last).__name__}: {redact(str(last))[:300]})")
