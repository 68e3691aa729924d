"""The DuckDB warehouse: one schema per BigQuery dataset, one table per contract.

`init` creates or migrates in place. Migration only ever adds (tables, columns, STRUCT
fields); anything it cannot do without risking data (a changed type, a dropped column)
is left for `cbi audit` to report, never done silently.

Crash recovery (the ingest's unit of recovery is its batch): an ingest stages each table's
rows under a batch in status `open`, each stage one transaction, then closes the batch
(file manifest, counts, health gate, continuous rebuild, final status) in ONE transaction
(`cbi_local.pipeline`). A process killed before that commit leaves an `open` batch whose rows
are in the tables but in no manifest. Every writer connection (`connect()` without
read_only) first rolls such batches back: their rows are deleted from every table that
has a `batch_id` column and the batch is marked `rolled_back`, so its files are new again
and the rerun loads them as an uninterrupted run would have. Only this process's own
open batches (an ingest in progress, `OPEN_BATCHES`) are left alone: DuckDB allows one
writer process, so any other open batch belongs to a process that is gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

import data_contracts as dc
from data_contracts import to_duckdb
from data_contracts.model import Column, Contract, flat_columns


class WarehouseError(RuntimeError):
    """The warehouse cannot be used as asked (missing, locked, home not creatable): exit 2."""


class WarehouseLocked(WarehouseError):
    """Another process holds the DuckDB file; `holder` says who (PID, command, how long)."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


# DuckDB estimates a bulk commit's WAL size low (88k feature rows: 40 MB logged, estimated under
# 16 MB), so at the default threshold it writes the WAL and checkpoints the same data again at
# the next commit. Below the estimate, such a commit checkpoints directly and skips the WAL.
WRITER_CONFIG = {"checkpoint_threshold": "8MB"}


log = logging.getLogger("cbi.warehouse")

# Batches this process has open (an IngestRun between opening and closing its batch): the
# recovery never rolls these back.
OPEN_BATCHES: set[str] = set()

# Folders whose children are volumes or top-level trees: a missing child there is a drive that is
# not mounted (or a typo), never a folder to create. /Volumes is macOS's; the rest Linux's.
MOUNT_PARENTS = (Path("/"), Path("/Volumes"), Path("/media"), Path("/mnt"), Path("/run/media"))


def ensure_home(home: Path) -> Path:
    """Create the warehouse home, or say why not. The missing folders are created only below an
    existing folder that is not a mount parent, so `/Volumes/Drive/cbi` with the drive unplugged
    (or `/nonexistent/cbi`) is an error that creates nothing, while `~/.cbi/demo` is created."""
    home = Path(home)
    if home.is_dir():
        return home
    missing = home
    while not missing.parent.exists() and missing.parent != missing:
        missing = missing.parent
    parent = missing.parent
    if parent in MOUNT_PARENTS or parent.parent in (Path("/media"), Path("/run/media")):  # /media/<user>/<volume>
        volume = f"{missing} does not exist"
        for mp in MOUNT_PARENTS[1:]:
            depth = 2 if mp.name == "media" else 1  # /media/<user>/<volume>
            if home.is_relative_to(mp) and len(home.relative_to(mp).parts) > depth:
                volume = f"volume {mp.joinpath(*home.relative_to(mp).parts[:depth])} is not mounted"
                break
        raise WarehouseError(f"cannot use home {home}: {volume} (plug in / mount the drive, or choose another "
                             "--home / CBI_HOME); nothing was created")
    if home.exists():
        raise WarehouseError(f"cannot use home {home}: it exists and is not a folder")
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WarehouseError(f"cannot create home {home}: {exc.strerror or exc}") from exc
    return home


_PID = re.compile(r"\(PID (\d+)\)")


ACTIVITY_FILE = "activity.json"  # beside the warehouse: what its writer is doing (note_activity)


def note_activity(home: Path, doing: str) -> None:
    """Say, beside the warehouse, what this process is doing with it (a job's current step), so a
    command refused by the lock can tell the user. Best effort: a read-only home is no error."""
    record = {"pid": os.getpid(), "doing": doing, "since": time.time()}
    with contextlib.suppress(OSError):
        tmp = home / f".{ACTIVITY_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, home / ACTIVITY_FILE)  # atomic: a reader never sees half a file


def _activity(home: Path | None, pid: str) -> str:
    """", doing: push (for 40 s)" when the holder noted what it is doing; else ""."""
    if home is None:
        return ""
    try:
        record = json.loads((home / ACTIVITY_FILE).read_text())
    except (OSError, ValueError):
        return ""
    if str(record.get("pid")) != pid:
        return ""
    return f", doing: {record.get('doing')} (for {max(0, round(time.time() - float(record.get('since', 0))))} s)"


