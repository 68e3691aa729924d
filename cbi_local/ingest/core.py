"""Ingest core: one batch per run, set-based staging, validation, dedup and accounting.


from cbi_local.ingest.core import FileIdentity, IngestRun, identify

fid = identify(path, record_schema="ohlcv-1h", encoding="json")   # sha256 (streamed), size, mtime
run = IngestRun(con, kind="ingest")       # opens one batch in ops.batches (status open); run.batch_id
todo, unchanged = run.plan([fid, ...])    # files whose (path, sha256) is already in ops.file_manifest are skipped (idempotent);
                                          # a file whose path is known with another sha256 is "changed": its old rows are replaced
known = run.known_paths(paths)            # paths the manifest knows; any other file is new (todo whatever its hash), so
                                          # a reader may hash those while it reads them and plan() them before stage()
counts = run.stage(contract, rel, files=todo)
    # rel: a DuckDB relation (or pyarrow Table / Polars DataFrame) holding ANY SUBSET of the contract's columns
    # (names exactly as in data_contracts), plus the bookkeeping columns:
    #   source_file VARCHAR  (must equal str(FileIdentity.path) of one of `files`)
    #   record_number BIGINT (1-based line/record number within that file)
    #   optional _rule VARCHAR, _reason VARCHAR: set on rows the READER already knows are bad
    #     (parse_error, wrong_rtype, spread, undecodable symbol ...); those go to monitoring.quarantine with the reason
    #   optional _duplicate BOOLEAN: rows the reader already resolved as duplicates (e.g. a lower-precedence
    #     source's copy of a kept row, logged to monitoring.dedup_conflicts); counted as duplicates, never loaded
    # The core fills lineage (source is passed per row in a `source` column or defaults to contract.sources[0].name;
    # file_sha256, batch_id, ingested_at), runs the contract's row-level rules (not_null, ohlc_sane, positive,
    # finite, non_negative, value_range, no_spreads, source_hierarchy, forbidden_values) as SQL, quarantines violators with
    # rule + reason + JSON payload, skips exact duplicates on the primary key (within the input and against the table),
    # quarantines same-key-different-values rows (rule unique_key), inserts the rest — all set-based in DuckDB.
    # rel is evaluated exactly once, by the statement that builds the stage (no copy of the input is made first),
    # before anything in the warehouse changes.
    # Returns {source_file: FileCounts(rows_read, rows_loaded, rows_quarantined, rows_duplicate)}.
run.file_error(fid, rule="parse_error", reason="...")   # a whole file that cannot be read at all: recorded, quarantined, batch goes on
run.file_skipped(fid, reason="...")   # a valid file no contract holds (e.g. Databento trades): recorded, not an error
summary = run.finish()   # records ops.file_manifest rows, closes the batch as 'validated'; summary.as_dict() has per-file
                         # and total counts with rows_read == rows_loaded + rows_quarantined + rows_duplicate
run.abort(why)           # the run failed before closing: everything it wrote is removed, the batch is 'rolled_back'

Crash safety: each stage() is one transaction; finish() belongs in the caller's closing transaction
with the health gate and the continuous rebuild (`cbi_local.pipeline`), so a batch is either still
`open` (rolled back by the next writer connection, see cbi_local/warehouse.py) or closed whole.

`con` is a duckdb connection to a warehouse created by `cbi_local.warehouse.init(path)`. Contracts: `import data_contracts as dc; dc.get("market_data.databento_futures_ohlcv_1h")`; column names, types, primary keys and rules are in /work/main/data_contracts/ (read tables/*.py and columns.py). NEVER spell a table's schema anywhere else; derive column lists from the contract (`contract.column_names`).
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa

from data_contracts.model import Contract
from data_contracts.tables.ops import BatchStatus
from data_contracts.to_duckdb import column_type, literal, quote, table_ref

from ..rules_sql import LOADER_FILLED, first_violation, row_checks
from ..faults import maybe_fault
from ..warehouse import OPEN_BATCHES, roll_back, transaction

FAULT_ENV = "CBI_INGEST_FAULT"  # crash tests: after:<open|stage|file_error|finish|gate|continuous|close>[:n]

BOOKKEEPING = ("source_file", "record_number", "_rule", "_reason", "_duplicate")
_SRC = "_cbi_src"  # the input of stage(), as a view (or a registered Arrow/Polars object)


@dataclass(frozen=True)
class FileIdentity:
    path: Path
    sha256: str
    size_bytes: int
    mtime: datetime
    record_schema: str
    encoding: str


WHOLE_READ_MAX = 64 << 20


def identify(path: Path | str, record_schema: str, encoding: str, resolved: bool = False) -> FileIdentity:
    """sha256, size and mtime of a file. `resolved=True`: `path` is already absolute with symlinks resolved."""
    p = Path(path) if resolved else Path(path).resolve()
    # Unbuffered: each file is read whole, so a buffered reader's set-up is wasted (measured 10-30%
    # of hashing 2,000 daily files). GIL released either way. Daily files are small: one read and
    # one update cost a third less than file_digest's chunked loop; big files are streamed to
    # bound memory.
    with open(p, "rb", buffering=0) as fh:
        st = os.fstat(fh.fileno())
        digest = hashlib.sha256(fh.readall()) if st.st_size <= WHOLE_READ_MAX else hashlib.file_digest(fh, "sha256")
    return FileIdentity(p, digest.hexdigest(), st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc), record_schema, encoding)


@dataclass
class FileCounts:
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    table: str | None = None
    status: str = "loaded"
    error: str | None = None

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined + self.rows_duplicate

    def add(self, other: FileCounts) -> None:
        self.rows_read += other.rows_read
        self.rows_loaded += other.rows_loaded
        self.rows_quarantined += other.rows_quarantined
        self.rows_duplicate += other.rows_duplicate


@dataclass
class RunSummary:
    batch_id: str
    status: BatchStatus | Literal[""]  # "" until finish() closes the batch
    files: dict[str, FileCounts] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)

    @property
    def totals(self) -> FileCounts:
        total = FileCounts(table=None)
        for c in self.files.values():
            total.add(c)
        return total

    def as_dict(self) -> dict[str, Any]:
        t = self.totals
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "tables": self.tables,
            "files": {p: asdict(c) for p, c in self.files.items()},
            "unchanged_files": self.unchanged,
            "totals": {k: getattr(t, k) for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")},
            "balanced": t.balanced and all(c.balanced for c in self.files.values()),
        }


def _now() -> datetime:
    return datetime.now(timezone.utc)


def files_in_error(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Files whose last read failed (ops.file_manifest status 'error'): each is read and reported again
    on every run until it changes or is forgotten."""
    rows = con.execute(
        "SELECT path, table_name, error, ingested_at FROM ops.file_manifest WHERE status = 'error' ORDER BY path"
    ).fetchall()
    return [{"path": p, "table": t, "error": e, "since": str(at)} for p, t, e, at in rows]


