"""ops: batches, file manifest, sync journal."""

from typing import Literal, get_args

from .. import columns as c
from .. import rules as r
from ..sources import CBI
from ..model import Contract

# Every state ops.batches.status is ever written with: open (an ingest staging its rows), validated
# (closed, gate passed: pushable), empty (closed, loaded nothing), failed_validation (the gate held it
# back), pushed (in BigQuery), rolled_back (a run that stopped before closing it; its rows removed).
BatchStatus = Literal["open", "validated", "empty", "failed_validation", "pushed", "rolled_back"]
BATCH_STATUSES: tuple[str, ...] = get_args(BatchStatus)

batches = Contract(
    dataset="ops",
    table="batches",
    description="One row per run that wrote data; status is " + ", ".join(BATCH_STATUSES[:-1])
                + f" or {BATCH_STATUSES[-1]}.",
    columns=(
        c.batch_id.required(), c.created_at.required(), c.kind.required(), c.status.required(), c.rows_read,
        c.rows_loaded, c.rows_quarantined, c.rows_duplicate, c.table_names, c.pushed_at, c.error, c.message,
    ),
    primary_key=("batch_id",),
    sources=(CBI,),
    rules=(r.unique_key(),),
    sync="local",
)

file_manifest = Contract(
    dataset="ops",
    table="file_manifest",
    description="Every input file seen: identity (size, sha256) and its row accounting read = loaded + quarantined + duplicate.",
    columns=(
        c.path.required(), c.file_sha256.required(), c.size_bytes, c.file_mtime, c.record_schema, c.encoding,
        c.table_name, c.rows_read, c.rows_loaded, c.rows_quarantined, c.rows_duplicate, c.batch_id,
        c.ingested_at, c.status, c.error,
    ),
    primary_key=("path",),
    sources=(CBI,),
    rules=(r.unique_key(),),
    sync="local",
)

sync_log = Contract(
    dataset="ops",
    table="sync_log",
    description="Journal of every sync step, so a crashed push resumes exactly once.",
    columns=(
        c.sync_id.required(), c.batch_id, c.table_name, c.step.required(), c.status.required(), c.job_id,
        c.partition_count, c.row_count, c.byte_count, c.started_at, c.finished_at, c.error,
        c.sync_run_id, c.chunk_index, c.detail, c.bytes_billed, c.bytes_processed,
    ),
    primary_key=("sync_id",),
    sources=(CBI,),
    rules=(r.unique_key(),),
    sync="local",
)

daemon_heartbeat = Contract(
    dataset="ops",
    table="daemon_heartbeat",
    description="One row per daemon instance (host, pid): last heartbeat, cycles, last cycle's status and error.",
    columns=(
        c.hostname.required(), c.process_id.required(), c.started_at, c.heartbeat_at.required(), c.cycle_count,
        c.status, c.message, c.error,
    ),
    primary_key=("hostname", "process_id"),
    sources=(CBI,),
    rules=(r.unique_key(),),
    sync="local",
)

CONTRACTS = (batches, file_manifest, sync_log, daemon_heartbeat)
