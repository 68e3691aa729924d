"""ops.batches rows for work that writes its rows in one go (features, training, health), and a
failed gate's move of a whole batch into the quarantine.

The ingest core opens its batch first and closes it after staging (cbi_local/ingest/core.py);
everything else records a finished batch, status 'validated' (ready for `cbi sync push`),
inside the same transaction as its rows, so a batch never exists without them. When the health
gate fails a batch (health.validate_batch), `quarantine_batch` moves all its rows to
monitoring.quarantine and moves the counts with them: the batch's, and each file's in
ops.file_manifest, in one transaction.
"""

from __future__ import annotations

from datetime import datetime, timezone

import duckdb

import data_contracts as dc
from data_contracts.to_duckdb import table_ref

from .warehouse import transaction


def record_validated(con: duckdb.DuckDBPyConnection, batch_id: str, created_at: datetime, kind: str,
                     tables: list[str], rows_read: int, rows_loaded: int, message: str,
                     rows_duplicate: int = 0) -> None:
    con.execute(
        "INSERT INTO ops.batches (batch_id, created_at, kind, status, rows_read, rows_loaded, rows_quarantined, "
        "rows_duplicate, table_names, message) VALUES (?, ?, ?, 'validated', ?, ?, 0, ?, ?, ?)",
        [batch_id, created_at, kind, rows_read, rows_loaded, rows_duplicate, tables, message],
    )


def quarantine_batch(
    con: duckdb.DuckDBPyConnection, batch_id: str, failed: dict[str, list[str]], tables: list[str]
) -> tuple[int, dict[str, int]]:
    """Move ALL the batch's rows (of every table in `tables`) into the quarantine, and mark the batch
    failed_validation. A batch is pushed whole or never, so rows left in the tables that passed
    would stay local and never reach BigQuery: they are held back with it (rule `batch_gate`).
    `failed` maps table -> failed rule names. The file manifest's accounting follows the rows
    (loaded -> quarantined), as do the batch's counts. Returns (rows moved, rows moved per file)."""
    now = datetime.now(timezone.utc)
    why = "; ".join(f"{t}: {', '.join(r)}" for t, r in failed.items())
    per_file: dict[str | None, int] = {}  # None: rows of tables without a source_file
    with transaction(con):
        for fqn in tables:
            contract = dc.get(fqn)
            if "batch_id" not in contract.column_names:
                continue
            rule, reason = (
                (failed[fqn][0], f"batch {batch_id} failed blocking rule(s) {', '.join(failed[fqn])} on {fqn}")
                if fqn in failed
                else ("batch_gate", f"held back with batch {batch_id}, which failed the health gate ({why})")
            )
            has_file = "source_file" in contract.column_names
            for path, n in con.execute(
                f"SELECT {'source_file' if has_file else 'NULL'}, COUNT(*) FROM {table_ref(contract)} WHERE batch_id = ? GROUP BY ALL",
                [batch_id],
            ).fetchall():
                per_file[path] = per_file.get(path, 0) + n
            con.execute(
                f"""
                INSERT INTO monitoring.quarantine (quarantine_id, quarantined_at, batch_id, table_name, source_file,
                       file_sha256, record_number, rule, reason, payload, status)
                SELECT CAST(uuid() AS VARCHAR), ?, ?, ?, {"t.source_file" if has_file else "NULL"},
                       {"t.file_sha256" if "file_sha256" in contract.column_names else "NULL"}, NULL, ?, ?, CAST(to_json(t) AS VARCHAR), 'held'
                FROM {table_ref(contract)} t WHERE t.batch_id = ?
                """,
                [now, batch_id, fqn, rule, reason, batch_id],
            )
            con.execute(f"DELETE FROM {table_ref(contract)} WHERE batch_id = ?", [batch_id])
        files = {p: n for p, n in per_file.items() if p is not None}
        if files:
            con.execute(
                "UPDATE ops.file_manifest m SET rows_loaded = m.rows_loaded - f.n, rows_quarantined = m.rows_quarantined + f.n "
                "FROM (SELECT unnest($p) AS path, unnest($n) AS n) f WHERE m.path = f.path",
                {"p": list(files), "n": list(files.values())},
            )
        moved = sum(per_file.values())
        con.execute(
            "UPDATE ops.batches SET status = 'failed_validation', error = ?, rows_loaded = rows_loaded - ?, "
            "rows_quarantined = rows_quarantined + ? WHERE batch_id = ?",
            [why, moved, moved, batch_id],
        )
    return moved, files
