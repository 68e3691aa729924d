"""Reading table rows through the BigQuery Storage Read API, with REST as the fallback.

Protocol: `read_rows(client, settings, project, dataset, table, row_restriction)` opens one
read session on the table (Arrow format, the restriction applied server-side: only those
partitions are read, no query job runs, nothing is billed as a query) and returns
(arrow_table, "storage"). When the Storage Read API cannot be used (the package is missing,
no storage endpoint is configured for an emulator, or the session or stream fails within the
per-call deadline), it returns (None, reason) and the caller reads through REST instead.

Endpoint: a real project uses Google's endpoint with the BigQuery client's own credentials;
an emulator (CBI_BQ_ENDPOINT) needs CBI_BQ_STORAGE_ENDPOINT=host:port, its gRPC port, reached
over an insecure loopback channel.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from google.cloud import bigquery

from cbi_local.config import Settings, current

STORAGE_ENDPOINT_ENV = "CBI_BQ_STORAGE_ENDPOINT"


def make_read_client(client: bigquery.Client, settings: Settings) -> tuple[Any | None, str | None]:
    """A BigQueryReadClient for this project, or (None, why not)."""
    try:
        from google.cloud.bigquery_storage_v1 import BigQueryReadClient
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import BigQueryReadGrpcTransport
    except ImportError:
        return None, "google-cloud-bigquery-storage is not installed"
    if settings.bq_endpoint:
        endpoint = (current().bq_storage_endpoint or "").strip()
        if not endpoint:
            return None, f"an emulator endpoint without {STORAGE_ENDPOINT_ENV}"
        import grpc

        channel = grpc.insecure_channel(endpoint.removeprefix("http://"))
        return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=channel)), None
    return BigQueryReadClient(credentials=client._credentials), None


def read_rows(
    client: bigquery.Client, settings: Settings, project: str, dataset: str, table: str, row_restriction: str | None
) -> tuple[pa.Table | None, str]:
    """(rows, "storage"), or (None, why the Storage Read API was not used)."""
    from google.api_core.retry import Retry

    from sync.journal import redact
    from sync.retry import call_deadline, is_transient

    reader, why_not = make_read_client(client, settings)
    if reader is None:
        return None, str(why_not)
    from google.cloud.bigquery_storage_v1 import types

    bounded = Retry(predicate=is_transient, timeout=call_deadline())
    try:
        requested = types.ReadSession(
            table=f"projects/{project}/datasets/{dataset}/tables/{table}",
            data_format=types.DataFormat.ARROW,
            read_options=types.ReadSession.TableReadOptions(row_restriction=row_restriction or ""),
        )
        session = reader.create_read_session(
            parent=f"projects/{project}", read_session=requested, max_stream_count=1, retry=bounded, timeout=call_deadline()
        )
        schema = pa.ipc.read_schema(pa.py_buffer(session.arrow_schema.serialized_schema))
        if not session.streams:
            return schema.empty_table(), "storage"
        parts = [reader.read_rows(s.name, retry=bounded, timeout=call_deadline() * 5).to_arrow(session) for s in session.streams]
        return pa.concat_tables([p for p in parts if p.num_rows] or [schema.empty_table()]), "storage"
    except Exception as exc:  # noqa: BLE001 - any failure falls back to REST, the reason is kept
        return None, redact(f"{type(exc).__name__}: {exc}")[:300]
    finally:
        transport = getattr(reader, "_transport", None)
        if transport is not None:
            transport.close()