def lock_holder(message: str, home: Path | None = None) -> str:
    """Who holds the warehouse, from DuckDB's lock error: the PID and, where the OS tells, its
    command line and how long it has run, and what it noted it is doing
    ("PID 4242: cbi daemon --interval 300, running 02:10, doing: push (for 40 s)")."""
    m = _PID.search(message)
    if not m:
        return "another process"
    pid = m.group(1)
    doing = _activity(home, pid)
    try:
        out = subprocess.run(["ps", "-o", "etime=", "-o", "args=", "-p", pid], capture_output=True, text=True,
                             timeout=2).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    if not out:
        return f"PID {pid}{doing}"
    etime, _, args = out.partition(" ")
    args = " ".join(os.path.basename(a) if i == 0 or a.endswith("/cbi") else a
                    for i, a in enumerate(args.split()))[:160]
    return f"PID {pid}: {args}, running {etime.strip()}{doing}"


def connect(path: Path, read_only: bool = False, retries: int = 20, create: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (only `init` creates one). DuckDB allows one writer process; both
    readers and writers retry briefly (about 15 s over `retries` attempts) while another process
    holds the lock, and say at once, on the `cbi.warehouse` logger, who holds it."""
    if not create and not path.exists():
        raise WarehouseError(f"no warehouse at {path}: run `cbi init --home {path.parent}` first")
    ensure_home(path.parent)
    delays = [min(0.05 * 2**i, 1.0) for i in range(retries - 1)]  # the back-off between attempts
    holder = None
    for attempt in range(retries):
        try:
            con = duckdb.connect(str(path), read_only=read_only, config={} if read_only else WRITER_CONFIG)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise WarehouseError(f"cannot open {path}: {exc}") from exc
            if holder is None:
                holder = lock_holder(str(exc), path.parent)
                if retries > 1:
                    log.warning("warehouse %s is held by %s; waiting up to %d s for it", path, holder, round(sum(delays)))
            if attempt == retries - 1:
                raise WarehouseLocked(f"cannot open {path}: it is held by {holder} (DuckDB allows one writer; "
                                      "wait for it to finish, or stop it)", holder) from exc
            time.sleep(delays[attempt])
            continue
        if not read_only:
            note_activity(path.parent, "holding the warehouse open for writing")
            roll_back_unfinished(con)
        return con
    raise AssertionError("unreachable")


def roll_back(con: duckdb.DuckDBPyConnection, batch_ids: list[str], why: str) -> None:
    """Remove every row the batches wrote (any table with a `batch_id` column) and mark them
    `rolled_back`, in one transaction. Only for batches that never closed: nothing of theirs
    is in the file manifest or was pushed."""
    with transaction(con):
        for contract in dc.CONTRACTS:
            if "batch_id" in contract.column_names and contract.fqn not in ("ops.batches", "ops.sync_log"):
                con.execute(f"DELETE FROM {to_duckdb.table_ref(contract)} WHERE batch_id IN (SELECT unnest(?))", [batch_ids])
        con.execute(
            "UPDATE ops.batches SET status = 'rolled_back', rows_loaded = 0, error = ? "
            "WHERE batch_id IN (SELECT unnest(?)) AND status = 'open'",
            [why, batch_ids],
        )
    for b in batch_ids:
        OPEN_BATCHES.discard(b)


def roll_back_unfinished(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Roll back the open batches of processes that are gone (see the module doc); returns their ids."""
    has_batches = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'ops' AND table_name = 'batches'"
    ).fetchone()[0]
    if not has_batches:
        return []
    dead = [b for (b,) in con.execute("SELECT batch_id FROM ops.batches WHERE status = 'open' ORDER BY created_at").fetchall()
            if b not in OPEN_BATCHES]
    if dead:
        roll_back(con, dead, "rolled back: the run that opened it stopped before closing it (killed or crashed); "
                             "its files load again on the next run")
        log.warning("rolled back %d unfinished batch(es) of a run that stopped before closing them: %s; "
                    "their files load again on the next run", len(dead), ", ".join(dead))
    return dead


@contextlib.contextmanager
def open_warehouse(path: Path, read_only: bool = False, create: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(path, read_only=read_only, create=create)
    try:
        yield con
    finally:
        con.close()


_DEPTH: dict[int, int] = {}  # id(connection) -> how many transaction() blocks are open on it


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction: committed when the block ends, rolled back when it raises, so a failed
    step never leaves the connection inside a half-done transaction.

    Re-entrant: a block inside another joins it (commits with the outermost, and anything
    raised inside rolls back all of it), so a step that is one transaction on its own (the
    health gate, the continuous rebuild) is part of the batch's closing transaction."""
    key = id(con)
    if _DEPTH.get(key):
        _DEPTH[key] += 1
        try:
            yield con
        finally:
            _DEPTH[key] -= 1
        return
    con.execute("BEGIN")
    _DEPTH[key] = 1
    try:
        yield con
    except BaseException:
        _DEPTH.pop(key, None)
        con.execute("ROLLBACK")
        raise
    _DEPTH.pop(key, None)
    con.execute("COMMIT")


@dataclass
class InitReport:
    path: Path
    created_schemas: list[str] = field(default_factory=list)
    created_tables: list[str] = field(default_factory=list)
    added_columns: list[str] = field(default_factory=list)
    views: list[str] = field(default_factory=list)  # created, or replaced to follow their contract

    @property
    def changed(self) -> bool:
        return bool(self.created_schemas or self.created_tables or self.added_columns or self.views)


def _existing_columns(con: duckdb.DuckDBPyConnection, contract: Contract) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
        [contract.dataset, contract.table],
    ).fetchall()
    return dict(rows)


