"""What the TUI reads, as plain data (no Textual here: every function is testable headless).

Locking (measured on DuckDB 2.0, see tests/tui/test_concurrency.py): DuckDB locks the database
FILE per process. While `cbi daemon` / `cbi ingest` holds a read-write connection, another process
cannot open the file at all, not even read-only; and while any process holds a read-only
connection, a writer cannot open it. So the TUI never keeps a connection: every refresh opens one
short read-only connection, runs all of the screen's queries (milliseconds: row counts come from
DuckDB's row-group metadata, never a scan), and closes it. If a writer holds the file, the read is
retried a few times (a few hundred ms in all, in a worker thread) and then given up: the screen keeps
the last data it read, marked stale with its age and the writer's pid, and the next refresh tries
again. Writers retry on lock too (cbi_local.warehouse.connect: up to ~15 s), so the TUI's short reads
never make a writer fail. Actions that write (quarantine release/drop, sync push/pull) open a
read-write connection only for the action, in a worker.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import duckdb

import data_contracts as dc
from cbi_local import health as health_checks
from cbi_local import quarantine as qmod
from data_contracts.model import Column, Contract
from data_contracts.to_duckdb import column_type, quote, table_ref

T = TypeVar("T")

READ_ATTEMPTS = 4
READ_DELAY = 0.05  # doubles per attempt: 0.05 + 0.1 + 0.2 = 0.35 s before giving up
# In one process DuckDB refuses a read-write connection while a read-only one to the same file is
# open (and vice versa), so the TUI's workers take turns: one connection at a time.
_PROCESS_LOCK = threading.RLock()
# Duty cycle: after a read held the file for h seconds, the next read waits max(MIN_GAP, 4 h) so a
# writer polling for the lock (cbi_local.warehouse.connect: backoff to 1 s, ~15 s in all) always finds
# it free most of the time, however often the screens ask (measured in tests/tui/test_tui_concurrency.py).
MIN_GAP = 0.25
_pace = {"closed": 0.0, "held": 0.0}


class WarehouseBusy(RuntimeError):
    """A writer process holds the warehouse file; `pid` names it when DuckDB says so."""

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class WarehouseMissing(RuntimeError):
    pass


_PID = re.compile(r"PID (\d+)")


def _lock_error(exc: BaseException) -> bool:
    return "lock" in str(exc).lower()


def read(path: Path, fn: Callable[[duckdb.DuckDBPyConnection], T], attempts: int = READ_ATTEMPTS) -> T:
    """Open a short read-only connection, run `fn`, close. Retries briefly on a writer's lock,
    then raises WarehouseBusy (never waits long: the UI thread is never the caller)."""
    if not path.exists():
        raise WarehouseMissing(f"no warehouse at {path}: run `cbi init --home {path.parent}` first")
    delay = READ_DELAY
    for attempt in range(attempts):
        try:
            with _PROCESS_LOCK:
                return _read_once(path, fn)
        except duckdb.IOException as exc:
            if not _lock_error(exc):
                raise
            if attempt == attempts - 1:
                m = _PID.search(str(exc))
                raise WarehouseBusy(f"a writer holds {path}", int(m.group(1)) if m else None) from exc
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _read_once(path: Path, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    wait = _pace["closed"] + max(MIN_GAP, 4 * _pace["held"]) - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    t0 = time.monotonic()
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException:
        _pace["closed"], _pace["held"] = time.monotonic(), 0.0
        raise
    try:
        return fn(con)
    finally:
        con.close()
        _pace["closed"] = time.monotonic()
        _pace["held"] = _pace["closed"] - t0


def write(path: Path, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """A read-write connection for one action (retries on lock like every cbi writer)."""
    from cbi_local import warehouse

    with _PROCESS_LOCK, warehouse.open_warehouse(path) as con:
        return fn(con)


# --- small helpers ---------------------------------------------------------------------------------


def _tables_present(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {f"{s}.{t}" for s, t in con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()}


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = cur.fetchall()
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in rows]


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def age_seconds(ts: datetime | None, now: datetime | None = None) -> float | None:
    if ts is None:
        return None
    now = now or datetime.now(timezone.utc)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return (now - ts).total_seconds()


# --- overview ------------------------------------------------------------------------------------


@dataclass
class TableStat:
    fqn: str
    dataset: str
    table: str
    exists: bool
    rows: int | None
    failing: int = 0  # latest blocking failures
    warnings: int = 0
    held: int = 0  # quarantined rows held

    @property
    def status(self) -> str:
        """missing | fail | warn | empty | ok (the colour of the table in every tree)."""
        if not self.exists:
            return "missing"
        if self.failing:
            return "fail"
        if self.warnings or self.held:
            return "warn"
        if not self.rows:
            return "empty"
        return "ok"


@dataclass
class Overview:
    path: Path
    size_bytes: int
    wal_bytes: int
    tables: list[TableStat]
    checks_failing: int  # live checks, as `cbi health` counts them (a migration's defects apart)
    checks_warning: int
    checks_total: int
    checked_at: datetime | None
    batches: dict[str, int]
    quarantine_held: int
    last_push: datetime | None
    last_pull: datetime | None
    last_sync_error: dict[str, Any] | None
    daemon: dict[str, Any] | None
    recorded_defects: int = 0  # the latest legacy migration's defects (`cbi health`'s "recorded")
    read_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    read_seconds: float = 0.0

    @property
    def pending_batches(self) -> int:
        return self.batches.get("validated", 0) + self.batches.get("open", 0)


def row_counts(con: duckdb.DuckDBPyConnection, contracts: list[Contract] | None = None) -> dict[str, int | None]:
    """COUNT(*) of every contract table in ONE query. DuckDB answers a bare COUNT(*) from its
    row-group metadata (no scan: 50M rows in milliseconds, see bench/tui)."""
    present = _tables_present(con)
    chosen = [c for c in (contracts or dc.CONTRACTS) if c.fqn in present]
    out: dict[str, int | None] = {c.fqn: None for c in (contracts or dc.CONTRACTS)}
    if not chosen:
        return out
    sql = " UNION ALL ".join(f"SELECT '{c.fqn}' AS t, COUNT(*) AS n FROM {table_ref(c)}" for c in chosen)
    out.update(dict(con.execute(sql).fetchall()))
    return out


_LATEST_CHECKS = f"""
    SELECT * FROM monitoring.health_checks WHERE {health_checks.LIVE_CHECKS_SQL}
    QUALIFY row_number() OVER (PARTITION BY table_name, rule, coalesce(rule_columns, ''), coalesce(threshold, ''),
                                            coalesce(engine, '')
                               ORDER BY checked_at DESC, measured_value DESC NULLS LAST, message) = 1
