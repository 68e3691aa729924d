"""A google-cloud-bigquery client from settings.

Real projects authenticate through Google's usual mechanisms (ADC or
GOOGLE_APPLICATION_CREDENTIALS); an endpoint override (the local emulator) uses anonymous
credentials. No credential material is ever read or logged here.

Every query job the client runs carries `maximum_bytes_billed` = CBI_BQ_MAX_BYTES_BILLED
(the client's default query job config; 0 means no cap): BigQuery fails a query that would
bill more, before it runs, with reason bytesBilledLimitExceeded.
"""

from __future__ import annotations

import os
from pathlib import Path

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from cbi_local.config import Settings


KEY_FILE_ENV = "GOOGLE_APPLICATION_CREDENTIALS"


class NoCredentials(RuntimeError):
    """No Application Default Credentials for a real project (the message says how to get them)."""


def max_bytes_billed(settings: Settings) -> int | None:
    """The cap on bytes billed per query job (None: no cap)."""
    cap = int(settings.bq_max_bytes_billed or 0)
    return cap if cap > 0 else None


def query_config(settings: Settings, **kwargs: object) -> bigquery.QueryJobConfig:
    """A QueryJobConfig with the bytes-billed cap (and any other options given)."""
    config = bigquery.QueryJobConfig(**kwargs)
    cap = max_bytes_billed(settings)
    if cap is not None:  # an unset cap is left out (the API refuses a null)
        config.maximum_bytes_billed = cap
    return config


def make_client(settings: Settings) -> bigquery.Client:
    defaults = query_config(settings)
    if settings.bq_endpoint:
        return bigquery.Client(
            project=settings.bq_project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=settings.bq_endpoint),
            location=settings.bq_location,
            default_query_job_config=defaults,
        )
    from google.auth.exceptions import DefaultCredentialsError

    try:
        return bigquery.Client(project=settings.bq_project, location=settings.bq_location, default_query_job_config=defaults)
    except DefaultCredentialsError as exc:
        raise NoCredentials(credentials_problem(settings.bq_project, exc)) from None


def credentials_problem(project: str, exc: Exception) -> str:
    """What is wrong with the credentials and what to do, in words true for every command (a
    command with a local-only mode, like `cbi run --no-push`, says so itself). Google's reason is
    kept (it names the file and the parse error, never the key's contents) and redacted anyway."""
    from sync.journal import redact

    key_file = os.environ.get(KEY_FILE_ENV)
    reason = "; ".join(str(a) for a in getattr(exc, "args", ()) if a) or str(exc)
    if key_file:
        if not Path(key_file).expanduser().exists():
            what = f"{KEY_FILE_ENV}={key_file} names a file that does not exist"
        elif "json" in reason.lower() and "not a valid" in reason.lower():
            what = f"the key file GOOGLE_APPLICATION_CREDENTIALS={key_file} is unparseable (not valid JSON)"
        else:
            what = f"the key file GOOGLE_APPLICATION_CREDENTIALS={key_file} is not a usable credential ({redact(reason)[:300]})"
        return (
            f"cannot authenticate to BigQuery project {project!r}: {what}. Point {KEY_FILE_ENV} at a service-account "
            "JSON key downloaded from the Google Cloud console, or unset it and run `gcloud auth application-default login`"
        )
    return (
        f"no Google credentials for BigQuery project {project!r}: run `gcloud auth application-default login` "
        f"(or set {KEY_FILE_ENV} to a service-account key file), or set CBI_BQ_ENDPOINT for an emulator"
    )