def forget(con: duckdb.DuckDBPyConnection, paths: list[str]) -> list[str]:
    """The user drops files in error: their manifest entry becomes 'forgotten' (an unchanged copy is not
    read or reported again; a changed one is read as any changed file) and their file-level quarantine
    records are closed as dropped. Returns the paths forgotten (only files in error can be)."""
    with transaction(con):
        done = [r[0] for r in con.execute(
            "UPDATE ops.file_manifest SET status = 'forgotten' WHERE status = 'error' AND path IN (SELECT unnest(?)) "
            "RETURNING path", [paths]).fetchall()]
        con.execute(
            "UPDATE monitoring.quarantine SET status = 'dropped', resolved_at = ? "
            "WHERE status = 'held' AND record_number IS NULL AND source_file IN (SELECT unnest(?))", [_now(), done])
    return sorted(done)


class IngestRun:
    """One run = one batch in ops.batches. Not thread-safe; one run per connection at a time."""

    def __init__(self, con: duckdb.DuckDBPyConnection, kind: str = "ingest") -> None:
        self.con = con
        self.batch_id = f"{kind}-{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        self.files: dict[str, FileIdentity] = {}
        self.counts: dict[str, FileCounts] = {}
        self.unchanged: list[str] = []
        self.tables: list[str] = []
        self._changed: dict[str, str] = {}  # path -> previous sha256
        con.execute(
            "INSERT INTO ops.batches (batch_id, created_at, kind, status) VALUES (?, ?, ?, 'open')",
            [self.batch_id, _now(), kind],
        )
        OPEN_BATCHES.add(self.batch_id)  # until finish(): a writer connection's recovery leaves it alone
        maybe_fault(FAULT_ENV, "open")

    def abort(self, why: str) -> None:
        """The run failed before its batch closed: remove everything it wrote (see warehouse.roll_back)."""
        roll_back(self.con, [self.batch_id], f"rolled back: {why}")

    # -- planning ---------------------------------------------------------------------
    def known_paths(self, paths: list[str]) -> set[str]:
        """Those of `paths` the manifest has loaded before (only they can be unchanged)."""
        if not paths:
            return set()
        sql = "SELECT path FROM ops.file_manifest WHERE path IN (SELECT unnest(?))"
        return {r[0] for r in self.con.execute(sql, [paths]).fetchall()}

    def plan(self, files: list[FileIdentity]) -> tuple[list[FileIdentity], list[FileIdentity]]:
        if not files:
            return [], []
        known, in_error = {}, set()
        for path, sha, status in self.con.execute(
            "SELECT path, file_sha256, status FROM ops.file_manifest WHERE path IN (SELECT unnest(?))",
            [[str(f.path) for f in files]],
        ).fetchall():
            known[path] = sha
            if status == "error":
                in_error.add(path)
        todo, unchanged = [], []
        for f in files:
            previous = known.get(str(f.path))
            # A file in error is read (and reported) again on every run until it changes or is forgotten.
            if previous == f.sha256 and str(f.path) not in in_error:
                unchanged.append(f)
                self.unchanged.append(str(f.path))
                continue
            if previous is not None:
                self._changed[str(f.path)] = previous
            todo.append(f)
            self.files[str(f.path)] = f
            self.counts.setdefault(str(f.path), FileCounts())
        return todo, unchanged

    # -- staging ----------------------------------------------------------------------
    # The input is read exactly once, by the statement that builds the stage: it is never
    # copied first. The stage keeps every input value (cast columns keep their original in
    # `_in_<name>`), so a rejected row's payload is rebuilt from the stage alone.

    def _register_input(self, rel: Any) -> None:
        if isinstance(rel, duckdb.DuckDBPyRelation):
            rel.create_view(_SRC, replace=True)  # a temporary view: nothing persists on a crash
        else:
            self.con.register(_SRC, rel)

    def _drop_input(self, rel: Any) -> None:
        if isinstance(rel, duckdb.DuckDBPyRelation):
            self.con.execute(f"DROP VIEW IF EXISTS {_SRC}")
        else:
            self.con.unregister(_SRC)

    def stage(self, contract: Contract, rel: Any, files: list[FileIdentity]) -> dict[str, FileCounts]:
        con = self.con
        for f in files:
            self.files.setdefault(str(f.path), f)
            self.counts.setdefault(str(f.path), FileCounts())
        self._register_input(rel)
        try:
            in_cols = {r[0]: r[1] for r in con.execute(f"DESCRIBE {_SRC}").fetchall()}
            for needed in ("source_file", "record_number"):
                if needed not in in_cols:
                    raise ValueError(f"staged rows for {contract.fqn} lack the bookkeeping column {needed!r}")
            unknown = set(in_cols) - set(contract.column_names) - set(BOOKKEEPING)
            if unknown:
                raise ValueError(f"staged rows for {contract.fqn} carry columns the contract does not declare: {sorted(unknown)}")
            with transaction(con):
                counts = self._stage_in_transaction(contract, in_cols, files)
            maybe_fault(FAULT_ENV, "stage")
        finally:
            self._drop_input(rel)
            con.execute("DROP TABLE IF EXISTS _cbi_stage")
            con.execute("DROP TABLE IF EXISTS _cbi_files")
        if contract.fqn not in self.tables:
            self.tables.append(contract.fqn)
        for path, c in counts.items():
            c.table = contract.fqn
            self.counts[path].add(c)
            self.counts[path].table = contract.fqn
        return counts

    def _build_stage(self, contract: Contract, in_cols: dict[str, str]) -> str:
        """CREATE _cbi_stage from the input in one statement; returns the payload SQL expression.

        Casts to the contract's types (a value that does not cast is a violation, never a
        silent NULL), then the contract's row rules as SQL."""
        select, cast_checks, kept = [], [], {}
        for col in contract.columns:
            name = quote(col.name)
            if col.name in ("source_file", "file_sha256", "batch_id", "ingested_at"):
                continue
            if col.name == "source" and col.name not in in_cols:
                select.append(f"CAST({literal(contract.sources[0].name)} AS VARCHAR) AS {name}")
            elif col.name not in in_cols:
                select.append(f"CAST(NULL AS {column_type(col)}) AS {name}")
            elif in_cols[col.name] == column_type(col) or col.type == "STRUCT":
                select.append(f"i.{name}")
            else:
                select.append(f"TRY_CAST(i.{name} AS {column_type(col)}) AS {name}")
                kept[col.name] = f"_in_{col.name}"
                cast_checks.append(
                    (
                        f"i.{name} IS NOT NULL AND TRY_CAST(i.{name} AS {column_type(col)}) IS NULL",
                        f"'{col.name}=' || CAST(i.{name} AS VARCHAR) || ' is not a valid {col.type}'",
                    )
                )
        # Input values the stage does not hold as they came: kept verbatim for the payload.
        for col in ("_rule", "_reason", "_duplicate"):
            if col in in_cols:
                kept[col] = f"_in_{col}"
        if in_cols["record_number"] != "BIGINT":
            kept["record_number"] = "_in_record_number"
        originals = "".join(f", i.{quote(c)} AS {quote(k)}" for c, k in kept.items())
        reader_rule = "i._rule" if "_rule" in in_cols else "CAST(NULL AS VARCHAR)"
        reader_reason = "i._reason" if "_reason" in in_cols else "CAST(NULL AS VARCHAR)"
        cast_rule = "CASE " + " ".join(f"WHEN {c} THEN 'bad_type'" for c, _ in cast_checks) + " END" if cast_checks else "NULL"
        cast_reason = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in cast_checks) + " END" if cast_checks else "NULL"
        pre_dup = "coalesce(i._duplicate, false)" if "_duplicate" in in_cols else "false"
        rule_sql, reason_sql = first_violation(row_checks(contract))
        self.con.execute(
            f"""
            CREATE TEMP TABLE _cbi_stage AS
            WITH typed AS (
                SELECT {", ".join(select)},
                       i.source_file, f.file_sha256 AS _file_sha256, CAST(i.record_number AS BIGINT) AS record_number,
                       coalesce({reader_rule}, {cast_rule}) AS _r0,
                       coalesce({reader_reason}, {cast_reason}) AS _rs0,
                       {pre_dup} AS _dup{originals}
                FROM {_SRC} i LEFT JOIN _cbi_files f ON f.source_file = i.source_file
            )
            SELECT * EXCLUDE (_r0, _rs0, _r1),
                   coalesce(_r0, _r1) AS _rule,
                   -- the checks run once per row; the reason text only for the rows that failed one
                   CASE WHEN _r0 IS NOT NULL OR _r1 IS NOT NULL THEN coalesce(_rs0, {reason_sql}) ELSE _rs0 END AS _reason
            FROM (SELECT *, CASE WHEN _r0 IS NULL THEN {rule_sql} END AS _r1 FROM typed)
            """
        )
        # The input row exactly as to_json(row) would have written it: its columns, in its order.
        return "to_json(struct_pack(" + ", ".join(f"{quote(c)} := s.{quote(kept.get(c, c))}" for c in in_cols) + "))"

    def _stage_in_transaction(self, contract: Contract, in_cols: dict[str, str], files: list[FileIdentity]) -> dict[str, FileCounts]:
        con = self.con
        target = table_ref(contract)
        # 1. The stage, built before anything below changes the tables the input may read. Each
        #    row's file_sha256 (lineage comes from the file identity, never from the input) is
        #    joined here, in the parallel build, not in the final insert.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _cbi_files AS SELECT DISTINCT unnest($p) AS source_file, unnest($h) AS file_sha256",
            {"p": [str(f.path) for f in files], "h": [f.sha256 for f in files]},
        )
        payload = self._build_stage(contract, in_cols)

        # 2. Replace exactly the rows of files whose content changed since they were loaded.
        changed = [p for p in (str(f.path) for f in files) if p in self._changed]
        if changed:
            con.execute(f"DELETE FROM {target} WHERE source_file IN (SELECT unnest(?))", [changed])
            con.execute(
                "UPDATE monitoring.quarantine SET status = 'superseded', resolved_at = ? "
                "WHERE status = 'held' AND table_name = ? AND source_file IN (SELECT unnest(?))",
                [_now(), contract.fqn, changed],
            )

        # A 64-bit hash of the data columns, only ever compared between rows sharing a key (so
        # only computed for those rows).
        data_cols = [c.name for c in contract.columns if c.name not in LOADER_FILLED]
        row_hash = "hash(" + ", ".join("{a}" + quote(c) for c in data_cols) + ")"

        # 3. Duplicates on the primary key within the input. The hash aggregate finds duplicated
        #    keys (usually none); only those rows are ranked (first by file and line wins).
        pk = [quote(k) for k in contract.primary_key]
        pk_list = ", ".join(pk)
        on = " AND ".join(f"s.{k} = d.{k}" for k in pk)
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE _cbi_dupkeys AS
            SELECT {pk_list} FROM _cbi_stage WHERE _rule IS NULL AND NOT _dup GROUP BY ALL HAVING COUNT(*) > 1
            """
        )
        if con.execute("SELECT COUNT(*) FROM _cbi_dupkeys").fetchall()[0][0]:
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE _cbi_ranked AS
                SELECT _rid, row_number() OVER w AS _rn, _h <> first_value(_h) OVER w AS _differs,
                       first_value(source_file || ':' || record_number) OVER w AS _first_at
                FROM (SELECT s.rowid AS _rid, s.*, {row_hash.format(a="s.")} AS _h
                      FROM _cbi_stage s SEMI JOIN _cbi_dupkeys d ON {on}
                      WHERE s._rule IS NULL AND NOT s._dup)
                WINDOW w AS (PARTITION BY {pk_list} ORDER BY source_file, record_number)
                """
            )
            con.execute(
                """
                UPDATE _cbi_stage s SET
                    _rule = CASE WHEN r._differs THEN 'unique_key' END,
                    _reason = CASE WHEN r._differs THEN 'same primary key as ' || r._first_at || ' with different values' END,
                    _dup = NOT r._differs
                FROM _cbi_ranked r WHERE s.rowid = r._rid AND r._rn > 1
                """
            )
            con.execute("DROP TABLE _cbi_ranked")
        con.execute("DROP TABLE _cbi_dupkeys")

        # 4. Against the table: same key and same values is a duplicate, other values a conflict.
        #    Only the key range being loaded is read back (zone maps prune the rest); each side's
        #    row hash is computed once, for the rows whose key is already loaded.
        prune, params = "", []
        if contract.partition:
            pcol = quote(contract.partition.column)
            lo, hi = con.execute(f"SELECT min({pcol}), max({pcol}) FROM _cbi_stage WHERE _rule IS NULL AND NOT _dup").fetchall()[0]
            prune, params = ("AND false", []) if lo is None else (f"AND t.{pcol} BETWEEN ? AND ?", [lo, hi])
        con.execute(
            f"""
            UPDATE _cbi_stage s SET
                _dup = CASE WHEN e._same THEN true ELSE s._dup END,
                _rule = CASE WHEN NOT e._same THEN 'unique_key' ELSE s._rule END,
                _reason = CASE WHEN NOT e._same
                          THEN 'primary key already loaded from ' || coalesce(e._existing_file, 'another batch') || ' with different values'
                          ELSE s._reason END
            FROM (
                SELECT k.rowid AS _rid, {row_hash.format(a="k.")} = {row_hash.format(a="t.")} AS _same,
                       t.source_file AS _existing_file
                FROM _cbi_stage k JOIN {target} t ON {" AND ".join(f"t.{c} = k.{c}" for c in pk)}
                WHERE k._rule IS NULL AND NOT k._dup {prune}
            ) e
            WHERE s.rowid = e._rid
            """,
            params,
        )

        # 5. Quarantine (the payload is the input row as it came, built only for rejects), then load.
        now = _now()
        con.execute(
            f"""
            INSERT INTO monitoring.quarantine (quarantine_id, quarantined_at, batch_id, table_name, source_file,
                   file_sha256, record_number, rule, reason, payload, status)
            SELECT CAST(uuid() AS VARCHAR), ?, ?, ?, s.source_file, s._file_sha256, s.record_number, s._rule,
                   s.source_file || ':' || coalesce(CAST(s.record_number AS VARCHAR), '?') || ' ' || s._rule || ': ' || coalesce(s._reason, ''),
                   CAST({payload} AS VARCHAR), 'held'
            FROM _cbi_stage s
            WHERE s._rule IS NOT NULL
            """,
            [now, self.batch_id, contract.fqn],
        )
        lineage = {"file_sha256": "s._file_sha256", "batch_id": "$batch_id", "ingested_at": "$now"}
        out = [
            f"{lineage[c.name]} AS {quote(c.name)}" if c.name in lineage else f"s.{quote(c.name)}"
            for c in contract.columns
        ]
        con.execute(
            f"""
            INSERT INTO {target} BY NAME
            SELECT {", ".join(out)}
            FROM _cbi_stage s
            WHERE s._rule IS NULL AND NOT s._dup
            """,
            {"batch_id": self.batch_id, "now": now},
        )
        rows = con.execute(
            """
            SELECT source_file, COUNT(*),
                   COUNT(*) FILTER (WHERE _rule IS NULL AND NOT _dup),
                   COUNT(*) FILTER (WHERE _rule IS NOT NULL),
                   COUNT(*) FILTER (WHERE _rule IS NULL AND _dup)
            FROM _cbi_stage GROUP BY source_file ORDER BY source_file
            """
        ).fetchall()
        # Checked last, on the counts (one pass fewer); raising rolls the whole stage back.
        passed = {str(f.path) for f in files}
        strays = [(r[0],) for r in rows if r[0] not in passed]
        if strays:
            raise ValueError(f"staged rows name files that were not passed to stage(): {strays[:3]}")
        return {r[0]: FileCounts(r[1], r[2], r[3], r[4]) for r in rows}

    # -- file-level failures -------------------------------------------------------------
    def file_error(self, fid: FileIdentity, rule: str, reason: str, table: str | None = None) -> None:
        path = str(fid.path)
        self.files[path] = fid
        counts = self.counts.setdefault(path, FileCounts())
        counts.status, counts.error = "error", f"{rule}: {reason}"
        counts.table = table or counts.table
        # A file still in error on a rerun: its earlier file-level record gives way to this one.
        self.con.execute(
            "UPDATE monitoring.quarantine SET status = 'superseded', resolved_at = ? "
            "WHERE status = 'held' AND source_file = ? AND record_number IS NULL",
            [_now(), path],
        )
        self.con.execute(
            """
            INSERT INTO monitoring.quarantine (quarantine_id, quarantined_at, batch_id, table_name, source_file,
                   file_sha256, record_number, rule, reason, payload, status)
            VALUES (CAST(uuid() AS VARCHAR), ?, ?, ?, ?, ?, NULL, ?, ?, NULL, 'held')
            """,
            [_now(), self.batch_id, table, path, fid.sha256, rule, f"{path}: {rule}: {reason}"],
        )
        maybe_fault(FAULT_ENV, "file_error")

    def file_skipped(self, fid: FileIdentity, reason: str, status: str = "skipped") -> None:
        """A file that is valid but not for this warehouse (e.g. a Databento schema no contract
        holds): recorded in the manifest with the reason, no rows read, not an error.
        status="empty": a valid file holding no records (an empty range), said so, not an error."""
        path = str(fid.path)
        self.files[path] = fid
        counts = self.counts.setdefault(path, FileCounts())
        counts.status, counts.error = status, reason

    # -- closing --------------------------------------------------------------------------
    def finish(self, record_manifest: bool = True) -> RunSummary:
        """Close the batch. `record_manifest=False` is for runs that re-load rows of files already
        in the manifest (quarantine release), whose accounting the caller adjusts instead."""
        con = self.con
        now = _now()
        rows = []
        for path, c in self.counts.items():
            f = self.files[path]
            status = c.status if c.status in ("error", "skipped", "empty") else ("replaced" if path in self._changed else "loaded")
            c.status = status
            rows.append(
                [path, f.sha256, f.size_bytes, f.mtime, f.record_schema, f.encoding, c.table, c.rows_read,
                 c.rows_loaded, c.rows_quarantined, c.rows_duplicate, self.batch_id, now, status, c.error]
            )
        with transaction(con):
            if rows and record_manifest:
                con.execute("DELETE FROM ops.file_manifest WHERE path IN (SELECT unnest(?))", [[r[0] for r in rows]])
                names = ["path", "file_sha256", "size_bytes", "file_mtime", "record_schema", "encoding", "table_name",
                         "rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate", "batch_id", "ingested_at",
                         "status", "error"]
                manifest = pa.table({name: [r[i] for r in rows] for i, name in enumerate(names)})
                con.register("_cbi_manifest", manifest)
                con.execute("INSERT INTO ops.file_manifest BY NAME SELECT * FROM _cbi_manifest")
                con.unregister("_cbi_manifest")
            summary = RunSummary(self.batch_id, "", dict(self.counts), list(self.unchanged), list(self.tables))
            t = summary.totals
            # A batch that loaded nothing has nothing to push.
            summary.status = "validated" if t.rows_loaded else "empty"
            con.execute(
                """
                UPDATE ops.batches SET status = ?, rows_read = ?, rows_loaded = ?, rows_quarantined = ?,
                       rows_duplicate = ?, table_names = ?, message = ?
                WHERE batch_id = ?
                """,
                [summary.status, t.rows_read, t.rows_loaded, t.rows_quarantined, t.rows_duplicate, self.tables,
                 f"{len(self.counts)} files, {len(self.unchanged)} unchanged", self.batch_id],
            )
        OPEN_BATCHES.discard(self.batch_id)
        maybe_fault(FAULT_ENV, "finish")
        return summary
