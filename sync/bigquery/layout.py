"""Create and audit the BigQuery layout (datasets and tables) from the contracts."""

from __future__ import annotations

from dataclasses import dataclass, field

from google.api_core.exceptions import NotFound
from google.cloud import bigquery

import data_contracts as dc
from cbi_local.audit import AuditReport, Drift, compare_tables
from data_contracts import to_bigquery

from ..retry import call_deadline, client_retry, with_retries


class LocationMismatch(RuntimeError):
    """A dataset CBI Local writes exists in another location than CBI_BQ_LOCATION; nothing was written."""


def check_locations(client: bigquery.Client, project: str, location: str, names: set[str] | list[str], nothing: str) -> None:
    """Every dataset of `names` that already exists must be in `location`: BigQuery cannot run a job
    across locations (the emulator can, so the check is ours). Checked before anything is written;
    `nothing` completes "Nothing was ..." in the message."""
    wrong: list[str] = []
    for name in sorted(names):
        try:
            ds = with_retries("get dataset", lambda name=name: client.get_dataset(
                f"{project}.{name}", retry=client_retry(), timeout=call_deadline()))
        except NotFound:
            continue
        if (ds.location or "").lower() != location.lower():
            wrong.append(f"{name} is in {ds.location}")
    if wrong:
        raise LocationMismatch(
            f"BigQuery datasets of project {project!r} are not in CBI_BQ_LOCATION={location}: {', '.join(wrong)}. "
            f"Nothing was {nothing}. Set CBI_BQ_LOCATION to their location, or move the datasets (copy to a dataset in "
            f"{location}, verify, swap)."
        )


@dataclass
class LayoutReport:
    created_datasets: list[str] = field(default_factory=list)
    created_tables: list[str] = field(default_factory=list)


def ensure_layout(client: bigquery.Client, project: str, location: str) -> LayoutReport:
    """Create missing datasets (in `location`) and tables; existing ones are left as they are. An
    existing dataset in another location stops it before anything is created (LocationMismatch)."""
    report = LayoutReport()
    check_locations(client, project, location, set(dc.DATASETS), "created")
    existing = {d.dataset_id for d in client.list_datasets(project)}
    for name, description in dc.DATASETS.items():
        if name not in existing:
            ds = bigquery.Dataset(f"{project}.{name}")
            ds.location = location
            ds.description = description
            client.create_dataset(ds, exists_ok=True)
            report.created_datasets.append(name)
    for contract in dc.CONTRACTS:
        try:
            client.get_table(f"{project}.{contract.fqn}")
        except NotFound:
            client.create_table(to_bigquery.table(contract, project))
            report.created_tables.append(contract.fqn)
    return report


def field_signature(f: bigquery.SchemaField) -> str:
    """Comparable type text of a field: nested fields (name, type, mode) included."""
    kind = to_bigquery.normalise_type(f.field_type)
    if kind == "STRUCT":
        inner = ", ".join(f"{sub.name} {field_signature(sub)} {sub.mode or 'NULLABLE'}" for sub in f.fields)
        return f"STRUCT<{inner}>"
    return kind


def _table_shape(fields: list[bigquery.SchemaField]) -> dict[str, tuple[str, str]]:
    return {f.name: (field_signature(f), f.mode or "NULLABLE") for f in fields}


def audit_bigquery(client: bigquery.Client, project: str, location: str) -> AuditReport:
    report = AuditReport("bigquery")
    datasets = {d.dataset_id for d in client.list_datasets(project)}
    actual: dict[str, dict[str, tuple[str, str]]] = {}
    tables: dict[str, bigquery.Table] = {}
    for name in dc.DATASETS:
        if name not in datasets:
            report.drifts.append(Drift("missing_dataset", name, "bigquery"))
            continue
        ds = client.get_dataset(f"{project}.{name}")
        if (ds.location or "").lower() != location.lower():
            report.drifts.append(Drift("wrong_location", name, "bigquery", None, location, ds.location))
        for item in client.list_tables(ds):
            if item.table_type != "TABLE":
                continue
            table = client.get_table(item.reference)
            fqn = f"{name}.{item.table_id}"
            tables[fqn] = table
            actual[fqn] = _table_shape(table.schema)
    expected = {c.fqn: _table_shape(to_bigquery.schema(c)) for c in dc.CONTRACTS}
    report.tables_checked = len(actual)
    report.drifts += compare_tables(expected, actual, "bigquery", set(dc.DATASETS))
    for contract in dc.CONTRACTS:
        table = tables.get(contract.fqn)
        if table is None:
            continue
        want_p = to_bigquery.time_partitioning(contract)
        have_p = table.time_partitioning
        want = f"{want_p.type_} on {want_p.field}" if want_p else "none"
        have = f"{have_p.type_} on {have_p.field}" if have_p else "none"
        if want != have:
            report.drifts.append(Drift("partitioning_mismatch", contract.fqn, "bigquery", None, want, have))
        want_c = list(contract.clustering)
        have_c = list(table.clustering_fields or [])
        if want_c != have_c:
            report.drifts.append(Drift("clustering_mismatch", contract.fqn, "bigquery", None, str(want_c), str(have_c)))
    return report
