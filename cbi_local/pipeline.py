"""The steps every entry point shares (CLI, demo, and later `cbi run` and the daemon).

A step opens one batch, loads through the ingest core, closes the batch, runs the health
gate over the batch's rows (a blocking failure quarantines the batch: it is never pushed),
and rebuilds the continuous series when its inputs changed.

Crash safety: the close (file manifest, counts, gate result, continuous rebuild, final status)
is ONE transaction, so no batch is ever `validated` (pushable) without its gate result, nor
closed with its continuous series unbuilt. A run that raises before that commit rolls its
batch back at once (`IngestRun.abort`); a run that is killed leaves it `open`, and the next
writer connection rolls it back (cbi_local/warehouse.py). Either way the rerun finds the
files new and ends as an uninterrupted run would. Fault points for the crash tests
(CBI_INGEST_FAULT=after:<step>[:n], cbi_local/faults.py): open, stage, file_error, finish
(in the ingest core), gate, continuous, close (here, before the commit).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb

from . import health
from .continuous import build_continuous
from .faults import maybe_fault
from .ingest import detect
from .ingest.core import FAULT_ENV, IngestRun, RunSummary
from .warehouse import OPEN_BATCHES, transaction

CONTINUOUS_INPUTS = {
    "market_data.databento_futures_ohlcv_1h",
    "market_data.databento_futures_ohlcv_1d",
    "market_data.yahoo_historical",
}

# progress(message) or progress(message, done, total): a step, optionally with a count.
Progress = Callable[..., None]


@contextlib.contextmanager
def _batch(con: duckdb.DuckDBPyConnection, kind: str) -> Iterator[IngestRun]:
    """An IngestRun whose batch is rolled back if anything raises before it closed."""
    run = IngestRun(con, kind=kind)
    try:
        yield run
    except BaseException as exc:
        if run.batch_id in OPEN_BATCHES:
            with contextlib.suppress(duckdb.Error):  # the original error is the one to report
                run.abort(f"the run failed before closing it ({type(exc).__name__}: {str(exc)[:300]})")
        raise


def _close(con: duckdb.DuckDBPyConnection, run: IngestRun, report: dict[str, Any]) -> dict[str, Any]:
    with transaction(con):  # one unit: see the module doc
        summary: RunSummary = run.finish()
        report["batch"] = summary.as_dict()
        report["gate"] = health.validate_batch(con, summary.batch_id) if summary.status == "validated" else None
        maybe_fault(FAULT_ENV, "gate")
        gate_ok = not (report["gate"] and report["gate"]["failed"])
        if not gate_ok:
            _held_back(report["batch"], report["gate"])
        if gate_ok and CONTINUOUS_INPUTS & set(summary.tables):
            cont = build_continuous(con, batch_id=summary.batch_id)
            report["continuous"] = cont.as_dict()
            if cont.changed:
                con.execute(
                    "UPDATE ops.batches SET table_names = list_distinct(list_append(table_names, ?)) WHERE batch_id = ?",
                    ["market_data.futures_continuous_1d", summary.batch_id],
                )
            maybe_fault(FAULT_ENV, "continuous")
        maybe_fault(FAULT_ENV, "close")
    errors = {p: c["error"] for p, c in report["batch"]["files"].items() if c["status"] == "error"}
    report["file_errors"] = errors
    report["ok"] = gate_ok and not errors and report["batch"]["balanced"]
    return report


def _all_quarantined(report: dict[str, Any]) -> dict[str, Any]:
    """Files of which every row was quarantined (none loaded or duplicate): a problem found, said by
    name (a download of the wrong thing, a changed format), never a quiet exit 0. The legacy migration
    is exempt: whole legacy tables of placeholders are its expected finding, reported by rule."""
    held_back = report["batch"]["status"] == "failed_validation"  # the gate said it already, for every file
    whole = {p: c["rows_read"] for p, c in report["batch"]["files"].items()
             if not held_back and c["rows_read"] and c["rows_quarantined"] == c["rows_read"]}
    report["all_quarantined"] = whole
    report["ok"] = report["ok"] and not whole
    return report


def _held_back(batch: dict[str, Any], gate: dict[str, Any]) -> None:
    """The report says what ops.batches and the file manifest now say: the gate moved the batch's
    loaded rows to the quarantine, so they count as quarantined (read = loaded + quarantined +
    duplicates still holds, per file and in total)."""
    batch["status"] = "failed_validation"
    totals = batch["totals"]
    totals["rows_loaded"] -= gate["rows_quarantined"]
    totals["rows_quarantined"] += gate["rows_quarantined"]
    for path, n in gate["files"].items():
        if path in batch["files"]:
            batch["files"][path]["rows_loaded"] -= n
            batch["files"][path]["rows_quarantined"] += n


def ingest_paths(con: duckdb.DuckDBPyConnection, paths: list[Path], progress: Progress | None = None) -> dict[str, Any]:
    """Load Databento downloads, FRED series and the regime registry; `paths` are detected per kind."""
    say = progress or (lambda *_: None)
    groups = detect.group_by_kind(paths)
    if "legacy" in groups:
        raise detect.UnknownInput(
            f"{', '.join(map(str, groups['legacy']))}: legacy BigQuery exports load with `cbi migrate-legacy DIR`"
        )
    report: dict[str, Any] = {"kinds": {k: [str(p) for p in v] for k, v in groups.items()}}
    with _batch(con, "ingest") as run:
        if "databento" in groups:
            from .ingest.databento import ingest_databento

            say("databento")
            ingest_databento(con, groups["databento"], run, say)
        if "fred" in groups:
            from .ingest.fred import ingest_fred

            say("fred")
            ingest_fred(con, groups["fred"], run)
        for path in groups.get("registry", []):
            from .ingest.registry import ingest_registry

            say("regime registry")
            reg = ingest_registry(con, path if path.is_dir() else path.parent, run)
            report.setdefault("registry", []).append(
                {
                    "status": reg.status,
                    "regimes": reg.regimes,
                    "calendar": [reg.calendar_start, reg.calendar_end, reg.calendar_days],
                    "calendar_vs_legacy": reg.calendar_vs_legacy,
                }
            )
        return _all_quarantined(_close(con, run, report))


def migrate_legacy_dir(con: duckdb.DuckDBPyConnection, legacy_dir: Path, progress: Progress | None = None) -> dict[str, Any]:
    from .ingest.legacy import migrate_legacy

    (progress or (lambda *_: None))("legacy migration")
    with _batch(con, "migrate") as run:
        migration = migrate_legacy(con, legacy_dir, run)
        report: dict[str, Any] = {
            "defects_by_rule": migration.by_rule(),
            "defects": [d.__dict__ for d in migration.defects],
            "dedup_conflicts": migration.dedup_conflicts,
            "unmapped": migration.unmapped,
        }
        return _close(con, run, report)