"""


def latest_checks(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Latest live result per (table, rule, columns, threshold, engine) in monitoring.health_checks (one
    rule may measure several thresholds: no_placeholders has four per column); a legacy
    migration's recorded defects are not among them (`recorded_defects`), as in `cbi health`."""
    return _dicts(con.execute(_LATEST_CHECKS + " ORDER BY status = 'pass', status = 'warn', table_name, rule, rule_columns, engine"))


RECORDED = "recorded"  # the status the Checks list gives a migration's defect: its rows were dealt with then
CHECK_ORDER = {"fail": 0, "warn": 1, RECORDED: 2, "pass": 3}  # the Checks list: live problems first


def recorded_defects(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The latest legacy migration's defects, read by the same function `cbi health` uses, shaped as
    check rows (status `recorded`, engine `migration`, the legacy table it came from; the stored verdict
    kept as `recorded_status`)."""
    rec = health_checks.recorded_checks(con)
    return [
        {"table_name": d["table"], "rule": d["rule"], "rule_columns": None, "legacy_table": d["legacy_table"], "status": RECORDED,
         "recorded_status": d["status"], "severity": d["severity"], "measured_value": d["rows"],
         "threshold": d["threshold"], "engine": "migration", "message": d["message"],
         "sample_keys": json.dumps(d["sample"], default=str) if d["sample"] else None,
         "checked_at": rec["checked_at"], "batch_id": rec["batch_id"]}
        for d in rec["defects"]
    ]


def _sync_summary(con: duckdb.DuckDBPyConnection, present: set[str]) -> tuple[Any, Any, Any, Any]:
    last_push = last_pull = last_error = daemon = None
    if "ops.sync_log" in present:
        cols = set(dc.get("ops.sync_log").column_names)
        last_push = con.execute(
            "SELECT max(finished_at) FROM ops.sync_log WHERE status = 'done' AND step IN ('merge', 'stage')"
        ).fetchall()[0][0]
        last_pull = con.execute(
            "SELECT max(finished_at) FROM ops.sync_log WHERE status = 'done' AND step IN ('pull_plan', 'replace')"
        ).fetchall()[0][0]
        err = con.execute(
            "SELECT finished_at, batch_id, table_name, step, error FROM ops.sync_log "
            "WHERE status IN ('failed', 'reset') ORDER BY finished_at DESC NULLS LAST LIMIT 1"
        ).fetchall()
        if err and "error" in cols:
            at, b, t, step, e = err[0]
            last_error = {"at": at, "batch_id": b, "table": t, "step": step, "error": e}
    if "ops.daemon_heartbeat" in present:
        beat = con.execute(
            "SELECT hostname, process_id, started_at, heartbeat_at, cycle_count, status, message, error "
            "FROM ops.daemon_heartbeat ORDER BY heartbeat_at DESC LIMIT 1"
        ).fetchall()
        if beat:
            h, pid, started, at, cycles, status, message, error = beat[0]
            daemon = {"hostname": h, "pid": pid, "started_at": started, "heartbeat_at": at, "cycles": cycles,
                      "status": status, "message": message, "error": error}
    return last_push, last_pull, last_error, daemon


def overview(path: Path) -> Overview:
    t0 = time.perf_counter()

    def q(con: duckdb.DuckDBPyConnection) -> Overview:
        present = _tables_present(con)
        counts = row_counts(con)
        checks = latest_checks(con) if "monitoring.health_checks" in present else []
        per_table: dict[str, list[int]] = {}
        for c in checks:
            slot = per_table.setdefault(c["table_name"], [0, 0])
            if c["status"] == "fail" and c.get("severity", "blocking") != "warning":
                slot[0] += 1
            elif c["status"] in ("warn", "fail"):
                slot[1] += 1
        defects = recorded_defects(con) if "monitoring.health_checks" in present else []
        held = dict(
            con.execute("SELECT table_name, count(*) FROM monitoring.quarantine WHERE status = 'held' GROUP BY 1").fetchall()
        ) if "monitoring.quarantine" in present else {}
        batches = dict(con.execute("SELECT status, count(*) FROM ops.batches GROUP BY 1").fetchall()) if "ops.batches" in present else {}
        last_push, last_pull, last_error, daemon = _sync_summary(con, present)
        stats = [
            TableStat(c.fqn, c.dataset, c.table, c.fqn in present, counts.get(c.fqn),
                      *per_table.get(c.fqn, [0, 0]), held.get(c.fqn, 0))
            for c in dc.CONTRACTS
        ]
        return Overview(
            path=path, size_bytes=0, wal_bytes=0, tables=stats,
            checks_failing=sum(v[0] for v in per_table.values()), checks_warning=sum(v[1] for v in per_table.values()),
            checks_total=len(checks), checked_at=max((c["checked_at"] for c in checks), default=None),
            batches=batches, quarantine_held=sum(held.values()),
            last_push=last_push, last_pull=last_pull, last_sync_error=last_error, daemon=daemon,
            recorded_defects=len(defects),
        )

    ov = read(path, q)
    ov.size_bytes = path.stat().st_size
    wal = path.with_name(path.name + ".wal")
    ov.wal_bytes = wal.stat().st_size if wal.exists() else 0
    ov.read_seconds = time.perf_counter() - t0
    return ov


# --- tables ----------------------------------------------------------------------------------------


def column_lines(col: Column, depth: int = 0) -> list[tuple[int, Column]]:
    """A column and its nested STRUCT fields, depth-first, as (depth, column)."""
    out = [(depth, col)]
    for f in col.fields:
        out += column_lines(f, depth + 1)
    return out


PAGE_ROWS = 50


def preview_order(contract: Contract) -> tuple[tuple[str, ...], bool]:
    """The columns a preview is ordered by, and whether they identify a row: the primary key (unique:
    pages by keyset), else the partition column (pages by OFFSET), else none (storage order, OFFSET)."""
    if contract.primary_key:
        return tuple(contract.primary_key), True
    if contract.partition:
        return (contract.partition.column,), False
    return (), False


@dataclass
class PreviewPage:
    """One page of a table's rows in `order`: rows start+1 .. start+len(rows) of `total` (the table's
    row count, from row-group metadata; None when the table is missing)."""

    fqn: str
    columns: list[str]
    rows: list[tuple]
    order: tuple[str, ...]
    unique: bool  # `order` identifies a row (the primary key): keys and keyset paging
    start: int
    total: int | None
    limit: int = PAGE_ROWS

    def key(self, i: int) -> tuple:
        at = [self.columns.index(c) for c in self.order]
        return tuple(self.rows[i][j] for j in at)

    @property
    def end(self) -> int:
        return self.start + len(self.rows)

    @property
    def has_next(self) -> bool:
        return self.total is not None and self.end < self.total and len(self.rows) == self.limit

    @property
    def has_prev(self) -> bool:
        return self.start > 0

    @property
    def span(self) -> str:
        """"rows X-Y of N" (the label the Preview shows)."""
        if self.total is None:
            return "table missing"
        if not self.rows:
            return f"no rows (0 of {self.total:,})"
        return f"rows {self.start + 1:,}-{self.end:,} of {self.total:,}"

    def row_keys(self) -> list[str]:
        """A DataTable key per row: its primary key's values (else its place in the table)."""
        if self.unique:
            return ["\x1f".join(map(str, self.key(i))) for i in range(len(self.rows))]
        return [f"#{self.start + i}" for i in range(len(self.rows))]


