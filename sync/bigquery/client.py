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


def make_client(settings: Settings) -> bigquery.Client:
    if settings.bq_endpoint:
        return bigquery.Client(
            project=settings.bq_project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=settings.bq_endpoint),
            location=settings.bq_location,
        )
    return bigquery.Client(project=settings.bq_project, location=settings.bq_location)
