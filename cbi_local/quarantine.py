"""The quarantine: rows that broke a rule, kept whole until released or dropped, never deleted.

Statuses: held (waiting), released (re-loaded after a fix), dropped (judged worthless, kept
for the record), superseded (the file changed and its new version was loaded instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

import data_contracts as dc
from data_contracts.to_duckdb import quote, table_ref

from .health import validate_batch
from .ingest.core import FileIdentity, IngestRun
from .warehouse import transaction


def summary(con: duckdb.DuckDBPyConnection, status: str | None = "held") -> list[dict[str, Any]]:
    rows = con.execute(
        """
        SELECT table_name, rule, status, COUNT(*) AS n, COUNT(DISTINCT source_file) AS files, min(reason) AS example
        FROM monitoring.quarantine WHERE (? IS NULL OR status = ?)
        GROUP BY ALL ORDER BY n DESC, table_name, rule
        """,
        [status, status],
    ).fetchall()
    keys = ("table", "rule", "status", "rows", "files", "example")
    return [dict(zip(keys, r)) for r in rows]


def show(con: duckdb.DuckDBPyConnection, quarantine_id: str) -> dict[str, Any]:
    cur = con.execute("SELECT * FROM monitoring.quarantine WHERE quarantine_id = ?", [quarantine_id])
    row = cur.fetchall()
    if not row:
        raise KeyError(f"no quarantine entry {quarantine_id!r}")
    return dict(zip([d[0] for d in cur.description], row[0]))


def _select_ids(con, ids: list[str] | None, rule: str | None, table: str | None, batch: str | None,
                status: str = "held") -> list[str]:
    if not (ids or rule or table or batch):
        raise ValueError("name the entries: ids, or --rule/--table/--batch")
    cond, params = ["status = ?"], [status]
    if ids:
        cond.append("quarantine_id IN (SELECT unnest(?))")
        params.append(ids)
    for col, val in (("rule", rule), ("table_name", table), ("batch_id", batch)):
        if val:
            cond.append(f"{col} = ?")
            params.append(val)
    return [r[0] for r in con.execute(f"SELECT quarantine_id FROM monitoring.quarantine WHERE {' AND '.join(cond)}", params).fetchall()]


def drop(con, ids=None, rule=None, table=None, batch=None) -> int:
    chosen = _select_ids(con, ids, rule, table, batch)
    con.execute(
        "UPDATE monitoring.quarantine SET status = 'dropped', resolved_at = ? WHERE quarantine_id IN (SELECT unnest(?))",
        [datetime.now(timezone.utc), chosen],
    )
    return len(chosen)


def restore(con, ids=None, rule=None, table=None, batch=None, dropped_at: datetime | None = None) -> int:
    """Undo a drop: dropped rows go back to held (then they can be released or dropped again).
    `dropped_at` narrows to one drop (all rows one drop marked share its resolved_at)."""
    chosen = _select_ids(con, ids, rule, table, batch, status="dropped")
    if dropped_at is not None:
        chosen = [r[0] for r in con.execute(
            "SELECT quarantine_id FROM monitoring.quarantine WHERE quarantine_id IN (SELECT unnest(?)) AND resolved_at = ?",
            [chosen, dropped_at]).fetchall()]
    con.execute(
        "UPDATE monitoring.quarantine SET status = 'held', resolved_at = NULL WHERE quarantine_id IN (SELECT unnest(?))",
        [chosen],
    )
    return len(chosen)


@dataclass
class ReleaseReport:
    released: int
    loaded: int
    requarantined: int
    duplicates: int
    batch_id: str | None
    gate: dict[str, Any] | None = None  # the release batch's health gate (validate_batch), when it loaded rows


def release(con, ids=None, rule=None, table=None, batch=None) -> ReleaseReport:
    """Re-load held rows after a fix. They pass through the same rules as any input: a row that
    still breaks one goes back to the quarantine (a new entry) and the old one is closed. The
    release batch then passes the same health gate as any batch: if it fails a table-level
    rule, all its rows go back too (counted as quarantined again). One transaction: a release
    killed or failing half-way leaves the quarantine as it was."""
    chosen = _select_ids(con, ids, rule, table, batch)
    if not chosen:
        return ReleaseReport(0, 0, 0, 0, None)
    with transaction(con):
        return _release(con, chosen)


def _release(con, chosen: list[str]) -> ReleaseReport:
    con.execute("CREATE OR REPLACE TEMP TABLE _cbi_release AS SELECT * FROM monitoring.quarantine WHERE quarantine_id IN (SELECT unnest(?))", [chosen])
    tables = [r[0] for r in con.execute("SELECT DISTINCT table_name FROM _cbi_release WHERE payload IS NOT NULL").fetchall()]
    run = IngestRun(con, kind="release")
    loaded = requarantined = dups = 0
    for fqn in tables:
        contract = dc.get(fqn)
        files = [
            FileIdentity(Path(p), sha or "", 0, datetime.now(timezone.utc), "release", "json")
            for p, sha in con.execute("SELECT DISTINCT source_file, file_sha256 FROM _cbi_release WHERE table_name = ?", [fqn]).fetchall()
        ]
        cols = ", ".join(
            f"json_extract_string(payload, '$.{c.name}') AS {quote(c.name)}"
            if c.type != "STRUCT" else f"json_extract(payload, '$.{c.name}') AS {quote(c.name)}"
            for c in contract.columns
            if c.name not in ("source_file", "file_sha256", "batch_id", "ingested_at")
        )
        rel = con.sql(
            f"SELECT {cols}, source_file, record_number FROM _cbi_release WHERE table_name = '{fqn}' AND payload IS NOT NULL"
        )
        counts = run.stage(contract, rel, files)
        for path, c in counts.items():
            loaded += c.rows_loaded
            requarantined += c.rows_quarantined
            dups += c.rows_duplicate
            # The file's accounting moves released rows from quarantined to loaded/duplicate;
            # a row quarantined again stays counted once (its old entry closes, a new one opens).
            con.execute(
                "UPDATE ops.file_manifest SET rows_loaded = rows_loaded + ?, rows_duplicate = rows_duplicate + ?, "
                "rows_quarantined = rows_quarantined - ? WHERE path = ?",
                [c.rows_loaded, c.rows_duplicate, c.rows_loaded + c.rows_duplicate, path],
            )
    summary = run.finish(record_manifest=False)
    con.execute(
        "UPDATE monitoring.quarantine SET status = 'released', resolved_at = ? WHERE quarantine_id IN (SELECT unnest(?))",
        [datetime.now(timezone.utc), chosen],
    )
    con.execute("DROP TABLE _cbi_release")
    report = ReleaseReport(len(chosen), loaded, requarantined, dups, run.batch_id)
    if summary.status == "validated":
        report.gate = validate_batch(con, run.batch_id)
        report.loaded -= report.gate["rows_quarantined"]
        report.requarantined += report.gate["rows_quarantined"]
    return report
