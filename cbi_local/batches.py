"""ops.batches rows for work that writes its rows in one go (features, training, health).

The ingest core opens its batch first and closes it after staging (cbi_local/ingest/core.py);
everything else records a finished batch, status 'validated' (ready for `cbi sync push`),
inside the same transaction as its rows, so a batch never exists without them.
"""

from __future__ import annotations

from datetime import datetime

import duckdb


def record_validated(con: duckdb.DuckDBPyConnection, batch_id: str, created_at: datetime, kind: str,
                     tables: list[str], rows_read: int, rows_loaded: int, message: str,
                     rows_duplicate: int = 0) -> None:
    con.execute(
        "INSERT INTO ops.batches (batch_id, created_at, kind, status, rows_read, rows_loaded, rows_quarantined, "
        "rows_duplicate, table_names, message) VALUES (?, ?, ?, 'validated', ?, ?, 0, ?, ?, ?)",
        [batch_id, created_at, kind, rows_read, rows_loaded, rows_duplicate, tables, message],
    )