def preview_page(path: Path, fqn: str, limit: int = PAGE_ROWS, start: int = 0,
                 after: tuple | None = None, before: tuple | None = None) -> PreviewPage:
    """Rows start+1 .. start+limit of a table in its primary key's order, and its row count, on one
    connection. `after` / `before` (the order key of the last / first row of the page shown) read
    the next / previous page by keyset: WHERE key > after ORDER BY key LIMIT n, no OFFSET to skip.
    Without a unique order (or a key with a NULL) the page is read at OFFSET `start`. The count is
    row-group metadata. The ORDER BY is a top-N (no full sort), but it reads the key columns of every
    row group it cannot skip: measured on 20M rows (symbol, ts; 2 busy cores), 0.2-0.4 s the first
    page and 0.2-0.8 s a later page by keyset (at OFFSET 1M: 5.8 s), 0.1-0.2 s when the rows are
    stored in key order. The sample's tables: milliseconds."""
    contract = dc.get(fqn)
    order, unique = preview_order(contract)
    limit = int(limit)

    def q(con: duckdb.DuckDBPyConnection) -> PreviewPage:
        if fqn not in _tables_present(con):
            return PreviewPage(fqn, [], [], order, unique, 0, None, limit)
        total = row_counts(con, [contract])[fqn]
        ref = table_ref(contract)
        keys = ", ".join(quote(c) for c in order)
        bound = after if after is not None else before
        if unique and bound is not None and None not in bound and len(bound) == len(order):
            casts = ", ".join(f"CAST(? AS {column_type(contract.column(c))})" for c in order)
            op, way = (">", "") if after is not None else ("<", " DESC")
            by = ", ".join(f"{quote(c)}{way}" for c in order)
            cur = con.execute(f"SELECT * FROM {ref} WHERE ({keys}) {op} ({casts}) ORDER BY {by} LIMIT {limit}", list(bound))
            rows = cur.fetchall()
            if before is not None:
                rows.reverse()
                if len(rows) < limit:  # fewer rows before it than a page (rows went away): the first page
                    return q_offset(con, total, 0)
            return PreviewPage(fqn, [d[0] for d in cur.description], rows, order, unique, max(0, start), total, limit)
        return q_offset(con, total, start)

    def q_offset(con: duckdb.DuckDBPyConnection, total: int | None, at: int) -> PreviewPage:
        at = max(0, int(at))
        by = f" ORDER BY {', '.join(quote(c) for c in order)}" if order else ""
        cur = con.execute(f"SELECT * FROM {table_ref(contract)}{by} LIMIT {limit} OFFSET {at}")
        return PreviewPage(fqn, [d[0] for d in cur.description], cur.fetchall(), order, unique, at, total, limit)

    return read(path, q)


