"""Legacy project cleanup: an inventory of what no contract declares, and a safe archive plan.

inventory  every table and view of the project that no contract declares (nor the push's private
           twins, the api views, `_cbi_staging` or the archive datasets): rows, bytes, last
           modified, and a verdict:
             legacy_source  a table `cbi migrate-legacy` maps (kept: the migration reads it)
             view           a view (kept: it holds no data)
             empty          a table without rows (the plan drops it)
             backup         a name that marks a copy (`*_backup_*`, `z_archive_*`, `*_bak`, `*_old`, `*_copy*`)
             duplicate      the same schema and row count as another table (named in `of`)
             undeclared     anything else
plan       move (copy into the archive dataset as `<dataset>__<table>`, verify, delete) every
           non-empty backup, duplicate and undeclared table; drop the empty ones; keep the rest.
           The archive dataset is `z_cbi_archive` in CBI_BQ_LOCATION, `z_cbi_archive_<location>`
           for tables elsewhere (BigQuery copies only within a location).
apply      per move: a copy job (an existing copy with the same row count is reused), then
           COUNT(*) of the copy must equal COUNT(*) of the original, and only then the original
           is deleted; per drop: COUNT(*) = 0 is checked again right before the delete. A
           non-empty table is never deleted without a verified copy. A legacy dataset left with
           no tables is deleted (BigQuery refuses to delete a dataset that still holds one).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from google.api_core.exceptions import NotFound
from google.cloud import bigquery

import data_contracts as dc
from cbi_local.config import Settings

from .bigquery.client import query_config
from .bigquery.layout import field_signature
from .privacy import API_VIEWS
from .push import OLDER_HOLDING_SUFFIXES, PRIVATE_SUFFIX, REBUILD_SUFFIX, STAGING_DATASET, push_targets
from .retry import call_deadline, client_retry, with_retries

ARCHIVE_DATASET = "z_cbi_archive"
BACKUP_NAME = re.compile(r"(_backup|^z_archive|_bak$|_old$|_copy)", re.I)


@dataclass
class TableEntry:
    table: str  # dataset.table
    kind: str  # TABLE, VIEW, ...
    location: str
    rows: int
    bytes: int
    modified: datetime | None
    verdict: str = "undeclared"
    of: str | None = None  # duplicate-of / the contract a legacy source migrates to

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Action:
    action: str  # move, drop, keep
    table: str
    rows: int
    to: str | None = None
    reason: str = ""
    done: bool = False
    verified_rows: int | None = None


@dataclass
class ArchivePlan:
    project: str
    entries: list[TableEntry] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    dropped_datasets: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "tables": [e.as_dict() for e in self.entries],
            "actions": [asdict(a) for a in self.actions],
            "dropped_datasets": self.dropped_datasets,
            "counts": {k: sum(1 for a in self.actions if a.action == k) for k in ("move", "drop", "keep")},
        }


def declared_tables() -> set[str]:
    """dataset.table names the contracts (and the sync itself) own."""
    names = {c.fqn for c in dc.CONTRACTS}
    names |= {f"{c.fqn}{PRIVATE_SUFFIX}" for c in dc.CONTRACTS if c.sync == "push" and (c.private_rows or c.privacy == "private")}
    names |= {f"api.{v.name}" for v in API_VIEWS}
    # A rebuild's holding table (push.Pusher.rebuild) exists only while a repartition or schema
    # migration is unfinished; it may hold the only copy of the rows, and the next push finishes it.
    names |= {f"{t.fqn}{suffix}" for t in push_targets([c.fqn for c in dc.CONTRACTS])
              for suffix in (REBUILD_SUFFIX, *OLDER_HOLDING_SUFFIXES)}
    return names


def _legacy_sources() -> dict[str, str]:
    from cbi_local.ingest.legacy import LEGACY_TABLES

    return {t.name: t.target for t in LEGACY_TABLES}


def _archive_for(location: str, settings: Settings) -> str:
    if location.lower() == settings.bq_location.lower():
        return ARCHIVE_DATASET
    return f"{ARCHIVE_DATASET}_{re.sub(r'[^a-z0-9]', '_', location.lower())}"


def inventory(client: bigquery.Client, settings: Settings) -> ArchivePlan:
    project = settings.bq_project
    plan = ArchivePlan(project)
    bounded = {"retry": client_retry(), "timeout": call_deadline()}
    declared = declared_tables()
    legacy = _legacy_sources()
    signatures: dict[tuple[str, int], list[str]] = {}
    undeclared: list[TableEntry] = []
    datasets = with_retries("list datasets", lambda: list(client.list_datasets(project, **bounded)))
    for item in datasets:
        name = item.dataset_id
        if name == STAGING_DATASET or name.startswith(ARCHIVE_DATASET):
            continue
        ds = with_retries("get dataset", lambda name=name: client.get_dataset(f"{project}.{name}", **bounded))
        for t in with_retries("list tables", lambda ds=ds: list(client.list_tables(ds, **bounded))):
            fqn = f"{name}.{t.table_id}"
            table = with_retries("get table", lambda t=t: client.get_table(t.reference, **bounded))
            rows = int(table.num_rows or 0)
            if table.table_type == "TABLE" and rows:
                sig = ("; ".join(f"{f.name} {field_signature(f)}" for f in table.schema), rows)
                signatures.setdefault(sig, []).append(fqn)
            if fqn in declared:
                continue
            entry = TableEntry(fqn, table.table_type or "TABLE", ds.location or "", rows, int(table.num_bytes or 0), table.modified)
            if fqn in legacy:
                entry.verdict, entry.of = "legacy_source", legacy[fqn]
            elif entry.kind != "TABLE":
                entry.verdict = "view" if entry.kind == "VIEW" else entry.kind.lower()
            elif rows == 0:
                entry.verdict = "empty"
            elif BACKUP_NAME.search(t.table_id) or BACKUP_NAME.search(name):
                entry.verdict = "backup"
            undeclared.append(entry)
    # Duplicates: the same columns and row count as another table; the declared or
    # non-backup, earliest modified one is the original.
    by_name = {e.table: e for e in undeclared}
    for fqns in signatures.values():
        if len(fqns) < 2:
            continue

        def rank(f: str) -> tuple[int, int, str]:
            e = by_name.get(f)
            return (0 if e is None else 1, 1 if e is not None and e.verdict == "backup" else 0, str(e.modified if e else ""))

        original, *copies = sorted(fqns, key=rank)
        for f in copies:
            e = by_name.get(f)
            if e is not None and e.verdict in ("undeclared", "backup"):
                e.verdict, e.of = "duplicate", original
    plan.entries = sorted(undeclared, key=lambda e: e.table)
    for e in plan.entries:
        if e.verdict == "empty":
            plan.actions.append(Action("drop", e.table, 0, reason="empty"))
        elif e.verdict in ("backup", "duplicate", "undeclared"):
            to = f"{_archive_for(e.location, settings)}.{e.table.replace('.', '__')}"
            why = e.verdict + (f" of {e.of}" if e.of else "")
            plan.actions.append(Action("move", e.table, e.rows, to, why))
        else:
            plan.actions.append(Action("keep", e.table, e.rows, reason=e.verdict + (f" -> {e.of}" if e.of else "")))
    return plan


def _count(client: bigquery.Client, settings: Settings, fqn: str) -> int:
    def run() -> int:
        job = client.query(
            f"SELECT COUNT(*) FROM `{settings.bq_project}.{fqn}`", job_config=query_config(settings),
            retry=client_retry(), job_retry=None, timeout=call_deadline(),
        )  # fmt: skip
        return int(list(job.result(timeout=call_deadline() * 5, retry=client_retry(), job_retry=None))[0][0])

    return with_retries(f"count {fqn}", run)


class ArchiveError(RuntimeError):
    """A copy did not verify; the original was kept."""


def apply(client: bigquery.Client, settings: Settings, plan: ArchivePlan) -> ArchivePlan:
    project = settings.bq_project
    bounded = {"retry": client_retry(), "timeout": call_deadline()}
    locations = {e.table: e.location for e in plan.entries}
    for a in plan.actions:
        if a.action == "move":
            archive, _ = a.to.split(".", 1)
            ds = bigquery.Dataset(f"{project}.{archive}")
            ds.location = locations[a.table] or settings.bq_location
            ds.description = "Tables archived by `cbi sync archive --apply` (copied, verified, originals deleted)."
            with_retries("create archive dataset", lambda ds=ds: client.create_dataset(ds, exists_ok=True, **bounded))
            source_rows = _count(client, settings, a.table)
            try:
                copy_rows = _count(client, settings, a.to)
            except NotFound:
                copy_rows = None
            if copy_rows is None:

                def copy(a: Action = a) -> None:
                    job = client.copy_table(
                        f"{project}.{a.table}", f"{project}.{a.to}",
                        job_config=bigquery.CopyJobConfig(write_disposition="WRITE_EMPTY"), **bounded,
                    )  # fmt: skip
                    job.result(timeout=call_deadline() * 5, retry=client_retry())

                with_retries(f"copy {a.table}", copy)
                copy_rows = _count(client, settings, a.to)
            if copy_rows != source_rows:
                raise ArchiveError(f"{a.table}: the copy {a.to} has {copy_rows} rows, the original {source_rows}; the original was kept")
            a.verified_rows = copy_rows
            with_retries(f"delete {a.table}", lambda a=a: client.delete_table(f"{project}.{a.table}", not_found_ok=True, **bounded))
            a.done = True
        elif a.action == "drop":
            try:
                rows = _count(client, settings, a.table)
            except NotFound:
                a.done = True
                continue
            if rows != 0:
                a.reason = f"not dropped: it has {rows} rows now"
                continue
            a.verified_rows = 0
            with_retries(f"delete {a.table}", lambda a=a: client.delete_table(f"{project}.{a.table}", not_found_ok=True, **bounded))
            a.done = True
    touched = {a.table.split(".")[0] for a in plan.actions if a.done}
    for name in sorted(touched - set(dc.DATASETS)):
        left = with_retries("list tables", lambda name=name: list(client.list_tables(f"{project}.{name}", **bounded)))
        if not left:
            with_retries("delete dataset", lambda name=name: client.delete_dataset(f"{project}.{name}", not_found_ok=True, **bounded))
            plan.dropped_datasets.append(name)
    return plan
