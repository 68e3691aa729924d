"""BigQuery SchemaField lists and table options derived from a contract."""

from __future__ import annotations

from google.cloud import bigquery

from .model import Column, Contract


def schema_field(col: Column) -> bigquery.SchemaField:
    return bigquery.SchemaField(
        col.name,
        col.type,
        mode=col.mode,
        description=col.description,
        fields=[schema_field(f) for f in col.fields],
    )


def schema(contract: Contract) -> list[bigquery.SchemaField]:
    return [schema_field(c) for c in contract.columns]


def time_partitioning(contract: Contract) -> bigquery.TimePartitioning | None:
    if contract.partition is None:
        return None
    return bigquery.TimePartitioning(type_=contract.partition.granularity, field=contract.partition.column)


def table(contract: Contract, project: str) -> bigquery.Table:
    """A bigquery.Table ready for create_table: schema, partitioning, clustering, labels."""
    t = bigquery.Table(f"{project}.{contract.dataset}.{contract.table}", schema=schema(contract))
    t.description = contract.description
    t.time_partitioning = time_partitioning(contract)
    t.clustering_fields = list(contract.clustering) or None
    t.labels = {"sync": contract.sync, "privacy": contract.privacy, "managed_by": "cbi_local"}
    return t


# BigQuery's legacy type names (the REST API may answer with either spelling).
_LEGACY = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


def normalise_type(field_type: str) -> str:
    return _LEGACY.get(field_type.upper(), field_type.upper())