def preview(path: Path, fqn: str, limit: int = PAGE_ROWS) -> tuple[list[str], list[tuple]]:
    """The first `limit` rows of a table in its primary key's order (preview_page's first page)."""
    page = preview_page(path, fqn, limit)
    return page.columns, page.rows


# --- health ----------------------------------------------------------------------------------------


def health(path: Path, check: tuple[str, str, str | None] | None = None, group: tuple[str, str] | None = None,
           entry: str | None = None, only_problems: bool = True) -> dict[str, Any]:
    """The Health screen's whole refresh, on ONE connection: the latest checks, the held quarantine
    groups, and the details the screen shows first -- the history of `check` (table, rule, columns;
    default: the first check listed), the entries of `group` (table, rule; default: the first group)
    and the payload of `entry` (default: the group's first entry). A detail the user moves to later
    is read then (check_history, quarantine_entries, quarantine_show)."""
    def q(con):
        present = _tables_present(con)
        checks = latest_checks(con) + recorded_defects(con) if "monitoring.health_checks" in present else []
        checks.sort(key=lambda c: CHECK_ORDER.get(c["status"], len(CHECK_ORDER)))  # stable: each group keeps its order
        quarantine = []
        if "monitoring.quarantine" in present:
            quarantine = qmod.summary(con, "held")
        out: dict[str, Any] = {"checks": checks, "quarantine": quarantine, "history": {}, "entries": {}, "payloads": {}}
        shown = [c for c in checks if not only_problems or c["status"] != "pass"]
        first = check or next(((c["table_name"], c["rule"], c.get("rule_columns")) for c in shown if c["status"] != RECORDED), None)
        if first is not None:
            out["history"][first] = _check_history(con, *first)
        g = group or next(((x["table"], x["rule"]) for x in quarantine), None)
        if g is not None and any((x["table"], x["rule"]) == g for x in quarantine):
            entries = _quarantine_entries(con, *g)
            out["entries"][g] = entries
            qid = entry if entry and any(e["quarantine_id"] == entry for e in entries) else (entries[0]["quarantine_id"] if entries else None)
            if qid is not None:
                out["payloads"][qid] = qmod.show(con, qid)
        return out

    return read(path, q)