def _struct_field_names(con: duckdb.DuckDBPyConnection, contract: Contract, column: str) -> set[str]:
    # The table's own STRUCT type, read back via a typed empty scan.
    rel = con.sql(f"SELECT {to_duckdb.quote(column)} FROM {to_duckdb.table_ref(contract)} LIMIT 0")
    dtype = rel.types[0]
    return {name for name, _ in dtype.children} if dtype.id == "struct" else set()


def _add_missing_struct_fields(
    con: duckdb.DuckDBPyConnection, contract: Contract, col: Column, report: InitReport
) -> None:
    if col.mode == "REPEATED":
        return  # lists of structs cannot be altered in place; audit reports the drift
    present = _struct_field_names(con, contract, col.name)
    for f in col.fields:
        if f.name not in present:
            con.execute(
                f"ALTER TABLE {to_duckdb.table_ref(contract)} ADD COLUMN "
                f"{to_duckdb.quote(col.name)}.{to_duckdb.quote(f.name)} {to_duckdb.column_type(f)}"
            )
            report.added_columns.append(f"{contract.fqn}.{col.name}.{f.name}")


def init(path: Path) -> InitReport:
    """Create or migrate the warehouse at `path` (idempotent)."""
    report = InitReport(path)
    with open_warehouse(path, create=True) as con, transaction(con):
        schemas = {r[0] for r in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
        for dataset in dc.DATASETS:
            if dataset not in schemas:
                con.execute(f"CREATE SCHEMA {to_duckdb.quote(dataset)}")
                report.created_schemas.append(dataset)
        for contract in dc.CONTRACTS:
            existing = _existing_columns(con, contract)
            if not existing:
                con.execute(to_duckdb.create_table(contract))
                con.execute(to_duckdb.comment_table(contract))
                report.created_tables.append(contract.fqn)
                continue
            for col in contract.columns:
                if col.name not in existing:
                    # Added as nullable: existing rows cannot have a value for a new column.
                    con.execute(
                        f"ALTER TABLE {to_duckdb.table_ref(contract)} ADD COLUMN "
                        f"{to_duckdb.quote(col.name)} {to_duckdb.column_type(col)}"
                    )
                    report.added_columns.append(f"{contract.fqn}.{col.name}")
                elif col.type == "STRUCT":
                    _add_missing_struct_fields(con, contract, col, report)
        _ensure_views(con, report)
    return report


def _ensure_views(con: duckdb.DuckDBPyConnection, report: InitReport) -> None:
    """Create each declared view, or replace it when its columns no longer follow its contract
    (a view reads its table by name, so it never holds data: replacing it loses nothing)."""
    for view in dc.VIEWS:
        contract = dc.get(view.source)
        have = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position", [view.dataset, view.name]).fetchall()]
        if have != [name for _, name in flat_columns(contract)]:
            con.execute(to_duckdb.create_view(view, contract))
            con.execute(to_duckdb.comment_view(view))
            report.views.append(view.fqn)


@dataclass
class TableInfo:
    contract: Contract
    exists: bool
    rows: int | None

    def as_dict(self) -> dict:
        c = self.contract
        return {
            "dataset": c.dataset,
            "table": c.table,
            "exists": self.exists,
            "rows": self.rows,
            "partitioning": (
                {"column": c.partition.column, "granularity": c.partition.granularity} if c.partition else None
            ),
            "clustering": list(c.clustering),
            "primary_key": list(c.primary_key),
            "sync": c.sync,
            "privacy": c.privacy,
            "columns": [_column_dict(col) for col in c.columns],
        }


def _column_dict(col: Column) -> dict:
    d: dict = {"name": col.name, "type": col.type, "mode": col.mode}
    if col.fields:
        d["fields"] = [_column_dict(f) for f in col.fields]
    return d


def table_infos(con: duckdb.DuckDBPyConnection) -> list[TableInfo]:
    """Row counts per contract table. DuckDB answers COUNT(*) from row-group metadata, not a scan."""
    present = {
        (r[0], r[1])
        for r in con.execute("SELECT table_schema, table_name FROM information_schema.tables").fetchall()
    }
    infos = []
    for c in dc.CONTRACTS:
        exists = (c.dataset, c.table) in present
        rows = con.execute(f"SELECT COUNT(*) FROM {to_duckdb.table_ref(c)}").fetchall()[0][0] if exists else None
        infos.append(TableInfo(c, exists, rows))
    return infos
