"""Databento batch downloads -> market_data bars/statistics and dim.instruments.

    from cbi_local.ingest.databento import discover, ingest_databento
    run = IngestRun(con); ingest_databento(con, [Path("~/drive/GLBX-20251118-TAAH7VN45V")], run); run.finish()

Accepts files and folders (recursively). A batch folder holds data files named
`<dataset>-<date>[-<date>].<schema>.<dbn|json|csv>[.zst]` beside the sidecars
manifest.json, metadata.json, symbology.json and condition.json (read for symbols,
never loaded). Schemas: ohlcv-1s/1m/1h/1d -> market_data.databento_futures_ohlcv_*,
statistics -> market_data.databento_futures_statistics, definition -> dim.instruments.

Every input line/record is accounted: loaded, duplicate, or quarantined with a rule
(encoding, parse_error, wrong_rtype, unmapped_symbol, no_spreads, plus the contract's
own rules run by the core); a file that cannot be read at all is a file-level error
(parse_error, unsupported_schema); files of Databento schemas no table holds
(trades, status ...) are recorded as skipped; a file holding no records (the 0-byte JSON,
header-only CSV or header-only DBN Databento writes for an empty range) is recorded as
`empty`, said so, and is no error. Re-running skips unchanged files (by
sha256; files the manifest has never seen are hashed on a background thread while
DuckDB reads them, since they are loaded whatever their hash).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

import data_contracts as dc

from . import databento_read as rd
from . import databento_sql as sq
from . import detect
from .core import FileIdentity, IngestRun, identify

TARGETS: dict[str, str] = {
    "definition": "dim.instruments",
    "statistics": "market_data.databento_futures_statistics",
    "ohlcv-1s": "market_data.databento_futures_ohlcv_1s",
    "ohlcv-1m": "market_data.databento_futures_ohlcv_1m",
    "ohlcv-1h": "market_data.databento_futures_ohlcv_1h",
    "ohlcv-1d": "market_data.databento_futures_ohlcv_1d",
}
SIDECARS = {"manifest", "metadata", "symbology", "condition"}
ENCODINGS = ("dbn", "json", "csv")
_NAME = re.compile(r"^(?P<stem>.+?)\.(?P<schema>[a-z0-9]+(?:-[a-z0-9]+)*)\.(?P<enc>dbn|json|csv)(?P<zst>\.zst)?$")

Progress = Callable[..., None]  # progress(message) or progress(message, done, total)


@dataclass(frozen=True)
class DatabentoFile:
    path: Path  # resolved
    record_schema: str | None  # None: not a Databento data file name
    encoding: str | None  # dbn, json, csv
    compressed: bool = False  # .zst
    batch: Path | None = None  # the folder it was found in, when that is not path.parent (a symlinked file)
    named: bool = True  # named on the command line (else found inside a folder)

    @property
    def folder(self) -> Path:
        """The batch folder whose sidecars (symbology.json) describe the file."""
        return self.batch or self.path.parent

    @property
    def supported(self) -> bool:
        return self.record_schema in TARGETS


def classify(path: Path) -> tuple[str | None, str | None, bool]:
    """(record_schema, encoding, zstd) from a file name; (None, None, False) if it is not Databento data."""
    m = _NAME.match(path.name)
    # Every schema Databento writes is known (detect.DATABENTO_SCHEMAS, the library's list); those
    # without a table (trades, status, mbo ...) are recorded as skipped, never loaded.
    if not m or m["schema"] not in detect.DATABENTO_SCHEMAS:
        return None, None, False
    return m["schema"], m["enc"], bool(m["zst"])


def _is_sidecar(path: Path) -> bool:
    return path.name.split(".")[0] in SIDECARS


def _hidden(path: Path) -> bool:
    # "._name" are macOS AppleDouble files on external drives: binary, never data.
    return path.name.startswith(".")


def discover(paths: Iterable[Path | str]) -> list[DatabentoFile]:
    """Databento data files under `paths` (files or folders, recursively), classified by name.

    Sidecars and hidden files are passed over. A file that is not Databento data is returned
    with record_schema None so the caller can report it: named explicitly it is an error,
    found inside a folder it is recorded as skipped (a README or a PDF beside the data is no
    fault, but never passed over without a word). Schemas without a table (trades, status
    ...) are returned too: ingest records them as skipped.
    """
    seen: dict[Path, DatabentoFile] = {}
    for raw in paths:
        p = Path(raw).expanduser().resolve()
        if p.is_dir():
            for entry in _files_under(str(p)):
                child = Path(entry.path)
                if _hidden(child) or _is_sidecar(child):
                    continue
                schema, enc, zst = classify(child)
                # The manifest knows a file by its resolved path; its batch stays where it was found.
                real, batch = (child.resolve(), child.parent) if entry.is_symlink() else (child, None)
                seen.setdefault(real, DatabentoFile(real, schema, enc, zst, batch, named=False))
        elif not _is_sidecar(p) and not _hidden(p):
            schema, enc, zst = classify(p)
            seen[p] = DatabentoFile(p, schema, enc, zst)
    return list(seen.values())


def _files_under(folder: str) -> list[os.DirEntry]:
    """Files under `folder`, recursively, in path order; symlinked folders are not entered
    (as pathlib's rglob), symlinked files are. os.scandir: no stat per entry, unlike rglob."""
    found: list[tuple[tuple[str, ...], os.DirEntry]] = []

    def walk(path: str, parts: tuple[str, ...]) -> None:
        try:
            entries = list(os.scandir(path))
        except PermissionError:  # as rglob: an unreadable sub-folder is passed over
            return
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    walk(e.path, parts + (e.name,))
                elif e.is_file():
                    found.append((parts + (e.name,), e))
            except OSError:  # a symlink loop (ELOOP): not a file, not entered
                continue

    walk(folder, ())
    found.sort(key=lambda x: x[0])
    return [e for _, e in found]


# --- symbology ------------------------------------------------------------------------------


def mapping_rows(result: dict, stype_in: str | None, stype_out: str | None, d0: str, d1: str, s: str) -> list[tuple]:
    """(instrument_id, start, end, symbol) from a symbology result; mirrors databento.common.symbology."""
    rows = []
    for key, entries in result.items():
        for e in entries or ():
            value = e.get(s)
            if value in (None, ""):
                continue
            if stype_in == "instrument_id" or (stype_out != "instrument_id" and str(key).isdigit()):
                iid, symbol = key, value
            else:
                iid, symbol = value, key
            try:
                rows.append((int(iid), str(e[d0]), str(e[d1]), str(symbol)))
            except (KeyError, TypeError, ValueError):
                continue
    return rows


def _insert_map(con: duckdb.DuckDBPyConnection, folder: Path, rows: list[tuple]) -> None:
    if not rows:
        return
    iid, d0, d1, symbol = (list(c) for c in zip(*rows))
    con.execute(
        "INSERT INTO _dbn_map SELECT DISTINCT $folder, unnest($iid), CAST(unnest($d0) AS DATE), "
        "CAST(unnest($d1) AS DATE), unnest($symbol)",
        {"folder": str(folder), "iid": iid, "d0": d0, "d1": d1, "symbol": symbol},
    )


def load_symbology_json(con: duckdb.DuckDBPyConnection, path: Path) -> int:
    """symbology.json of a batch folder -> _dbn_map. Raises ValueError when it is unusable."""
    try:
        doc = json.loads(path.read_text())
        result = doc["result"]
        if not isinstance(result, dict):
            raise TypeError("`result` is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable symbology.json: {exc}") from exc
    stype_in, stype_out = (str(doc.get(k) or "") or None for k in ("stype_in", "stype_out"))
    rows = mapping_rows(result, stype_in, stype_out, "d0", "d1", "s")
    _insert_map(con, path.parent, rows)
    return len(rows)


def _insert_dbn_mappings(con: duckdb.DuckDBPyConnection, folder: Path, metadata: object) -> None:
    mappings = getattr(metadata, "mappings", None) or {}
    stype_in = str(getattr(metadata, "stype_in", "") or "") or None
    stype_out = str(getattr(metadata, "stype_out", "") or "") or None
    _insert_map(con, folder, mapping_rows(mappings, stype_in, stype_out, "start_date", "end_date", "symbol"))


# --- ingest ---------------------------------------------------------------------------------

ORDER = ("definition", "statistics", "ohlcv-1d", "ohlcv-1h", "ohlcv-1m", "ohlcv-1s")
TYPED = "_dbn_typed"
# Input bytes per scan + stage (compressed/binary weighted x8), so a folder of 15 years of
# 1-second bars never has to fit in memory at once; typical folders are one chunk.
CHUNK_BYTES = 2 << 30
LINES = "_dbn_lines"


def ingest_databento(
    con: duckdb.DuckDBPyConnection, paths: list[Path], run: IngestRun, progress: Progress | None = None
) -> None:
    """Load Databento files/folders into the warehouse through `run` (the caller finishes it)."""
    with _gc_paused():
        _Loader(con, run, progress or (lambda *_: None)).load(paths)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic GC off while thousands of files are bookkept: their Paths, identities and
    counts form no cycles (reference counting frees them), yet they trigger collections that
    each walk every object the process holds (DuckDB, Arrow, pandas: ~40 ms a full pass)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Loader:
    def __init__(self, con: duckdb.DuckDBPyConnection, run: IngestRun, say: Progress) -> None:
        self.con, self.run, self.say = con, run, say
        self.ids: dict[Path, FileIdentity] = {}
        self.sizes: dict[Path, int] = {}
        self.hashing: Future[list[FileIdentity]] | None = None  # new files, hashed in the background
        self.found: dict[Path, DatabentoFile] = {}
        self.errored: set[Path] = set()

    def fid(self, path: Path) -> FileIdentity:
        """The identity of a file. A new file the background task has not handed over yet is hashed
        here, alone: an error or skip found before the scan must not wait for all the others."""
        if path not in self.ids:
            fid = _identify(self.found[path])
            self.run.plan([fid])
            self.ids[path] = fid
        return self.ids[path]

    def all_hashed(self) -> None:
        """Wait for the background hashing and plan those files (one manifest query)."""
        if self.hashing is None:
            return
        fids = [f for f in self.hashing.result() if f.path not in self.ids]
        self.hashing = None
        if fids:
            self.run.plan(fids)
            self.ids.update((f.path, f) for f in fids)

    def error(self, path: Path, rule: str, reason: str, table: str | None = None) -> None:
        if path in self.errored:
            return
        self.errored.add(path)
        self.run.file_error(self.fid(path), rule, reason, table=table)

    def empty(self, f: DatabentoFile, table: str | None) -> None:
        """A valid file without records: Databento's way of writing an empty range."""
        self.run.file_skipped(self.fid(f.path), "no records: an empty range (nothing to load)", status="empty")
        self.run.counts[str(f.path)].table = table

    def load(self, paths: list[Path]) -> None:
        files = discover(paths)
        self.found = {f.path: f for f in files}
        # Files the manifest knows are hashed first: an unchanged one is skipped. Every other file
        # is new, so it is read whatever its hash: those are hashed on a background thread while
        # DuckDB reads them (one thread: thousands of small files hash fastest serially).
        known = self.run.known_paths([str(f.path) for f in files])
        old = [f for f in files if str(f.path) in known]
        for i, f in enumerate(old, 1):
            self.ids[f.path] = _identify(f)
            if i % 250 == 0 or i == len(old):
                self.say("databento: hashing files", i, len(old))
        todo, unchanged = self.run.plan([self.ids[f.path] for f in old])
        if unchanged:
            self.say(f"databento: {len(unchanged)} file(s) unchanged since loaded; skipped")
        self.sizes = {fid.path: fid.size_bytes for fid in todo}
        new = [f for f in files if str(f.path) not in known]
        if new:
            self.say(f"databento: {len(new)} new file(s), hashed while they are read")
        for f in new:
            self.sizes[f.path] = f.path.stat().st_size
        with ThreadPoolExecutor(max_workers=1) as hasher:
            # One task for all: a future per file costs the main thread a GIL hand-over each.
            self.hashing = hasher.submit(lambda: [_identify(f) for f in new])
            try:
                self._load([f for f in files if f.path in self.sizes])
            finally:
                self.all_hashed()

    def _load(self, candidates: list[DatabentoFile]) -> None:
        # DuckDB reads a truncated zstd stream as fewer (or no) lines without an error, so every
        # .zst is checked for a complete final frame first (zstandard releases the GIL too).
        zst = [f for f in candidates if f.compressed and f.supported]
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            problems = dict(zip((f.path for f in zst), pool.map(lambda f: rd.zstd_problem(f.path), zst)))
        work: list[DatabentoFile] = []
        skipped: set[str] = set()
        for f in candidates:
            table = TARGETS.get(f.record_schema or "")
            if f.record_schema is None and not f.named:
                self.run.file_skipped(self.fid(f.path), "not Databento data: its name is not <name>.<schema>.<dbn|json|csv>[.zst]")
                skipped.add("not Databento data")
            elif f.record_schema is None:
                hint = ("; if it is a live capture mixing schemas, split it per schema first (databento: "
                        "DBNStore.from_file(path).to_df(schema=...)) and name each part <name>.<schema>.dbn"
                        if f.path.name.lower().endswith((".dbn", ".dbn.zst")) else "")
                self.error(f.path, "unsupported_schema",
                           "not a Databento data file name (<name>.<schema>.<dbn|json|csv>[.zst])" + hint)
            elif table is None:
                # Valid Databento data no contract holds (trades, status ...): recorded, not an error.
                self.run.file_skipped(self.fid(f.path), f"Databento schema {f.record_schema} has no warehouse table")
                skipped.add(str(f.record_schema))
            elif self.sizes[f.path] == 0 and f.compressed:
                self.error(f.path, "parse_error", "a 0-byte .zst is not a zstd stream (an empty range compresses to a frame)", table)
            elif self.sizes[f.path] == 0:
                self.empty(f, table)
            elif problems.get(f.path):
                self.error(f.path, "parse_error", problems[f.path], table)
            else:
                work.append(f)
        if skipped:
            self.say(f"databento: skipped (a schema without a warehouse table, or not Databento data): {', '.join(sorted(skipped))}")
        if not work:
            return
        con = self.con
        sq.create_lookup_tables(con)
        try:
            self._register_files(work)
            for schema in ORDER:
                group = [f for f in work if f.record_schema == schema]
                if group:
                    self._ingest_schema(schema, group)
        finally:
            sq.drop_lookup_tables(con)
            for t in (TYPED, LINES, "_dbn_rows"):
                con.execute(f"DROP TABLE IF EXISTS {t}")

    def _register_files(self, work: list[DatabentoFile]) -> None:
        con = self.con
        folders = [f.folder for f in work]
        con.execute(
            "INSERT INTO _dbn_files SELECT unnest($files), unnest($folders)",
            {"files": [str(f.path) for f in work], "folders": [str(p) for p in folders]},
        )
        for folder in sorted(set(folders)):
            sym = folder / "symbology.json"
            if not sym.is_file():
                continue
            try:
                n = load_symbology_json(con, sym)
                self.say(f"databento: {sym}: {n:,} symbol mappings")
            except ValueError as exc:
                # The data still loads; records that needed it are quarantined as unmapped_symbol.
                self.ids[sym] = identify(sym, "symbology", "json")
                self.error(sym, "parse_error", str(exc))

    def _ingest_schema(self, schema: str, group: list[DatabentoFile]) -> None:
        """All files of a schema: one scan per encoding and one stage, per chunk of CHUNK_BYTES input."""
        chunk: list[DatabentoFile] = []
        size = 0
        for f in group:
            weight = self.sizes[f.path] * (8 if f.compressed or f.encoding == "dbn" else 1)
            if chunk and size + weight > CHUNK_BYTES:
                self._ingest_chunk(schema, chunk)
                chunk, size = [], 0
            chunk.append(f)
            size += weight
        if chunk:
            self._ingest_chunk(schema, chunk)

    def _ingest_chunk(self, schema: str, group: list[DatabentoFile]) -> None:
        con = self.con
        contract = dc.get(TARGETS[schema])
        self._table, self._schema = contract.fqn, schema
        fields = rd.fields_for(schema)
        con.execute(rd.typed_ddl(TYPED, fields))
        for enc in ENCODINGS:
            part = [f for f in group if f.encoding == enc]
            if part and enc == "dbn":
                self._read_dbn(part, fields, contract.fqn)
            elif part:
                self._read_text(part, enc, fields, contract.fqn)
        present = {r[0] for r in con.execute(f"SELECT DISTINCT source_file FROM {TYPED}").fetchall()}
        self.all_hashed()  # the stage records each file's sha256
        staged = []
        for f in group:
            if str(f.path) in present:
                staged.append(self.ids[f.path])
            elif f.path not in self.errored:
                self.empty(f, contract.fqn)
        if not staged:
            return
        if schema == "definition":
            con.execute(f"CREATE OR REPLACE TEMP TABLE _dbn_rows AS {sq.definitions_sql(TYPED)}")
            sq.add_run_definitions(con, "_dbn_rows")
            rel = con.table("_dbn_rows")
        else:
            sq.resolve_symbols(con, TYPED, schema)
            rel = con.sql(sq.statistics_sql(TYPED) if schema == "statistics" else sq.bars_sql(TYPED, schema))
        counts = self.run.stage(contract, rel, files=staged)
        con.execute(f"DROP TABLE IF EXISTS {TYPED}")
        con.execute("DROP TABLE IF EXISTS _dbn_rows")
        tot = [sum(getattr(c, k) for c in counts.values()) for k in ("rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")]
        self.say(
            f"databento: {schema}: {len(staged)} file(s) -> {contract.fqn}: read {tot[0]:,}, loaded {tot[1]:,}, "
            f"quarantined {tot[2]:,}, duplicate {tot[3]:,}"
        )

    def _read_text(self, part: list[DatabentoFile], enc: str, fields, table: str) -> None:
        """One scan per (scan kind) over the group; files the blob scan cannot decode are re-read."""
        small = [not f.compressed and self.sizes[f.path] <= rd.BLOB_MAX for f in part]
        self._text_scan([f for f, b in zip(part, small) if not b], "csv", enc, fields, table)
        self._text_scan([f for f, b in zip(part, small) if b], "blob", enc, fields, table)
        sql = f"SELECT DISTINCT source_file FROM {TYPED} WHERE _lrule = '_reread'"
        reread = {r[0] for r in self.con.execute(sql).fetchall()}
        if reread:
            self.con.execute(f"DELETE FROM {TYPED} WHERE _lrule = '_reread'")
            self._text_scan([f for f in part if str(f.path) in reread], "csv", enc, fields, table)

    def _text_scan(self, files: list[DatabentoFile], how: str, enc: str, fields, table: str) -> None:
        if not files:
            return
        try:
            self._text_statement([str(f.path) for f in files], how, enc, fields)
            return
        except duckdb.Error:
            pass
        # Something in the group breaks the scan (unreadable file, line > 16 MB ...): isolate it.
        for f in files:
            try:
                self._text_statement([str(f.path)], how, enc, fields)
            except duckdb.Error as exc:
                self.error(f.path, "parse_error", f"unreadable as text: {str(exc).splitlines()[0]}", table)

    def _text_statement(self, paths: list[str], how: str, enc: str, fields) -> None:
        # Lines are materialised first: parsing a table runs in parallel over its row groups,
        # parsing straight off the per-file unnest runs on one thread (read_blob does).
        con = self.con
        rd.scan_lines(con, LINES, paths, how)
        if enc == "csv":
            for path, first in rd.csv_headers(con, LINES):
                self.error(Path(path), "parse_error", f"line 1 is not a Databento CSV header: {first!r}", self._table)
                con.execute(f"DELETE FROM {LINES} WHERE source_file = ?", [path])
            text = rd.csv_text_sql(LINES, fields, check_ascii=how == "csv")
        else:
            text = rd.json_text_sql(LINES, fields, check_ascii=how == "csv")
        rd.text_to_typed(con, text, [], fields, TYPED, sq.RTYPE[self._schema])
        con.execute(f"DROP TABLE IF EXISTS {LINES}")

    def _read_dbn(self, part: list[DatabentoFile], fields, table: str) -> None:
        for f in part:
            try:
                store = rd.open_dbn(f.path)
                _insert_dbn_mappings(self.con, f.folder, store.metadata)
                rd.dbn_to_typed(self.con, store, str(f.path), fields, TYPED)
            except rd.DbnUnreadable as exc:
                self.con.execute(f"DELETE FROM {TYPED} WHERE source_file = ?", [str(f.path)])
                self.error(f.path, "parse_error", str(exc), table)


def _identify(f: DatabentoFile) -> FileIdentity:
    return identify(f.path, f.record_schema or "unknown", f.encoding or "unknown", resolved=True)


def root_of(symbol: str | None) -> str | None:
    """Product root of a symbol, as the loader derives it (ESH1 -> ES, ZLF6-ZLH6 -> ZL)."""
    if not symbol:
        return None
    m = re.match(sq.ROOT_RE, symbol.split("-")[0])
    return m.group(1) if m else None