def _check_history(con: duckdb.DuckDBPyConnection, table: str, rule: str, rule_columns: str | None, limit: int = 50) -> list[dict[str, Any]]:
    return _dicts(con.execute(
        "SELECT checked_at, status, measured_value, threshold, batch_id, engine, message FROM monitoring.health_checks "
        "WHERE table_name = ? AND rule = ? AND coalesce(rule_columns, '') = coalesce(?, '') "
        "ORDER BY checked_at DESC LIMIT ?", [table, rule, rule_columns, limit]))


def check_history(path: Path, table: str, rule: str, rule_columns: str | None, limit: int = 50) -> list[dict[str, Any]]:
    return read(path, lambda con: _check_history(con, table, rule, rule_columns, limit))


def samples(sample_keys: str | None) -> list[Any]:
    """The offending keys/rows a check recorded (JSON), as a list."""
    if not sample_keys:
        return []
    try:
        value = json.loads(sample_keys)
    except json.JSONDecodeError:
        return [sample_keys]
    return value if isinstance(value, list) else [value]


ENTRIES_LIMIT = 200  # the held rows of a group the Quarantine tab lists (it says "showing 200 of N" beyond)


def short_reason(reason: str | None, rule: str | None = None, source_file: str | None = None) -> str:
    """A quarantine reason without what the entry's own columns say: the leading source path with its
    record number (`<file>:<n> ` or `<file>: `) and the rule (`<rule>: `). Without `source_file` (a
    group's example) the path is recognised by the rule that follows it. Other reasons are kept whole."""
    text = reason or ""
    if source_file and text.startswith(source_file):
        text = re.sub(r"^(?::(?:\d+|\?))?:? ?", "", text[len(source_file):], count=1)
    elif rule:
        at = text.find(f" {rule}: ")
        if at > 0 and re.search(r"(:(\d+|\?)|:)$", text[:at]):
            text = text[at + 1:]
    if rule and text.startswith(f"{rule}: "):
        text = text[len(rule) + 2:]
    return text


def _quarantine_entries(con: duckdb.DuckDBPyConnection, table: str, rule: str, limit: int = ENTRIES_LIMIT) -> list[dict[str, Any]]:
    return _dicts(con.execute(
        "SELECT quarantine_id, quarantined_at, batch_id, source_file, record_number, reason FROM monitoring.quarantine "
        "WHERE status = 'held' AND table_name = ? AND rule = ? ORDER BY quarantined_at, record_number LIMIT ?",
        [table, rule, limit]))


def quarantine_entries(path: Path, table: str, rule: str, limit: int = ENTRIES_LIMIT) -> list[dict[str, Any]]:
    return read(path, lambda con: _quarantine_entries(con, table, rule, limit))


def held_rows(con: duckdb.DuckDBPyConnection, table: str, rule: str) -> int:
    return con.execute("SELECT count(*) FROM monitoring.quarantine WHERE status = 'held' AND table_name = ? AND rule = ?",
                       [table, rule]).fetchall()[0][0]


