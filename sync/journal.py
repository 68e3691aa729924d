"""The sync journal (ops.sync_log), the push/pull lock, the fault hook and error redaction.

Every step is journaled after it succeeded; a rerun skips journaled steps and redoes the
rest. Every step is idempotent (load WRITE_TRUNCATE into a deterministic staging table,
MERGE on the primary key, drop-if-exists), so a process killed between doing a step and
journaling it only repeats that step.

Fault injection (tests): `CBI_SYNC_FAULT=after:<step>[:<n>]` SIGKILLs the process right
after the n-th (default first) journal entry of <step> is committed; `wait:<step>[:<n>]`
pauses there until the file named by CBI_SYNC_FAULT_GATE is removed. Steps: plan, stage,
load, merge, verify, drop_staging, mark_pushed (push); pull_plan, download, replace (pull);
repartition and migrate_schema (journaled once a rebuild's holding copy is verified), and the two
points between journal entries where a rebuild can die, rebuild_dropped and rebuild_recreated
(sync/push.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

import data_contracts as dc
from cbi_local.faults import maybe_fault
from cbi_local.warehouse import transaction

FAULT_ENV = "CBI_SYNC_FAULT"
LOG = dc.get("ops.sync_log")


def now() -> datetime:
    return datetime.now(timezone.utc)


class SyncBusy(RuntimeError):
    """Another process holds the sync lock."""


@contextlib.contextmanager
def sync_lock(home: Path, name: str = "sync") -> Iterator[Path]:
    """An exclusive, non-blocking file lock under the warehouse home (released on exit or death)."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / f"{name}.lock"
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise SyncBusy(f"{path} is held by {holder}: another `cbi sync`/daemon is running") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        yield path
    finally:
        fh.close()


_SECRET = re.compile(
    r"(?i)(bearer\s+[a-z0-9._\-]+|access_token=[^&\s]+|(\"?(private_key|client_secret|refresh_token|token)\"?\s*[:=]\s*)\"?[^\",\s]+)"
)


def redact(text: str) -> str:
    """Error text without credential material (tokens, keys), bounded in length."""
    return _SECRET.sub("[redacted]", str(text))[:2000]


def _maybe_fault(step: str) -> None:
    """The sync's fault points (see the module doc), through the one fault hook (cbi_local.faults)."""
    maybe_fault(FAULT_ENV, step)


class Journal:
    """Writes and reads ops.sync_log on one DuckDB connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, run_id: str) -> None:
        self.con = con
        self.run_id = run_id

    def record(
        self,
        step: str,
        *,
        batch_id: str | None = None,
        table: str | None = None,
        chunk: int | None = None,
        status: str = "done",
        job_id: str | None = None,
        partitions: int | None = None,
        rows: int | None = None,
        bytes_: int | None = None,
        job: Any = None,
        started_at: datetime | None = None,
        detail: Any = None,
        error: str | None = None,
        extra_sql: list[tuple[str, list[Any]]] | None = None,
    ) -> None:
        """Append one entry; `extra_sql` runs in the same transaction (e.g. marking a batch pushed).
        `job` (a finished BigQuery job, or a list of them) gives job_id when none is passed, and the
        bytes BigQuery billed and processed (summed over a list) go into the columns `bytes_billed`
        / `bytes_processed`."""
        jobs = [j for j in (job if isinstance(job, (list, tuple)) else [job]) if j is not None]
        if jobs and job_id is None and len(jobs) == 1:
            job_id = jobs[0].job_id
        billed, processed = _bytes(jobs, "total_bytes_billed"), _bytes(jobs, "total_bytes_processed")
        values = {
            "sync_id": uuid.uuid4().hex,
            "batch_id": batch_id,
            "table_name": table,
            "step": step,
            "status": status,
            "job_id": job_id,
            "partition_count": partitions,
            "row_count": rows,
            "byte_count": bytes_,
            "started_at": started_at or now(),
            "finished_at": now(),
            "error": redact(error) if error else None,
            "sync_run_id": self.run_id,
            "chunk_index": chunk,
            "detail": json.dumps(detail, default=str) if detail is not None else None,
            "bytes_billed": billed,
            "bytes_processed": processed,
        }
        cols = [c for c in LOG.column_names if c in values]
        sql = f"INSERT INTO ops.sync_log ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
        with transaction(self.con):
            self.con.execute(sql, [values[c] for c in cols])
            for stmt, params in extra_sql or []:
                self.con.execute(stmt, params)
        if status == "done":
            _maybe_fault(step)


def _bytes(jobs: list[Any], attr: str) -> int | None:
    """Sum of a job statistic over query jobs (None when no job reports it: loads, copies)."""
    values = [getattr(j, attr, None) for j in jobs]
    known = [int(v) for v in values if v is not None]
    return sum(known) if known else None


def new_run_id(kind: str) -> str:
    """A run id usable as a BigQuery job-id prefix and label value."""
    return f"cbi_{kind}_{datetime.now(timezone.utc).strftime('%Y%m%dt%H%M%S')}_{uuid.uuid4().hex[:8]}"
