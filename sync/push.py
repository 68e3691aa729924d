"""`cbi sync push`: validated batches into BigQuery, exactly once, within BigQuery's limits.

For each batch in ops.batches with status 'validated' (oldest first), for each table it wrote
whose contract says sync='push', for each *target* (the table itself; with `private_rows`, the
public table gets the other rows and the private twin `<table>_private` gets those):

plan    the batch's partitions; per partition, the local content fingerprint is compared with
        BigQuery's (one query with a literal partition filter); only differing partitions are
        pushed, in chunks of at most MAX_PARTITIONS (4,000: BigQuery's per-job limit, enforced
        here because the emulator does not); the chunks are journaled, so a rerun pushes the
        same chunks.
stage   per chunk, every local row of those partitions (push_only_where and privacy applied)
        written to Parquet under <home>/sync/staging, with its fingerprint.
load    the Parquet into `_cbi_staging.<deterministic name>` (WRITE_TRUNCATE; from gs:// when the
        file is above the GCS threshold and a bucket is configured).
merge   MERGE into the target on the primary key, with the chunk's literal partition filter in
        the ON clause (BigQuery scans only those partitions): matched rows are updated,
        new rows inserted, and rows of the same partitions that came from a file this warehouse
        knows but no longer holds are deleted (a changed file replaced them).
verify  BigQuery's count and fingerprint of the target rows with the staged keys equal the
        staged file's.
drop_staging  the staging table (and object, local file) removed.
mark_pushed   the batch marked 'pushed' with pushed_at, in the same transaction as its journal entry.

Every step is journaled after it succeeded (sync.journal); every step is idempotent.

Before a target's first load in a run, its BigQuery table is brought to the contract: created if
missing; **repartitioned** if its partitioning or clustering is not the contract's (BigQuery
cannot change either in place: the rows go through a verified holding table
`<table>__cbi_rebuild` beside it and back, see Pusher.rebuild; a killed rebuild is finished by
the next push); then additive schema changes applied, others refused, naming
`cbi sync migrate-schema TABLE`, which rebuilds the table the same way (sync.migrate).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

import data_contracts as dc
from cbi_local.config import Settings, current
from cbi_local.faults import maybe_fault
from data_contracts import to_bigquery
from data_contracts.model import Contract
from data_contracts.to_duckdb import quote as dq
from data_contracts.to_duckdb import table_ref

from . import fingerprint as fp
from .bigquery import schema as schema_mod
from .bigquery.client import query_config
from .bigquery.layout import LocationMismatch, check_locations  # noqa: F401 - LocationMismatch: the push raises it
from .journal import FAULT_ENV, Journal, new_run_id, now, redact, sync_lock
from .retry import Offline, call_deadline, client_retry, with_retries

MAX_PARTITIONS = 4000
STAGING_DATASET = "_cbi_staging"
PRIVATE_SUFFIX = "_private"
REBUILD_SUFFIX = "__cbi_rebuild"  # the holding table of a rebuild (repartition, schema migration), beside the table
OLDER_HOLDING_SUFFIXES = ("__cbi_repartition",)  # an earlier version's holding table: finished the same way
CHUNK_STEPS = ("stage", "load", "merge", "verify", "drop_staging")
STEPS = ("plan", *CHUNK_STEPS, "mark_pushed")
GCS_THRESHOLD_ENV = "CBI_GCS_THRESHOLD_BYTES"


class VerifyError(RuntimeError):
    """BigQuery's rows after a MERGE do not match what was staged."""


class SchemaRefused(RuntimeError):
    """The BigQuery table differs from its contract in a way the push does not apply by itself
    (it could lose data), or BigQuery did not apply an additive change; nothing was pushed to it."""


@dataclass(frozen=True)
class Target:
    """One BigQuery table a contract's rows go to."""

    contract: Contract
    table: str
    predicate: str | None  # DuckDB predicate on the local table (alias t)
    private: bool

    @property
    def fqn(self) -> str:
        return f"{self.contract.dataset}.{self.table}"


def _and(*preds: str | None) -> str:
    parts = [f"({p})" for p in preds if p]
    return " AND ".join(parts) if parts else "TRUE"


def targets(contract: Contract) -> list[Target]:
    """Where a push contract's rows go: private rows only ever to a private table."""
    base = contract.push_only_where
    if contract.privacy == "private":
        return [Target(contract, contract.table, base, True)]
    if contract.private_rows:
        return [
            Target(contract, contract.table, _and(base, f"NOT coalesce(({contract.private_rows}), FALSE)"), False),
            Target(contract, contract.table + PRIVATE_SUFFIX, _and(base, f"coalesce(({contract.private_rows}), FALSE)"), True),
        ]
    return [Target(contract, contract.table, base, False)]


def bq_table_for(target: Target, project: str) -> bigquery.Table:
    """The target's table definition, derived from its contract (the private twin keeps the schema)."""
    base = to_bigquery.table(target.contract, project)
    if target.table == target.contract.table:
        return base
    t = bigquery.Table(f"{project}.{target.contract.dataset}.{target.table}", schema=base.schema)
    t.description = f"Private rows ({target.contract.private_rows}) of {target.contract.fqn}. " + target.contract.description
    t.time_partitioning = base.time_partitioning
    t.clustering_fields = base.clustering_fields
    t.labels = {**base.labels, "privacy": "private"}
    return t


