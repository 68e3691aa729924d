"""`cbi sync diff` and `cbi sync pull`: per-partition parity with BigQuery, without moving equal data.

Both engines compute per-partition fingerprints of the table's content (row count and an
order-independent hash aggregate, see sync.fingerprint); only those numbers cross the network.

diff  reports every partition as equal, differ, missing_local or missing_bigquery.
pull  (contracts with sync='pull', e.g. weather and CFTC, which cloud jobs write) downloads
      only the partitions that differ or exist only in BigQuery (Arrow, through the BigQuery
      Storage Read API with the partitions as its row restriction; REST query when that API
      is unavailable, see sync.bigquery.storage), and replaces them
      locally in one transaction (journaled with it). Partitions that exist only locally are
      reported and kept: BigQuery holds the truth for these tables, but an empty or missing
      BigQuery table never deletes local data silently; `prune=True` deletes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

import data_contracts as dc
from cbi_local.config import Settings
from data_contracts import to_duckdb
from data_contracts.model import Contract
from data_contracts.to_duckdb import table_ref

from . import fingerprint as fp
from .journal import Journal, new_run_id, now, sync_lock
from .push import PRIVATE_SUFFIX, Target, targets
from .bigquery.client import max_bytes_billed, query_config
from .bigquery.storage import read_rows
from .retry import call_deadline, client_retry, with_retries


@dataclass
class PartitionDiff:
    partition: str
    pid: int
    status: str  # equal | differ | missing_local | missing_bigquery
    local_rows: int | None
    bigquery_rows: int | None


@dataclass
class TableDiff:
    table: str
    comparable: bool
    bigquery_table_exists: bool
    partitions: list[PartitionDiff] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(p.status == status for p in self.partitions)

    @property
    def ok(self) -> bool:
        return all(p.status == "equal" for p in self.partitions)

    def as_dict(self, all_partitions: bool = False) -> dict[str, Any]:
        return {
            "table": self.table,
            "comparable": self.comparable,
            "bigquery_table_exists": self.bigquery_table_exists,
            "ok": self.ok,
            "counts": {s: self.count(s) for s in ("equal", "differ", "missing_local", "missing_bigquery")},
            "local_rows": sum(p.local_rows or 0 for p in self.partitions),
            "bigquery_rows": sum(p.bigquery_rows or 0 for p in self.partitions),
            "partitions": [asdict(p) for p in self.partitions if all_partitions or p.status != "equal"],
        }


def _local_source(target: Target) -> tuple[str, str]:
    return table_ref(target.contract), (target.predicate or "TRUE")


def local_fingerprints(con: duckdb.DuckDBPyConnection, target: Target, pids: list[int] | None = None) -> dict[int, fp.Fingerprint]:
    """Per-partition fingerprints of the target's local rows (only partitions `pids` when given)."""
    src, where = _local_source(target)
    if pids is not None:
        where = f"({where}) AND {fp.partition_filter(target.contract, pids, 'duckdb', 't')}"
    return fp.as_map(con.execute(fp.partition_fingerprints_sql(target.contract, "duckdb", src, where)).fetchall())


def _capped(config: bigquery.QueryJobConfig, cap: int | None) -> bigquery.QueryJobConfig:
    if cap:
        config.maximum_bytes_billed = cap
    return config


def bigquery_fingerprints(
    client: bigquery.Client, project: str, target: Target, run_id: str, max_bytes_billed: int | None = None,
    pids: list[int] | None = None,
) -> dict[int, fp.Fingerprint] | None:
    """None when the BigQuery table does not exist (one query job; no separate metadata call). With
    `pids`, a literal partition filter: BigQuery reads (and bills) only those partitions."""
    where = fp.partition_filter(target.contract, pids, "bigquery", "t") if pids is not None else "TRUE"
    sql = fp.partition_fingerprints_sql(target.contract, "bigquery", fp.bq_table(project, target.contract.dataset, target.table), where)

    def run() -> list[tuple]:
        job = client.query(
            sql,
            job_config=_capped(bigquery.QueryJobConfig(labels={"cbi_run": run_id, "cbi_step": "fingerprint"}), max_bytes_billed),
            job_id_prefix=run_id + "_",
            retry=client_retry(),
            job_retry=None,
            timeout=call_deadline(),
        )
        return [tuple(r.values()) for r in job.result(timeout=call_deadline() * 5, retry=client_retry(), job_retry=None)]

    try:
        return fp.as_map(with_retries("fingerprint", run))
    except NotFound:
        return None