def drop_held(con: duckdb.DuckDBPyConnection, table: str, rule: str, confirmed_rows: int) -> int:
    """Drop the held rows of (table, rule) -- only if exactly `confirmed_rows` are held now (the
    count the user confirmed); otherwise nothing changes and ValueError says what is held."""
    held = held_rows(con, table, rule)
    if held != confirmed_rows:
        raise ValueError(f"{held:,} rows of {table} / {rule} are held now, not the {confirmed_rows:,} confirmed: nothing dropped")
    return qmod.drop(con, rule=rule, table=table)


def latest_drop(path: Path) -> dict[str, Any] | None:
    """The most recent drop (one drop marks its rows with one resolved_at): table, rule, rows, when."""
    rows = read(path, lambda con: _dicts(con.execute(
        "SELECT table_name AS table, rule, resolved_at, count(*) AS rows FROM monitoring.quarantine "
        "WHERE status = 'dropped' GROUP BY ALL ORDER BY resolved_at DESC NULLS LAST, table_name, rule LIMIT 1")))
    return rows[0] if rows else None


def undo_drop(con: duckdb.DuckDBPyConnection, drop: dict[str, Any]) -> int:
    """Put the rows of one drop (latest_drop) back to held: `cbi quarantine restore`'s function."""
    return qmod.restore(con, table=drop["table"], rule=drop["rule"], dropped_at=drop["resolved_at"])


def quarantine_show(path: Path, quarantine_id: str) -> dict[str, Any]:
    return read(path, lambda con: qmod.show(con, quarantine_id))


# --- sync ------------------------------------------------------------------------------------------


def sync_module_available() -> bool:
    try:
        import sync.pull  # noqa: F401
        import sync.push  # noqa: F401
        import sync.status  # noqa: F401
    except ImportError:
        return False
    return True


def sync_view(path: Path) -> dict[str, Any]:
    def q(con):
        present = _tables_present(con)
        ledger = _dicts(con.execute(
            "SELECT batch_id, created_at, kind, status, rows_loaded, rows_quarantined, table_names, pushed_at, error "
            "FROM ops.batches ORDER BY created_at DESC LIMIT 200")) if "ops.batches" in present else []
        status = None
        if sync_module_available() and "ops.daemon_heartbeat" in present:
            from sync.status import sync_status

            status = sync_status(con)
        return {"ledger": ledger, "status": status}

    return read(path, q)


# --- training --------------------------------------------------------------------------------------


def training(path: Path) -> dict[str, Any]:
    def q(con):
        present = _tables_present(con)
        runs = _dicts(con.execute(
            "SELECT run_id, horizon, created_at, symbol, matrix_source, is_research, train_start, train_end, metrics "
            "FROM training.model_runs ORDER BY created_at DESC, run_id, horizon LIMIT 500")) if "training.model_runs" in present else []
        forecasts = []
        if "predictions.zl_forecasts" in present:
            forecasts = _dicts(con.execute(
                "SELECT as_of_date, symbol, horizon, run_id, target_date, p10, p50, p90, point FROM predictions.zl_forecasts "
                "WHERE as_of_date = (SELECT max(as_of_date) FROM predictions.zl_forecasts) ORDER BY symbol, target_date"))
        return {"runs": runs, "forecasts": forecasts}

    return read(path, q)


def metric_items(metrics: Any) -> list[tuple[str, Any]]:
    """A metrics STRUCT (dict) as (name, value) pairs, nested structs flattened with dots."""
    if not isinstance(metrics, dict):
        return []
    out: list[tuple[str, Any]] = []
    for k, v in metrics.items():
        if isinstance(v, dict):
            out += [(f"{k}.{kk}", vv) for kk, vv in metric_items(v)]
        else:
            out.append((k, v))
    return out


# --- coverage --------------------------------------------------------------------------------------


def coverage_module():
    """cbi_local.coverage when it exists (else None: the screen says 'not available yet')."""
    try:
        from cbi_local import coverage
    except ImportError:
        return None
    return coverage if hasattr(coverage, "coverage") else None


def coverage(path: Path) -> list[Any]:
    mod = coverage_module()
    if mod is None:
        raise RuntimeError("coverage is not available yet (cbi_local/coverage.py)")
    return read(path, lambda con: mod.coverage(con))


def warehouse_path(home: Path) -> Path:
    from cbi_local.config import WAREHOUSE_FILE

    return home / WAREHOUSE_FILE