def partitioning(table: bigquery.Table) -> str:
    """A table's partitioning and clustering as text ("MONTH on date, clustered by regime_name")."""
    p = table.time_partitioning
    spec = f"{p.type_} on {p.field}" if p else "unpartitioned"
    return spec + (f", clustered by {', '.join(table.clustering_fields)}" if table.clustering_fields else "")


def staging_name(batch_id: str, target: Target, chunk: int) -> str:
    slug = re.sub(r"[^A-Za-z0-9_]", "_", batch_id).lower()
    return f"stg_{slug}__{target.contract.dataset}__{target.table}__c{chunk:04d}"


def _sql_str(path: Path) -> str:
    return str(path).replace("'", "''")


def _label(value: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "_", value.lower())[:63]


# --- reports -------------------------------------------------------------------------------

@dataclass
class ChunkPlan:
    chunk: int
    partitions: list[int]
    rows: int | None = None
    bytes: int | None = None
    # Dry run only: BigQuery's dry-run estimate of the bytes one pass over the chunk's partitions of
    # the target reads (the MERGE and the verify each make one such pass); 0 when the table is absent.
    estimated_bytes_processed: int | None = None


@dataclass
class TargetPlan:
    table: str
    batch_partitions: int
    differing_partitions: int
    chunks: list[ChunkPlan] = field(default_factory=list)
    plan_bytes_processed: int | None = None  # dry run: the comparison query's bytes (BigQuery's statistic)

    @property
    def rows(self) -> int:
        return sum(c.rows or 0 for c in self.chunks)


@dataclass
class BatchReport:
    batch_id: str
    status: str = "pending"
    targets: list[TargetPlan] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    error: str | None = None
    rerun_helps: bool = True  # False when the error needs a change first (schema, a bad query)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for t in d["targets"]:
            for c in t["chunks"]:
                c["partition_count"] = len(c.pop("partitions"))
            t["rows"] = sum(c["rows"] or 0 for c in t["chunks"])
            t["bytes"] = sum(c["bytes"] or 0 for c in t["chunks"])
            estimates = [c["estimated_bytes_processed"] for c in t["chunks"] if c["estimated_bytes_processed"] is not None]
            t["estimated_bytes_processed"] = sum(estimates) if estimates else None
        return d


@dataclass
class PushReport:
    run_id: str
    dry_run: bool
    batches: list[BatchReport] = field(default_factory=list)
    created_datasets: list[str] = field(default_factory=list)
    created_tables: list[str] = field(default_factory=list)
    schema_changes: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # validated batches when the push started
    offline: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(b.error is None for b in self.batches)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "ok": self.ok,
            "offline": self.offline,
            "error": self.error,
            "created_datasets": self.created_datasets,
            "created_tables": self.created_tables,
            "schema_changes": self.schema_changes,
            "pending": self.pending,
            "batches": [b.as_dict() for b in self.batches],
        }


# --- the pusher ----------------------------------------------------------------------------

def push_targets(table_names: list[str]) -> Iterator[Target]:
    """The BigQuery targets a batch's tables push to (unknown and non-push tables skipped)."""
    for fqn in table_names:
        try:
            contract = dc.get(fqn)
        except KeyError:
            continue
        if contract.sync == "push":
            yield from targets(contract)


def pushed_partitions(con: duckdb.DuckDBPyConnection, batch_ids: list[str]) -> dict[str, list[int]]:
    """Per target (fqn, private twins included): the partition ids the push of `batch_ids` wrote,
    from their journaled plans (each plan's chunks are the partitions that differed and were sent)."""
    if not batch_ids:
        return {}
    rows = con.execute(
        f"SELECT table_name, detail FROM {table_ref(dc.get('ops.sync_log'))} WHERE step = 'plan' AND status = 'done' "
        "AND batch_id IN (SELECT unnest(?))", [batch_ids]
    ).fetchall()
    out: dict[str, set[int]] = {}
    for table, detail in rows:
        for chunk in json.loads(detail or "{}").get("chunks") or []:
            out.setdefault(table, set()).update(chunk)
    return {t: sorted(p) for t, p in out.items() if p}


def pending_batches(con: duckdb.DuckDBPyConnection) -> list[tuple[str, list[str]]]:
    """Validated batches, oldest first, with the push tables holding their rows: the batch's
    table_names plus any push table with rows tagged by the batch (e.g. the health gate's
    monitoring.health_checks)."""
    rows = con.execute(
        "SELECT batch_id, table_names FROM ops.batches WHERE status = 'validated' ORDER BY created_at, batch_id"
    ).fetchall()
    if not rows:
        return []
    push_tables = [c for c in dc.CONTRACTS if c.sync == "push" and "batch_id" in c.column_names]
    union = " UNION ALL ".join(f"SELECT DISTINCT batch_id, '{c.fqn}' AS t FROM {table_ref(c)}" for c in push_tables)
    tagged: dict[str, set[str]] = {}
    for b, t in con.execute(f"SELECT batch_id, t FROM ({union}) WHERE batch_id IN (SELECT unnest(?))", [[r[0] for r in rows]]).fetchall():
        tagged.setdefault(b, set()).add(t)
    out = []
    for b, names in rows:
        listed = list(names or [])
        out.append((b, listed + sorted(tagged.get(b, set()) - set(listed))))
    return out