def compare(target: Target, local: dict[int, fp.Fingerprint], remote: dict[int, fp.Fingerprint] | None) -> TableDiff:
    d = TableDiff(target.fqn, fp.comparable(target.contract), remote is not None)
    remote = remote or {}
    for pid in sorted(set(local) | set(remote)):
        lo, bq = local.get(pid), remote.get(pid)
        status = "equal" if lo == bq else "missing_local" if lo is None else "missing_bigquery" if bq is None else "differ"
        d.partitions.append(PartitionDiff(fp.partition_label(target.contract, pid), pid, status, lo.rows if lo else None, bq.rows if bq else None))
    return d


def resolve_tables(names: list[str] | None, direction: str | None) -> list[Target]:
    """Targets for the named tables (dataset.table, or a private twin), else every synced contract."""
    out: list[Target] = []
    if names:
        for name in names:
            base = name.removesuffix(PRIVATE_SUFFIX)
            contract = dc.get(base)
            if contract.sync == "local":
                raise ValueError(f"{name} is local-only (sync='local'): it is never synced")
            if direction and contract.sync != direction:
                raise ValueError(f"{name} has sync='{contract.sync}', not '{direction}'")
            ts = targets(contract) if contract.sync == "push" else [Target(contract, contract.table, None, contract.privacy == "private")]
            out += [t for t in ts if name == base or t.fqn == name]
        return out
    for contract in dc.CONTRACTS:
        if contract.sync == "local" or (direction and contract.sync != direction):
            continue
        out += targets(contract) if contract.sync == "push" else [Target(contract, contract.table, None, contract.privacy == "private")]
    return out


def diff(con: duckdb.DuckDBPyConnection, client: bigquery.Client, settings: Settings, names: list[str] | None = None,
         run_id: str | None = None, partitions: dict[str, list[int]] | None = None) -> list[TableDiff]:
    """Per table (and private twin): per-partition fingerprints on both sides, compared. With
    `partitions` (target fqn -> partition ids), only those partitions of the targets it names are
    compared, and targets it does not name are left out."""
    run_id = run_id or new_run_id("diff")
    out = []
    for target in resolve_tables(names, None):
        if partitions is not None and target.fqn not in partitions:
            continue
        pids = partitions.get(target.fqn) if partitions is not None else None
        local = local_fingerprints(con, target, pids)
        remote = bigquery_fingerprints(client, settings.bq_project, target, run_id, max_bytes_billed(settings), pids)
        if remote is None and not local and target.private:
            continue  # an unused private twin
        out.append(compare(target, local, remote))
    return out


# --- pull ----------------------------------------------------------------------------------

@dataclass
class PullTable:
    table: str
    partitions_checked: int = 0
    downloaded_partitions: list[str] = field(default_factory=list)
    rows_downloaded: int = 0
    rows_deleted: int = 0
    kept_local_only: list[str] = field(default_factory=list)
    bigquery_table_exists: bool = True


@dataclass
class PullReport:
    run_id: str
    tables: list[PullTable] = field(default_factory=list)
    jobs: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "tables": [asdict(t) for t in self.tables]}


def _arrow_for(contract: Contract, table: pa.Table) -> pa.Table:
    return table.select([c for c in contract.column_names if c in table.column_names])


def pull(
    con: duckdb.DuckDBPyConnection,
    client: bigquery.Client,
    settings: Settings,
    names: list[str] | None = None,
    prune: bool = False,
    run_id: str | None = None,
    lock: bool = True,
) -> PullReport:
    run_id = run_id or new_run_id("pull")
    report = PullReport(run_id)
    journal = Journal(con, run_id)
    import contextlib

    with sync_lock(settings.home) if lock else contextlib.nullcontext():
        for target in resolve_tables(names, "pull"):
            report.tables.append(_pull_table(con, client, settings, target, journal, prune))
    return report


