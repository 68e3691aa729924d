"""`cbi sync status`: batches by sync state, last push/pull per table, last error, daemon heartbeat.

Reads only the local journal (ops.batches, ops.sync_log, ops.daemon_heartbeat): no BigQuery call.
Bytes billed and processed are BigQuery's own job statistics, journaled per step (the columns
bytes_billed / bytes_processed; entries written before those columns existed carry them in their
detail JSON, read as a fallback): per recent run and over the last 30 days.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import duckdb


def sync_status(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    counts = dict(con.execute("SELECT status, count(*) FROM ops.batches GROUP BY 1").fetchall())
    pending = con.execute(
        "SELECT batch_id, created_at, kind, rows_loaded, table_names, error FROM ops.batches "
        "WHERE status = 'validated' ORDER BY created_at"
    ).fetchall()
    failed = con.execute(
        "SELECT batch_id, created_at, status, error FROM ops.batches "
        "WHERE status IN ('failed', 'failed_validation') ORDER BY created_at DESC LIMIT 20"
    ).fetchall()
    last_push = con.execute(
        "SELECT table_name, max(finished_at), sum(row_count) FILTER (WHERE step = 'stage') FROM ops.sync_log "
        "WHERE status = 'done' AND step IN ('stage', 'merge', 'drop_staging') AND table_name IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    last_pull = con.execute(
        "SELECT table_name, max(finished_at) FROM ops.sync_log WHERE status = 'done' AND step IN ('pull_plan', 'replace') "
        "AND table_name IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    last_error = con.execute(
        "SELECT finished_at, batch_id, table_name, step, error FROM ops.sync_log WHERE status IN ('failed', 'reset') "
        "ORDER BY finished_at DESC LIMIT 1"
    ).fetchall()
    job_bytes = (
        "SELECT sync_run_id, started_at, "
        "coalesce(bytes_billed, TRY_CAST(json_extract(detail, '$.bytes_billed') AS BIGINT)) AS billed, "
        "coalesce(bytes_processed, TRY_CAST(json_extract(detail, '$.bytes_processed') AS BIGINT)) AS processed "
        "FROM ops.sync_log"
    )
    runs = con.execute(
        f"SELECT sync_run_id, min(started_at), sum(billed), sum(processed), count(*) FROM ({job_bytes}) "
        "WHERE billed IS NOT NULL OR processed IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 5"
    ).fetchall()
    month = con.execute(
        f"SELECT coalesce(sum(billed), 0), coalesce(sum(processed), 0), count(*) FROM ({job_bytes}) "
        "WHERE (billed IS NOT NULL OR processed IS NOT NULL) AND started_at >= now() - INTERVAL 30 DAY"
    ).fetchall()[0]
    beat = con.execute(
        "SELECT hostname, process_id, started_at, heartbeat_at, cycle_count, status, message, error "
        "FROM ops.daemon_heartbeat ORDER BY heartbeat_at DESC LIMIT 1"
    ).fetchall()
    now = datetime.now(timezone.utc)
    daemon = None
    if beat:
        h, pid, started, at, cycles, status, message, error = beat[0]
        daemon = {
            "hostname": h, "pid": pid, "started_at": started, "heartbeat_at": at,
            "age_seconds": round((now - at).total_seconds(), 1) if at else None,
            "cycles": cycles, "status": status, "message": message, "error": error,
        }  # fmt: skip
    return {
        "batches": {
            "pending": counts.get("validated", 0),
            "pushed": counts.get("pushed", 0),
            "failed_validation": counts.get("failed_validation", 0),
            "failed": counts.get("failed", 0),
            "open": counts.get("open", 0),
        },
        "pending": [
            {"batch_id": b, "created_at": c, "kind": k, "rows_loaded": r, "tables": list(t or []), "error": e}
            for b, c, k, r, t, e in pending
        ],
        "failed": [{"batch_id": b, "created_at": c, "status": s, "error": e} for b, c, s, e in failed],
        "last_push": [{"table": t, "at": at, "rows_staged": n} for t, at, n in last_push],
        "last_pull": [{"table": t, "at": at} for t, at in last_pull],
        "last_error": (
            {"at": last_error[0][0], "batch_id": last_error[0][1], "table": last_error[0][2], "step": last_error[0][3], "error": last_error[0][4]}
            if last_error
            else None
        ),
        "daemon": daemon,
        "bigquery_bytes": {
            "last_30_days": {"billed": int(month[0]), "processed": int(month[1]), "steps": int(month[2])},
            "runs": [
                {"run_id": r, "started_at": at, "billed": int(b or 0), "processed": int(p or 0), "steps": n}
                for r, at, b, p, n in runs
            ],
        },
    }