class Pusher:
    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        client: bigquery.Client,
        settings: Settings,
        run_id: str | None = None,
        max_partitions: int | None = None,
        gcs_client: Any = None,
    ) -> None:
        self.con = con
        self.client = client
        self.settings = settings
        self.project = settings.bq_project
        self.run_id = run_id or new_run_id("push")
        self.journal = Journal(con, self.run_id)
        # BigQuery's 4,000 partitions per job is the ceiling (Settings validates it); smaller is allowed.
        self.max_partitions = min(max_partitions or settings.bq_max_partitions_per_job, MAX_PARTITIONS)
        self.staging_dir = settings.home / "sync" / "staging"
        self.gcs_client = gcs_client
        self._ensured: set[str] = set()
        self.report: PushReport | None = None
        self.plan_jobs: list[bigquery.QueryJob] = []  # the current target's plan queries (bytes journaled with the plan)

    # -- BigQuery helpers ---------------------------------------------------------------
    def _labels(self, step: str, batch_id: str, target: Target | None = None, partitions: int | None = None) -> dict[str, str]:
        labels = {"cbi_run": _label(self.run_id), "cbi_step": step, "cbi_batch": _label(batch_id)}
        if target is not None:
            labels["cbi_table"] = _label(target.fqn.replace(".", "__"))
        if partitions is not None:
            labels["cbi_partitions"] = str(partitions)
        return labels

    def _query(self, sql: str, labels: dict[str, str]) -> tuple[bigquery.QueryJob, list[tuple]]:
        """Run a query job (bounded retries); the job and its rows."""

        def run() -> tuple[bigquery.QueryJob, list[tuple]]:
            job = self.client.query(
                sql,
                job_config=query_config(self.settings, labels=labels),
                job_id_prefix=self.run_id + "_",
                retry=client_retry(),
                job_retry=None,
                timeout=call_deadline(),
            )
            rows = job.result(timeout=call_deadline() * 5, retry=client_retry(), job_retry=None)
            return job, [tuple(r.values()) for r in rows]

        return with_retries(f"query ({labels.get('cbi_step')})", run)

    def ensure_target(self, target: Target) -> None:
        """Create the target's dataset and table (from its contract) and the staging dataset, if missing."""
        report = self.report
        if target.fqn in self._ensured:
            return

        def dataset(name: str, description: str, expiration_ms: int | None = None) -> None:
            if name in self._ensured:
                return
            try:
                self.client.get_dataset(f"{self.project}.{name}", retry=client_retry(), timeout=call_deadline())
            except NotFound:
                ds = bigquery.Dataset(f"{self.project}.{name}")
                ds.location = self.settings.bq_location
                ds.description = description
                ds.default_table_expiration_ms = expiration_ms
                self.client.create_dataset(ds, exists_ok=True, retry=client_retry(), timeout=call_deadline())
                if report is not None and name in dc.DATASETS:
                    report.created_datasets.append(name)
            self._ensured.add(name)

        def run() -> None:
            dataset(STAGING_DATASET, "CBI Local push staging (one table per batch, table and chunk; dropped after the MERGE).", 7 * 24 * 3600 * 1000)
            dataset(target.contract.dataset, dc.DATASETS[target.contract.dataset])
            self.finish_rebuild(target)
            try:
                existing = self.client.get_table(f"{self.project}.{target.fqn}", retry=client_retry(), timeout=call_deadline())
            except NotFound:
                self.client.create_table(bq_table_for(target, self.project), exists_ok=True, retry=client_retry())
                if report is not None:
                    report.created_tables.append(target.fqn)
            else:
                if partitioning(existing) != partitioning(bq_table_for(target, self.project)):
                    existing = self.repartition(target, existing)
                self.evolve_schema(target, existing)

        with_retries("create datasets/tables", run)
        self._ensured.add(target.fqn)

    # -- rebuild: an existing table BigQuery cannot change in place ---------------------------
    # BigQuery cannot change a table's partitioning in place (nor CREATE OR REPLACE it with another
    # spec), a copy job keeps the source's, and a column's type cannot be altered. So: INSERT every
    # row into a holding table `<table>__cbi_rebuild` with the contract's partitioning and the new
    # schema (in the same dataset: same location, no staging expiry), verify count and fingerprint
    # against the same SELECT over the original, drop the original, recreate it as the holding table
    # is, INSERT back, verify, drop the holding table. A kill at any point is finished by the next
    # push or `cbi sync migrate-schema` (finish_rebuild): the rows are always in the original, the
    # holding table, or both. Used by repartition (schema kept) and sync.migrate (schema changed).
    def _holding(self, target: Target, suffix: str = REBUILD_SUFFIX) -> str:
        return f"{self.project}.{target.contract.dataset}.{target.table}{suffix}"

    def _fingerprint(self, target: Target, source: str, columns: list[str]) -> tuple[int, ...]:
        """Count and fingerprint of `source` (a table id, or a parenthesised SELECT) on `columns`."""
        if not source.startswith("("):
            ds, name = source.split(".")[1:]
            source = fp.bq_table(self.project, ds, name)
        sql = fp.total_fingerprint_sql(target.contract, "bigquery", source, columns=columns)
        _, rows = self._query(sql, self._labels("rebuild_verify", "-", target))
        return tuple(int(v or 0) for v in rows[0])

    def _copy_rows(self, target: Target, src: str, dest: str, schema: list[bigquery.SchemaField],
                   select: list[str] | None = None) -> tuple[int, ...]:
        """INSERT into `dest` (columns `schema`) `select` (default: the same columns) from `src`, then
        verify the row count and fingerprint of `dest` against that SELECT over `src`, on the columns
        the contract types (the fingerprint's canonical text needs their types). Every column of
        `schema` is copied: one the contract no longer has keeps its values (the schema check after a
        repartition refuses it; only `cbi sync migrate-schema --apply` leaves it out, by its plan)."""
        cols = ", ".join(f"`{f.name}`" for f in schema)
        exprs = ", ".join(select) if select is not None else cols
        self._query(f"INSERT INTO `{dest}` ({cols}) SELECT {exprs} FROM `{src}`", self._labels("rebuild", "-", target))
        known = [f.name for f in schema if f.name in target.contract.column_names]
        got = self._fingerprint(target, dest, known)
        want = self._fingerprint(target, src if select is None else f"(SELECT {exprs} FROM `{src}`)", known)
        if got != want:
            raise SchemaRefused(f"{target.fqn}: rebuild copy {dest} does not equal {src} (rows, fingerprint "
                                f"{got} vs {want}); the original is untouched")
        return got

    def _create_like(self, target: Target, fqn: str, schema: list[bigquery.SchemaField]) -> None:
        spec = bq_table_for(target, self.project)
        t = bigquery.Table(fqn, schema=schema)
        t.time_partitioning, t.clustering_fields = spec.time_partitioning, spec.clustering_fields
        t.description, t.labels = spec.description, spec.labels
        self.client.create_table(t, retry=client_retry(), timeout=call_deadline())

    def rebuild(self, target: Target, table: bigquery.Table, step: str, detail: dict[str, Any],
                schema: list[bigquery.SchemaField] | None = None, select: list[str] | None = None) -> bigquery.Table:
        """Rebuild `table` with its contract's partitioning and clustering and `schema` (default: its
        own), filled by `select` over it (default: every column as is); journaled as `step`."""
        holding = self._holding(target)
        schema = list(schema if schema is not None else table.schema)
        # A holding table next to an original that still has its old spec is from a kill before the
        # drop below: the original is whole, the holding copy may not be.
        self.client.delete_table(holding, not_found_ok=True, retry=client_retry(), timeout=call_deadline())
        self._create_like(target, holding, schema)
        fingerprint = self._copy_rows(target, f"{self.project}.{target.fqn}", holding, schema, select)
        self.journal.record(step, table=target.fqn, rows=fingerprint[0], detail={**detail, "holding": holding})
        self.client.delete_table(f"{self.project}.{target.fqn}", retry=client_retry(), timeout=call_deadline())
        maybe_fault(FAULT_ENV, "rebuild_dropped")
        return self.finish_rebuild(target, interrupted=False)  # type: ignore[return-value]

    def repartition(self, target: Target, table: bigquery.Table) -> bigquery.Table:
        """Rebuild `table` with its contract's partitioning and clustering, rows and schema kept."""
        detail = {"from": partitioning(table), "to": partitioning(bq_table_for(target, self.project))}
        rebuilt = self.rebuild(target, table, "repartition", detail)
        if self.report is not None:
            self.report.schema_changes.append(f"{target.fqn}: repartitioned to {detail['to']}")
        return rebuilt

    def finish_rebuild(self, target: Target, interrupted: bool = True) -> bigquery.Table | None:
        """Complete a rebuild a kill interrupted (a holding table exists); None when there is none."""
        fqn = f"{self.project}.{target.fqn}"
        for suffix in (REBUILD_SUFFIX, *OLDER_HOLDING_SUFFIXES):
            holding = self._holding(target, suffix)
            try:
                held = self.client.get_table(holding, retry=client_retry(), timeout=call_deadline())
            except NotFound:
                continue
            break
        else:
            return None
        known = [f.name for f in held.schema if f.name in target.contract.column_names]
        try:
            current = self.client.get_table(fqn, retry=client_retry(), timeout=call_deadline())
        except NotFound:
            self._create_like(target, fqn, held.schema)
            maybe_fault(FAULT_ENV, "rebuild_recreated")
            self._copy_rows(target, holding, fqn, held.schema)
        else:
            if partitioning(current) != partitioning(held) or schema_mod.evolve(current.schema, held.schema)[1]:
                # Killed before the original was dropped: it is whole; start over from it.
                self.client.delete_table(holding, retry=client_retry(), timeout=call_deadline())
                return None
            if self._fingerprint(target, fqn, known) != self._fingerprint(target, holding, known):
                # Killed between recreating the original and its verified INSERT: fill it again.
                self._query(f"DELETE FROM `{fqn}` WHERE TRUE", self._labels("rebuild", "-", target))
                self._copy_rows(target, holding, fqn, held.schema)
        self.client.delete_table(holding, retry=client_retry(), timeout=call_deadline())
        if interrupted and self.report is not None:
            self.report.schema_changes.append(f"{target.fqn}: finished the rebuild a kill interrupted ({partitioning(held)})")
        return self.client.get_table(fqn, retry=client_retry(), timeout=call_deadline())

    def evolve_schema(self, target: Target, table: bigquery.Table) -> list[schema_mod.SchemaChange]:
        """Bring an existing table to its contract before anything is loaded into it: additive
        changes applied with update_table(["schema"]) and read back; any other change refused."""
        wanted = bq_table_for(target, self.project).schema
        merged, changes = schema_mod.evolve(table.schema, wanted)
        refused = [c for c in changes if not c.additive]
        if refused:
            raise SchemaRefused(
                f"{target.fqn}: the BigQuery table differs from its contract in a way the push does not apply by itself "
                f"(it could lose data): {'; '.join(c.message() for c in refused)}. Nothing was pushed to it; "
                f"`cbi sync migrate-schema {target.contract.fqn}` shows how it would be rebuilt (copy, verify, swap) "
                "and `--apply` does it; or change the contract back."
            )
        if not changes:
            return []
        table.schema = merged
        self.client.update_table(table, ["schema"], retry=client_retry(), timeout=call_deadline())
        read_back = self.client.get_table(f"{self.project}.{target.fqn}", retry=client_retry(), timeout=call_deadline())
        lacking = schema_mod.not_applied(read_back.schema, wanted)
        if lacking:
            raise SchemaRefused(
                f"{target.fqn}: BigQuery accepted the schema update but does not have "
                f"{'; '.join(c.message() for c in lacking)}; nothing was pushed to it"
            )
        self.journal.record(
            "evolve_schema", table=target.fqn, detail={"changes": [c.message() for c in changes]},
        )  # fmt: skip
        if self.report is not None:
            self.report.schema_changes.extend(f"{target.fqn}: {c.message()}" for c in changes)
        return changes

    def check_locations(self, batches: list[tuple[str, list[str]]]) -> None:
        """Every target dataset (and the staging dataset) that already exists must be in
        CBI_BQ_LOCATION: BigQuery cannot MERGE across locations. Checked before anything is written."""
        names = {STAGING_DATASET} | {t.contract.dataset for _b, tables in batches for t in push_targets(tables)}
        check_locations(self.client, self.project, self.settings.bq_location, names, "pushed")

    # -- local SQL ----------------------------------------------------------------------
    def _local_where(self, target: Target, pids: list[int] | None = None) -> str:
        where = _and(target.predicate)
        if pids is not None and target.contract.partition is not None:
            where = _and(where, fp.partition_filter(target.contract, pids, "duckdb", "t"))
        return where

    def _batch_partitions(self, batch_id: str, target: Target) -> list[int]:
        c = target.contract
        sql = (
            f"SELECT DISTINCT {fp.partition_expr(c, 'duckdb', 't')} FROM {table_ref(c)} AS t "
            f"WHERE t.batch_id = ? AND {self._local_where(target)} ORDER BY 1"
        )
        return [int(r[0]) for r in self.con.execute(sql, [batch_id]).fetchall()]

    def _local_fingerprints(self, target: Target, pids: list[int]) -> dict[int, fp.Fingerprint]:
        sql = fp.partition_fingerprints_sql(target.contract, "duckdb", table_ref(target.contract), self._local_where(target, pids))
        return fp.as_map(self.con.execute(sql).fetchall())

    def _bq_fingerprints(self, target: Target, pids: list[int], batch_id: str, create: bool) -> dict[int, fp.Fingerprint] | None:
        """BigQuery's fingerprints of the partitions; None when the table's schema must change first."""
        source = fp.bq_table(self.project, target.contract.dataset, target.table)
        sql = fp.partition_fingerprints_sql(target.contract, "bigquery", source, fp.partition_filter(target.contract, pids, "bigquery", "t"))
        if not create:  # the dry run: nothing is created or changed
            try:
                table = with_retries("get table", lambda: self.client.get_table(f"{self.project}.{target.fqn}", retry=client_retry()))
            except NotFound:
                return {}
            _merged, changes = schema_mod.evolve(table.schema, bq_table_for(target, self.project).schema)
            if changes:  # the push would change the schema first: every partition is pushed
                if self.report is not None:
                    self.report.schema_changes.extend(
                        f"{target.fqn}: {'would ' if c.additive else 'refused (could lose data): '}{c.message()}" for c in changes
                    )
                return None
        job, rows = self._query(sql, self._labels("plan", batch_id, target, len(pids)))
        self.plan_jobs.append(job)
        return fp.as_map(rows)

    # -- plan ---------------------------------------------------------------------------
    def plan_target(self, batch_id: str, target: Target, create: bool = True) -> TargetPlan:
        pids = self._batch_partitions(batch_id, target)
        plan = TargetPlan(target.fqn, len(pids), 0)
        if not pids:
            return plan
        if create:
            self.ensure_target(target)
        if fp.comparable(target.contract):
            local = self._local_fingerprints(target, pids)
            remote = self._bq_fingerprints(target, pids, batch_id, create)
            differ = pids if remote is None else [p for p in pids if local.get(p) != remote.get(p)]
        else:
            differ = pids
        plan.differing_partitions = len(differ)
        for k in range(0, len(differ), self.max_partitions):
            plan.chunks.append(ChunkPlan(k // self.max_partitions, differ[k : k + self.max_partitions]))
        return plan

    # -- steps ----------------------------------------------------------------------------
    def _stage(self, batch_id: str, target: Target, chunk: ChunkPlan, path: Path) -> dict[str, Any]:
        c = target.contract
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".parquet.tmp")
        cols = ", ".join(f"t.{dq(n)}" for n in c.column_names)
        select = f"SELECT {cols} FROM {table_ref(c)} AS t WHERE {self._local_where(target, chunk.partitions)}"
        self.con.execute(f"COPY ({select}) TO '{_sql_str(tmp)}' (FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, path)
        src = f"read_parquet('{_sql_str(path)}')"
        n, x, s = self.con.execute(fp.total_fingerprint_sql(c, "duckdb", src, columns=c.column_names)).fetchall()[0]
        files: list[str] = []
        if "source_file" in c.column_names:
            files = [r[0] for r in self.con.execute(f"SELECT DISTINCT source_file FROM {src} WHERE source_file IS NOT NULL").fetchall()]
            known = [
                r[0]
                for r in self.con.execute("SELECT path FROM ops.file_manifest WHERE table_name = ?", [c.fqn]).fetchall()
            ]
            if len(set(files) | set(known)) <= 3000:
                files = sorted(set(files) | set(known))
        return {
            "file": str(path),
            "rows": int(n),
            "bytes": path.stat().st_size,
            "fingerprint": [int(n), int(x), int(s)],
            "source_files": files,
        }

    def _gcs_threshold(self) -> int:
        return current().gcs_threshold_bytes

    def _load(self, batch_id: str, target: Target, chunk: ChunkPlan, staged: dict[str, Any], name: str) -> tuple[bigquery.LoadJob, dict[str, Any]]:
        dest = f"{self.project}.{STAGING_DATASET}.{name}"
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
            schema=to_bigquery.schema(target.contract),
            labels=self._labels("load", batch_id, target, len(chunk.partitions)),
        )
        opts = bigquery.ParquetOptions()
        opts.enable_list_inference = True
        config.parquet_options = opts
        path = Path(staged["file"])
        detail: dict[str, Any] = {}
        use_gcs = bool(self.settings.gcs_bucket) and staged["bytes"] >= self._gcs_threshold()

        def run() -> bigquery.LoadJob:
            if use_gcs:
                from .gcs import upload_verified

                uri = upload_verified(self._gcs(), self.settings.gcs_bucket, f"cbi-staging/{name}.parquet", path)
                detail["gcs_uri"] = uri
                job = self.client.load_table_from_uri(
                    uri, dest, job_config=config, job_id_prefix=self.run_id + "_", retry=client_retry(), timeout=call_deadline()
                )
            else:
                with open(path, "rb") as fh:
                    job = self.client.load_table_from_file(
                        fh, dest, job_config=config, job_id_prefix=self.run_id + "_", timeout=call_deadline(), num_retries=0
                    )
            job.result(timeout=call_deadline() * 5, retry=client_retry())
            return job

        job = with_retries("load staging", run)
        if job.output_rows is not None and int(job.output_rows) != staged["rows"]:
            raise VerifyError(f"{target.fqn} chunk {chunk.chunk}: staging loaded {job.output_rows} rows, staged {staged['rows']}")
        return job, detail

    def _gcs(self) -> Any:
        if self.gcs_client is None:
            from .gcs import make_storage_client

            self.gcs_client = make_storage_client(self.settings)
        return self.gcs_client

    def merge_sql(self, target: Target, pids: list[int], staging: str, files: list[str]) -> str:
        c = target.contract
        q = fp.bq_quote
        tgt = fp.bq_table(self.project, c.dataset, target.table)
        src = fp.bq_table(self.project, STAGING_DATASET, staging)
        on = " AND ".join(f"T.{q(k)} = S.{q(k)}" for k in c.primary_key)
        pfilter = fp.partition_filter(c, pids, "bigquery", "T")
        sets = ", ".join(f"{q(n)} = S.{q(n)}" for n in c.column_names if n not in c.primary_key)
        cols = ", ".join(q(n) for n in c.column_names)
        vals = ", ".join(f"S.{q(n)}" for n in c.column_names)
        sql = (
            f"MERGE {tgt} AS T USING {src} AS S\n"
            f"ON {on} AND {pfilter}\n"
            f"WHEN MATCHED THEN UPDATE SET {sets}\n"
            f"WHEN NOT MATCHED BY TARGET THEN INSERT ({cols}) VALUES ({vals})"
        )
        if files:
            lits = ", ".join("'" + f.replace("\\", "\\\\").replace("'", "\\'") + "'" for f in files)
            sql += f"\nWHEN NOT MATCHED BY SOURCE AND {pfilter} AND T.`source_file` IN ({lits}) THEN DELETE"
        return sql

    def verify_sql(self, target: Target, pids: list[int], staging: str) -> str:
        c = target.contract
        q = fp.bq_quote
        tgt = fp.bq_table(self.project, c.dataset, target.table)
        src = fp.bq_table(self.project, STAGING_DATASET, staging)
        keys = " AND ".join(f"s.{q(k)} = t.{q(k)}" for k in c.primary_key)
        where = f"{fp.partition_filter(c, pids, 'bigquery', 't')} AND EXISTS (SELECT 1 FROM {src} AS s WHERE {keys})"
        return fp.total_fingerprint_sql(c, "bigquery", tgt, where, columns=c.column_names)

    def _drop(self, name: str, staged: dict[str, Any] | None, gcs_uri: str | None) -> None:
        def run() -> None:
            self.client.delete_table(f"{self.project}.{STAGING_DATASET}.{name}", not_found_ok=True, retry=client_retry(), timeout=call_deadline())
            if gcs_uri:
                from .gcs import delete_uri

                delete_uri(self._gcs(), gcs_uri)

        with_retries("drop staging", run)
        if staged and staged.get("file"):
            Path(staged["file"]).unlink(missing_ok=True)

    # -- one batch ------------------------------------------------------------------------
    def _done(self, batch_id: str) -> dict[tuple[str | None, int | None, str], dict[str, Any]]:
        """Done steps; a failed verify invalidates its chunk's earlier steps (the chunk is redone)."""
        rows = self.con.execute(
            "SELECT table_name, chunk_index, step, status, job_id, row_count, byte_count, partition_count, detail "
            "FROM ops.sync_log WHERE batch_id = ? ORDER BY finished_at, sync_id",
            [batch_id],
        ).fetchall()
        out: dict[tuple[str | None, int | None, str], dict[str, Any]] = {}
        for table, chunk, step, status, job_id, rows_, bytes_, parts, detail in rows:
            if status == "reset":
                for s in CHUNK_STEPS:
                    out.pop((table, chunk, s), None)
            elif status == "done":
                out[(table, chunk, step)] = {
                    "job_id": job_id, "rows": rows_, "bytes": bytes_, "partitions": parts,
                    "detail": json.loads(detail) if detail else None,
                }
        return out

    def push_batch(self, batch_id: str, table_names: list[str], report: PushReport) -> BatchReport:
        br = BatchReport(batch_id)
        done = self._done(batch_id)
        for target in push_targets(table_names):
            br.targets.append(self._push_target(batch_id, target, done, br, report))
        self.journal.record(
            "mark_pushed",
            batch_id=batch_id,
            rows=sum(t.rows for t in br.targets),
            detail={"tables": [t.table for t in br.targets]},
            extra_sql=[("UPDATE ops.batches SET status = 'pushed', pushed_at = ?, error = NULL WHERE batch_id = ?", [now(), batch_id])],
        )
        br.status = "pushed"
        return br

    def _push_target(self, batch_id: str, target: Target, done: dict, br: BatchReport, report: PushReport) -> TargetPlan:
        key = target.fqn
        planned = done.get((key, None, "plan"))
        if planned is not None:
            d = planned["detail"]
            plan = TargetPlan(key, d["batch_partitions"], d["differing_partitions"], [ChunkPlan(i, ps) for i, ps in enumerate(d["chunks"])])
        else:
            started = now()
            self.plan_jobs = []
            plan = self.plan_target(batch_id, target)
            self.journal.record(
                "plan", batch_id=batch_id, table=key, started_at=started, job=self.plan_jobs,
                partitions=plan.differing_partitions,
                detail={
                    "batch_partitions": plan.batch_partitions,
                    "differing_partitions": plan.differing_partitions,
                    "chunks": [c.partitions for c in plan.chunks],
                },
            )  # fmt: skip
        for chunk in plan.chunks:
            self._push_chunk(batch_id, target, chunk, done, br, report)
        return plan

    def _push_chunk(self, batch_id: str, target: Target, chunk: ChunkPlan, done: dict, br: BatchReport, report: PushReport) -> None:
        key = target.fqn
        k = chunk.chunk
        name = staging_name(batch_id, target, k)
        path = self.staging_dir / f"{name}.parquet"

        def is_done(step: str) -> dict[str, Any] | None:
            return done.get((key, k, step))

        if is_done("drop_staging"):
            st = is_done("stage")
            chunk.rows = st["rows"] if st else None
            chunk.bytes = st["bytes"] if st else None
            return
        self.ensure_target(target)
        staged = (is_done("stage") or {}).get("detail")
        need_stage = staged is None or (not is_done("load") and not Path(staged["file"]).exists())
        if need_stage:
            started = now()
            staged = self._stage(batch_id, target, chunk, path)
            self.journal.record(
                "stage", batch_id=batch_id, table=key, chunk=k, started_at=started, partitions=len(chunk.partitions),
                rows=staged["rows"], bytes_=staged["bytes"], detail=staged,
            )  # fmt: skip
            done[(key, k, "stage")] = {"rows": staged["rows"], "bytes": staged["bytes"], "detail": staged}
            done.pop((key, k, "load"), None)
        chunk.rows, chunk.bytes = staged["rows"], staged["bytes"]
        loaded = is_done("load")
        gcs_uri = ((loaded or {}).get("detail") or {}).get("gcs_uri")
        if not loaded:
            started = now()
            job, detail = self._load(batch_id, target, chunk, staged, name)
            br.jobs.append(job.job_id)
            gcs_uri = detail.get("gcs_uri")
            self.journal.record(
                "load", batch_id=batch_id, table=key, chunk=k, started_at=started, job_id=job.job_id,
                rows=int(job.output_rows or 0), bytes_=staged["bytes"], detail=detail or None,
            )  # fmt: skip
        if not is_done("merge"):
            started = now()
            job, _rows = self._query(
                self.merge_sql(target, chunk.partitions, name, staged.get("source_files") or []),
                self._labels("merge", batch_id, target, len(chunk.partitions)),
            )
            br.jobs.append(job.job_id)
            self.journal.record(
                "merge", batch_id=batch_id, table=key, chunk=k, started_at=started, job=job,
                partitions=len(chunk.partitions), rows=int(job.num_dml_affected_rows or 0),
            )  # fmt: skip
        if not is_done("verify"):
            started = now()
            job, rows = self._query(self.verify_sql(target, chunk.partitions, name), self._labels("verify", batch_id, target))
            br.jobs.append(job.job_id)
            got = [int(v) for v in rows[0]]
            want = staged["fingerprint"]
            if got != want:
                msg = f"{key} chunk {k}: BigQuery has {got[0]} rows with fingerprint {got[1:]}, staged {want[0]} rows {want[1:]}"
                self.journal.record("verify", batch_id=batch_id, table=key, chunk=k, status="reset", job=job, error=msg)
                raise VerifyError(msg)
            self.journal.record(
                "verify", batch_id=batch_id, table=key, chunk=k, started_at=started, job=job,
                rows=got[0], detail={"fingerprint": got},
            )  # fmt: skip
        started = now()
        self._drop(name, staged, gcs_uri)
        self.journal.record("drop_staging", batch_id=batch_id, table=key, chunk=k, started_at=started, detail={"gcs_uri": gcs_uri} if gcs_uri else None)

    # -- dry run --------------------------------------------------------------------------
    def dry_run_batch(self, batch_id: str, table_names: list[str]) -> BatchReport:
        import tempfile

        br = BatchReport(batch_id, status="planned")
        with tempfile.TemporaryDirectory(prefix="cbi-dryrun-") as tmp:
            for target in push_targets(table_names):
                self.plan_jobs = []
                plan = self.plan_target(batch_id, target, create=False)
                if self.plan_jobs:
                    plan.plan_bytes_processed = sum(int(j.total_bytes_processed or 0) for j in self.plan_jobs)
                for chunk in plan.chunks:
                    staged = self._stage(batch_id, target, chunk, Path(tmp) / f"{staging_name(batch_id, target, chunk.chunk)}.parquet")
                    chunk.rows, chunk.bytes = staged["rows"], staged["bytes"]
                    Path(staged["file"]).unlink(missing_ok=True)
                    chunk.estimated_bytes_processed = self.estimate_pass(target, chunk.partitions)
                br.targets.append(plan)
        return br

    def estimate_pass(self, target: Target, pids: list[int]) -> int:
        """BigQuery's dry-run estimate of reading the partitions `pids` of the target (0 when absent)."""
        tgt = fp.bq_table(self.project, target.contract.dataset, target.table)
        sql = f"SELECT * FROM {tgt} AS T WHERE {fp.partition_filter(target.contract, pids, 'bigquery', 'T')}"

        def run() -> int:
            job = self.client.query(
                sql, job_config=query_config(self.settings, dry_run=True, use_query_cache=False),
                retry=client_retry(), job_retry=None, timeout=call_deadline(),
            )  # fmt: skip
            return int(job.total_bytes_processed or 0)

        try:
            return with_retries("dry-run estimate", run)
        except NotFound:
            return 0


def _rerun_helps(exc: BaseException) -> bool:
    """A rerun can succeed without a change: BigQuery was away or slow, or a verify reset its chunk."""
    from .retry import is_transient

    return isinstance(exc, (Offline, VerifyError)) or is_transient(exc)


def _record_failure(con: duckdb.DuckDBPyConnection, journal: Journal, batch_id: str, exc: BaseException) -> str:
    msg = redact(f"{type(exc).__name__}: {exc}")
    journal.record("push", batch_id=batch_id, status="failed", error=msg)
    con.execute("UPDATE ops.batches SET error = ? WHERE batch_id = ?", [msg, batch_id])
    return msg


def push(
    con: duckdb.DuckDBPyConnection,
    client: bigquery.Client,
    settings: Settings,
    dry_run: bool = False,
    run_id: str | None = None,
    max_partitions: int | None = None,
    gcs_client: Any = None,
    lock: bool = True,
) -> PushReport:
    """Push every validated batch (oldest first). Stops at the first failing batch: later
    batches may depend on it; it stays 'validated' (pending) with its error recorded."""
    pusher = Pusher(con, client, settings, run_id, max_partitions, gcs_client)
    report = PushReport(pusher.run_id, dry_run)
    pusher.report = report
    batches = pending_batches(con)
    report.pending = [b for b, _t in batches]
    if not batches:
        return report
    if dry_run:
        try:
            pusher.check_locations(batches)
            for batch_id, tables in batches:
                report.batches.append(pusher.dry_run_batch(batch_id, tables))
        except Offline as exc:
            report.offline, report.error = True, str(exc)
        return report
    cm = sync_lock(settings.home) if lock else _null()
    with cm:
        try:
            pusher.check_locations(batches)  # LocationMismatch propagates: nothing written, the caller says why
        except Offline as exc:
            report.offline = True
            br = BatchReport(batches[0][0], status="pending")
            br.error = report.error = _record_failure(con, pusher.journal, batches[0][0], exc)
            report.batches.append(br)
            return report
        for batch_id, tables in batches:
            try:
                report.batches.append(pusher.push_batch(batch_id, tables, report))
            except Exception as exc:  # noqa: BLE001 - recorded, batch stays pending
                br = BatchReport(batch_id, status="pending", rerun_helps=_rerun_helps(exc))
                br.error = _record_failure(con, pusher.journal, batch_id, exc)
                report.batches.append(br)
                report.offline = isinstance(exc, Offline)
                report.error = br.error
                break
    return report


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: object) -> None:
        return None


def job_ids(client: bigquery.Client, run_id: str) -> list[bigquery.job._AsyncJob]:
    """Every BigQuery job a run issued (job ids start with the run id)."""
    return [j for j in client.list_jobs(max_results=10000) if j.job_id.startswith(run_id + "_")]