def _pull_table(con, client, settings: Settings, target: Target, journal: Journal, prune: bool) -> PullTable:
    c = target.contract
    pt = PullTable(target.fqn)
    started = now()
    local = local_fingerprints(con, target)
    remote = bigquery_fingerprints(client, settings.bq_project, target, journal.run_id, max_bytes_billed(settings))
    if remote is None:
        pt.bigquery_table_exists = False
        pt.kept_local_only = [fp.partition_label(c, p) for p in sorted(local)]
        journal.record("pull_plan", table=target.fqn, status="done", partitions=0, detail={"bigquery_table_exists": False})
        return pt
    d = compare(target, local, remote)
    pt.partitions_checked = len(d.partitions)
    fetch = [p.pid for p in d.partitions if p.status in ("differ", "missing_local")]
    local_only = [p.pid for p in d.partitions if p.status == "missing_bigquery"]
    pt.kept_local_only = [] if prune else [fp.partition_label(c, p) for p in local_only]
    replace = fetch + (local_only if prune else [])
    journal.record("pull_plan", table=target.fqn, started_at=started, partitions=len(replace), detail={"fetch": fetch, "delete": local_only if prune else []})
    if not replace:
        return pt
    arrow = pa.table({})
    if fetch:
        sql = (
            f"SELECT * FROM {fp.bq_table(settings.bq_project, c.dataset, target.table)} AS t "
            f"WHERE {fp.partition_filter(c, fetch, 'bigquery', 't')}"
        )

        arrow, read_api = read_rows(
            client, settings, settings.bq_project, c.dataset, target.table, fp.partition_filter(c, fetch, "bigquery", "")
        )

        def run() -> tuple[bigquery.QueryJob, pa.Table]:
            job = client.query(
                sql,
                job_config=query_config(settings, labels={"cbi_run": journal.run_id, "cbi_step": "download"}),
                job_id_prefix=journal.run_id + "_",
                retry=client_retry(),
                job_retry=None,
                timeout=call_deadline(),
            )
            job.result(timeout=call_deadline() * 5, retry=client_retry(), job_retry=None)
            return job, job.to_arrow(create_bqstorage_client=False)

        job = None
        read = {"read_api": "storage"}
        if arrow is None:  # the Storage Read API was not usable: one query job through REST
            read = {"read_api": "rest", "storage_unavailable": read_api}
            job, arrow = with_retries("download", run)
        arrow = _arrow_for(c, arrow)
        journal.record(
            "download", table=target.fqn, partitions=len(fetch), rows=arrow.num_rows, bytes_=arrow.nbytes, job=job, detail=read,
        )  # fmt: skip
    pid_sql = fp.partition_expr(c, "duckdb", "t")
    ids = ", ".join(str(p) for p in replace)
    tref = table_ref(c)
    cols = ", ".join(to_duckdb.quote(n) for n in c.column_names)
    casts = ", ".join(
        f"CAST(s.{to_duckdb.quote(col.name)} AS {to_duckdb.column_type(col)})" if col.name in arrow.column_names else "NULL"
        for col in c.columns
    )
    con.register("_cbi_pull_src", arrow if fetch else pa.table({"_": pa.array([], pa.int8())}))
    try:
        deleted = con.execute(f"SELECT count(*) FROM {tref} AS t WHERE {pid_sql} IN ({ids}) AND {target.predicate or 'TRUE'}").fetchall()[0][0]
        stmts: list[tuple[str, list[Any]]] = [
            (f"DELETE FROM {tref} AS t WHERE {pid_sql} IN ({ids}) AND {target.predicate or 'TRUE'}", []),
        ]
        if fetch:
            stmts.append((f"INSERT INTO {tref} ({cols}) SELECT {casts} FROM _cbi_pull_src AS s", []))
        journal.record(
            "replace", table=target.fqn, partitions=len(replace), rows=arrow.num_rows if fetch else 0,
            detail={"partitions": [fp.partition_label(c, p) for p in replace], "rows_deleted": int(deleted)},
            extra_sql=stmts,
        )  # fmt: skip
    finally:
        con.unregister("_cbi_pull_src")
    pt.downloaded_partitions = [fp.partition_label(c, p) for p in fetch]
    pt.rows_downloaded = arrow.num_rows if fetch else 0
    pt.rows_deleted = int(deleted)
    return pt
