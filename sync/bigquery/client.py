"""A google-cloud-bigquery client from settings.

Real projects authenticate through Google's usual mechanisms (ADC or
GOOGLE_APPLICATION_CREDENTIALS); an endpoint override (the local emulator) uses anonymous
credentials. No credential material is ever read or logged here.
"""

from __future__ import annotations

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from cbi_local.config import Settings


class NoCredentials(RuntimeError):
    """No Application Default Credentials for a real project (the message says how to get them)."""


def make_client(settings: Settings) -> bigquery.Client:
    if settings.bq_endpoint:
        return bigquery.Client(
            project=settings.bq_project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=settings.bq_endpoint),
            location=settings.bq_location,
        )
    from google.auth.exceptions import DefaultCredentialsError

    try:
        return bigquery.Client(project=settings.bq_project, location=settings.bq_location)
    except DefaultCredentialsError:
        # Google's own message is long and generic; this one says what to do here.
        raise NoCredentials(
            f"no Google credentials for BigQuery project {settings.bq_project!r}: run "
            "`gcloud auth application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS to a key file), "
            "or use --no-push to run locally, or set CBI_BQ_ENDPOINT for an emulator"
        ) from None
